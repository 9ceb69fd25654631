// One request's attempts at a cluster's backends: which were tried, which to
// try next, and whether another attempt is allowed. The one place the retry
// condition is written, for failed connects and for connections a backend closed.

import type { BackendRuntime } from './backend-runtime.js';
import { type ClusterRuntime, chooseBackend } from './data-plane.js';
import type { Affinity } from './request-affinity.js';

export class AttemptBudget {
  /** Reused across a connection's requests: cleared, never reallocated. */
  private readonly tried: BackendRuntime[] = [];

  /** The next backend to try, now counted as tried; undefined when none is left. */
  next(cluster: ClusterRuntime, affinity?: Affinity): BackendRuntime | undefined {
    const backend = chooseBackend(cluster, this.tried, affinity);
    if (backend !== undefined) this.tried.push(backend);
    return backend;
  }

  /** Whether a failed attempt may be followed by another (connect_attempts, and untried backends left). */
  canRetry(cluster: ClusterRuntime): boolean {
    const n = this.tried.length;
    return n < cluster.spec.connect_attempts && n < cluster.backends.length;
  }

  /** The last attempt does not count: it met a pooled connection the backend had already closed. */
  forgive(): void {
    this.tried.pop();
  }

  get count(): number {
    return this.tried.length;
  }

  /** The backend tried last (the one that answered, when one did). */
  get last(): BackendRuntime | undefined {
    return this.tried.at(-1);
  }

  clear(): void {
    this.tried.length = 0;
  }
}
