// EventChannel: a bounded fan-out of client events to async iterators. Each
// subscriber keeps at most `limit` events; older ones are dropped and counted.

export class EventChannel<T> {
  private readonly subs = new Set<Subscriber<T>>();

  constructor(private readonly limit: number) {}

  emit(ev: T): void {
    for (const s of this.subs) s.push(ev);
  }

  subscribe(signal?: AbortSignal): AsyncIterableIterator<T> & { dropped(): number } {
    const s = new Subscriber<T>(this.limit, () => this.subs.delete(s));
    this.subs.add(s);
    signal?.addEventListener('abort', () => s.end(), { once: true });
    return s;
  }

  endAll(): void {
    for (const s of [...this.subs]) s.end();
  }
}

class Subscriber<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;
  private droppedCount = 0;

  constructor(
    private readonly limit: number,
    private readonly onEnd: () => void,
  ) {}

  push(ev: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: ev, done: false });
      return;
    }
    if (this.queue.length >= this.limit) {
      this.queue.shift();
      this.droppedCount++;
    }
    this.queue.push(ev);
  }

  dropped(): number {
    return this.droppedCount;
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.onEnd();
    this.waiter?.({ value: undefined, done: true });
    this.waiter = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    const v = this.queue.shift();
    if (v !== undefined) return Promise.resolve({ value: v, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => {
      this.waiter = r;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
