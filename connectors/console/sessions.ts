// Logged-in browsers and the limit on login attempts. Sessions are random ids
// kept in memory (a restart logs everyone out), bounded in number and age, each
// with its own CSRF token; failed logins draw from a per-address token bucket.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from './token-file.js';

export const SESSION_TTL_MS = 8 * 3_600_000;
export const MAX_SESSIONS = 1_000;
/** Failed logins an address may make at once, and how fast it earns one back. */
export const LOGIN_BURST = 5;
export const LOGIN_REFILL_MS = 10_000;
const MAX_TRACKED_ADDRESSES = 10_000;

export interface Session {
  id: string;
  role: Role;
  csrf: string;
  expiresAt: number;
}

export class Sessions {
  readonly #byId = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  create(role: Role): Session {
    this.#sweep();
    // The oldest session goes first when the map is full (insertion order).
    while (this.#byId.size >= MAX_SESSIONS) this.#byId.delete(this.#byId.keys().next().value as string);
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      role,
      csrf: randomBytes(32).toString('base64url'),
      expiresAt: this.now() + SESSION_TTL_MS,
    };
    this.#byId.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const s = this.#byId.get(id);
    if (s === undefined) return undefined;
    if (s.expiresAt <= this.now()) {
      this.#byId.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.#byId.delete(id);
  }

  #sweep(): void {
    const now = this.now();
    for (const [id, s] of this.#byId) if (s.expiresAt <= now) this.#byId.delete(id);
  }
}

/** Whether a request's CSRF header is this session's token. */
export function csrfMatches(session: Session, header: string | undefined): boolean {
  if (header === undefined) return false;
  const a = Buffer.from(header);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Per-address token bucket for login attempts; bounded, forgetting the oldest address. */
export class LoginLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes one attempt; false when the address has none left. */
  take(address: string): boolean {
    const now = this.now();
    const b = this.#buckets.get(address) ?? { tokens: LOGIN_BURST, at: now };
    const earned = Math.floor((now - b.at) / LOGIN_REFILL_MS);
    if (earned > 0) {
      b.tokens = Math.min(LOGIN_BURST, b.tokens + earned);
      b.at += earned * LOGIN_REFILL_MS;
    }
    this.#buckets.delete(address);
    if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) {
      this.#buckets.delete(this.#buckets.keys().next().value as string);
    }
    this.#buckets.set(address, b);
    if (b.tokens <= 0) return false;
    b.tokens -= 1;
    return true;
  }

  /** A successful login gives its attempt back. */
  refund(address: string): void {
    const b = this.#buckets.get(address);
    if (b !== undefined) b.tokens = Math.min(LOGIN_BURST, b.tokens + 1);
  }
}
