// A FIFO with a fixed capacity between the topic readers and the apply loop: a
// full queue makes put() wait, so the readers stop asking the broker for more
// (flow control) instead of buffering without limit while the proxy is slow.

export class BoundedQueue<T> {
  #items: T[] = [];
  #head = 0;
  readonly #takers: ((v: T | undefined) => void)[] = [];
  readonly #putters: (() => void)[] = [];

  constructor(public capacity: number) {}

  get size(): number {
    return this.#items.length - this.#head;
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** Waits while the queue is full; rejects if `signal` aborts meanwhile. */
  async put(item: T, signal?: AbortSignal): Promise<void> {
    while (this.size >= this.capacity) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        };
        const abort = () => {
          const i = this.#putters.indexOf(wake);
          if (i >= 0) this.#putters.splice(i, 1);
          reject(signal?.reason);
        };
        this.#putters.push(wake);
        signal?.addEventListener('abort', abort, { once: true });
      });
    }
    const taker = this.#takers.shift();
    if (taker !== undefined) taker(item);
    else this.#items.push(item);
  }

  /** The next item, or undefined when `signal` aborts first. */
  take(signal?: AbortSignal): Promise<T | undefined> {
    if (this.size > 0) return Promise.resolve(this.#shift());
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const give = (v: T | undefined) => {
        signal?.removeEventListener('abort', abort);
        resolve(v);
      };
      const abort = () => {
        const i = this.#takers.indexOf(give);
        if (i >= 0) this.#takers.splice(i, 1);
        resolve(undefined);
      };
      this.#takers.push(give);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /** Drops every item and lets every waiting put() through (into the now empty queue). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    for (const w of this.#putters.splice(0)) w();
  }

  #shift(): T | undefined {
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined as T;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#putters.shift()?.();
    return item;
  }
}
