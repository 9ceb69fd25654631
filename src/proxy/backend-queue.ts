// The requests waiting for a backend at its max_connections: first in, first
// served, bounded in length (a full queue refuses at once) and in time (each
// waiter's own timer). I/O-free but for the timers; the backend runtime wakes
// the head when one of its requests ends.

/** A request waiting for a backend: told once, either way. */
export interface QueueWaiter {
  /** A slot is free: the waiter takes it now (synchronously), or lets it go to the next. */
  onSlot(): void;
  /** It waited its whole time. */
  onQueueTimeout(waitedMs: number): void;
}

interface Entry {
  readonly waiter: QueueWaiter;
  readonly timer: NodeJS.Timeout;
}

export class BackendQueue {
  // A Map keeps insertion order: the first entry is the one waiting longest, and
  // a waiter that leaves (its client went) is removed without a scan.
  private readonly entries = new Map<QueueWaiter, Entry>();

  get length(): number {
    return this.entries.size;
  }

  /** Adds a waiter; false when `size` are waiting already (the caller answers 503). */
  enqueue(waiter: QueueWaiter, size: number, timeoutMs: number): boolean {
    if (this.entries.size >= size || this.entries.has(waiter)) return false;
    const since = performance.now();
    const timer = setTimeout(() => {
      if (this.entries.delete(waiter)) waiter.onQueueTimeout(performance.now() - since);
    }, timeoutMs);
    this.entries.set(waiter, { waiter, timer });
    return true;
  }

  /** The waiter leaves (answered otherwise, or its client went); a no-op when it is not queued. */
  remove(waiter: QueueWaiter): void {
    const e = this.entries.get(waiter);
    if (e === undefined) return;
    clearTimeout(e.timer);
    this.entries.delete(waiter);
  }

  /** Takes the waiter waiting longest out of the queue, or undefined. */
  shift(): QueueWaiter | undefined {
    const first = this.entries.values().next();
    if (first.done === true) return undefined;
    clearTimeout(first.value.timer);
    this.entries.delete(first.value.waiter);
    return first.value.waiter;
  }
}
