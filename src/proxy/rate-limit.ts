// Per-frontend request rate limits: a token bucket per client key (the client's
// address, or a header's value), refilled lazily on each request, so an idle
// key costs nothing but its map entry. Each worker holds its own buckets at
// 1/N of the configured rate (N workers), so the instance never admits more
// than the rate; docs/routing.md states the error this leaves.

import * as D from '../defaults.js';
import { type Frontend, keyOf, type RateLimit } from '../model/objects.js';
import type { RequestHead } from './http1-head.js';

/** Buckets looked at to make room for a new key. */
const EVICT_SCAN = 64;

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
}

/** What a request over its limit is told: whole seconds until a token is back (Retry-After). */
export interface Refusal {
  retryAfterS: number;
}

/** One frontend's buckets. Its settings may change in place; the buckets carry on. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  /** Tokens per millisecond, in this worker. */
  private perMs = 0;
  private burst = 1;

  constructor(
    limit: RateLimit,
    private readonly share: number,
    private readonly maxKeys = D.RATE_LIMIT_MAX_KEYS,
  ) {
    this.configure(limit);
  }

  configure(limit: RateLimit): void {
    this.perMs = limit.requests_per_second / this.share / 1000;
    // A bucket smaller than one token would refuse everything in this worker.
    this.burst = Math.max(1, (limit.burst ?? limit.requests_per_second) / this.share);
    for (const b of this.buckets.values()) if (b.tokens > this.burst) b.tokens = this.burst;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token for `key` at `now` (ms, monotonic); undefined when admitted. */
  take(key: string, now: number): Refusal | undefined {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      b = { tokens: this.burst, at: now };
    } else {
      // Re-inserted below: the map's order is then least recently seen first.
      this.buckets.delete(key);
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
      b.at = now;
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return { retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)) };
  }

  /**
   * Makes room for a key, at a bounded cost per request (a flood of new keys
   * must not scan the whole map each): among the least recently seen few, a
   * bucket refilled to full is the same as none, so those go; if none is, the
   * least recently seen key is forgotten (it starts again with a full bucket:
   * memory stays bounded at the cost of leniency).
   */
  private evict(now: number): void {
    let scanned = 0;
    for (const [k, b] of this.buckets) {
      if (++scanned > EVICT_SCAN) break;
      if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(k);
    }
    if (this.buckets.size < this.maxKeys) return;
    const oldest = this.buckets.keys().next();
    if (oldest.done !== true) this.buckets.delete(oldest.value);
  }
}

/**
 * Every frontend's buckets in a worker, by frontend key: a hot change of a
 * frontend's limit keeps its buckets (a change is not a free burst for every
 * client), a frontend removed loses them.
 */
export class RateLimits {
  private byKey = new Map<string, TokenBuckets>();
  private readonly forFrontend = new WeakMap<Frontend, TokenBuckets>();

  /** `share`: the workers the rate is divided among. */
  constructor(private readonly share = workerShare()) {}

  /** The frontends served now; called with every new routing state. */
  sync(frontends: Iterable<Frontend>): void {
    const next = new Map<string, TokenBuckets>();
    for (const f of frontends) {
      if (f.rate_limit === undefined) continue;
      const key = keyOf('frontend', f);
      let buckets = this.byKey.get(key);
      if (buckets === undefined) buckets = new TokenBuckets(f.rate_limit, this.share);
      else buckets.configure(f.rate_limit);
      next.set(key, buckets);
      this.forFrontend.set(f, buckets);
    }
    this.byKey = next;
  }

  /** Takes a token for this request; undefined when admitted (or the frontend has no limit). */
  admit(f: Frontend, clientIp: string, head: Pick<RequestHead, 'lower' | 'values'>): Refusal | undefined {
    const limit = f.rate_limit;
    if (limit === undefined) return undefined;
    const buckets = this.forFrontend.get(f);
    if (buckets === undefined) return undefined;
    let key = clientIp;
    if (limit.key !== 'client_ip') {
      const at = head.lower.indexOf(limit.key.slice('header:'.length).toLowerCase());
      const v = at < 0 ? undefined : head.values[at];
      // No header: the client's address, so leaving it out is no way around the limit.
      if (v !== undefined) key = `h:${v}`;
    }
    return buckets.take(key, performance.now());
  }
}

/** Workers of this instance, as main tells each at fork; 1 outside a worker (tests). */
function workerShare(): number {
  const n = Number(process.env.KAKEHI_WORKER_COUNT);
  return Number.isInteger(n) && n > 0 ? n : 1;
}
