// Backoff: exponential reconnect delays with jitter, capped, reset after a
// successful connection: the attempt count around the shared backoffMs.
// `random` is injectable for tests.

import { backoffMs } from '../../../src/backoff.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** Next delay: uniform in [ceiling/2, ceiling], ceiling = min(max, initial·2^attempt). */
  next(): number {
    const policy = { initialMs: this.opts.initialMs, maxMs: this.opts.maxMs, maxExponent: 30, jitter: 0.5 };
    // 1 - random: a high draw waits longest, as it always did here.
    const delay = backoffMs(this.attempt, policy, 1 - this.random());
    this.attempt++;
    return Math.round(delay);
  }

  reset(): void {
    this.attempt = 0;
  }
}
