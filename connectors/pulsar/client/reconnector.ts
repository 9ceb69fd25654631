// Reconnection of one producer or consumer: at most one pending attempt, after
// an exponential, jittered backoff that resets on success; every attempt and
// every success is announced on the client's event stream. The owner decides
// whether to schedule at all (not when closed) and what a failure clears.

import { Backoff } from './backoff.js';
import type { PulsarClient } from './client.js';

export interface ReconnectTarget {
  readonly role: 'producer' | 'consumer';
  readonly topic: string;
  connect(): Promise<void>;
  isReady(): boolean;
  /** A failed attempt goes back through the owner, as any other failure does. */
  retry(error: Error): void;
}

export class Reconnector {
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;

  constructor(
    private readonly client: PulsarClient,
    private readonly target: ReconnectTarget,
  ) {
    this.backoff = new Backoff({
      initialMs: client.options.backoffInitialMs,
      maxMs: client.options.backoffMaxMs,
    });
  }

  /** An attempt is already scheduled. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  schedule(error: Error): void {
    const { role, topic } = this.target;
    const delayMs = this.backoff.next();
    this.client.emit({ type: 'reconnecting', role, topic, delayMs, error });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.target.connect().then(
        () => {
          if (this.target.isReady()) this.client.emit({ type: 'reconnected', role, topic });
        },
        (err: Error) => this.target.retry(err),
      );
    }, delayMs);
  }

  /** The owner is connected: the next failure starts from the shortest delay again. */
  connected(): void {
    this.backoff.reset();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
