// When a pair may be read, and when it may be forgotten. Pure: time is passed in.
//
// - A pair is read only once its files' signature has stayed the same for settleMs
//   (debounce: a writer still busy keeps moving the signature).
// - A reading that is not finished (a cut-short PEM block, an unreadable or missing
//   file) or finished but invalid never takes away the last good certificate.
// - A pair whose files are gone is forgotten only when a scan at least settleMs after
//   they first went missing still does not find them.

import { backoffMs } from '../../src/backoff.js';
import type { GoodCert, Reading } from './reader.js';

export type PairState = 'settling' | 'ok' | 'incomplete' | 'unreadable' | 'invalid' | 'ignored';

export interface Tracked {
  key: string;
  signature: string;
  /** When the signature last changed (or the pair appeared). */
  changedAt: number;
  /** The signature the current state was read from; undefined until a read finished. */
  readSignature: string | undefined;
  /** When to read again though the signature is unchanged (not-finished readings). */
  retryAt: number | undefined;
  /** Not-finished readings in a row with an unchanged signature: the retry backs off. */
  retries: number;
  state: PairState;
  /** The certificate this pair serves: the last good reading, kept through bad ones. */
  good: GoodCert | undefined;
  lastError: string | undefined;
  lastErrorAt: number | undefined;
  /** Set while the pair is missing from scans. */
  goneSince: number | undefined;
}

/** The longest wait between retries of a pair that stays unfinished without changing. */
export const MAX_RETRY_MS = 30_000;

export class Settler {
  readonly #pairs = new Map<string, Tracked>();

  /** Settable: a settings reload may change it, and it applies from the next scan. */
  constructor(public settleMs: number) {}

  get size(): number {
    return this.#pairs.size;
  }

  get(key: string): Tracked | undefined {
    return this.#pairs.get(key);
  }

  all(): IterableIterator<Tracked> {
    return this.#pairs.values();
  }

  /**
   * One complete scan: every pair present with its signature and its files' newest
   * mtime. A pair seen for the first time counts as changed at that mtime (files
   * untouched for a while, as at start or after an atomic rename, are read at
   * once); a later signature change counts from now. Pairs not in the scan start (or
   * keep) their gone clock; a pair that comes back stops it.
   */
  observe(present: ReadonlyMap<string, { signature: string; modifiedAt: number }>, now: number): void {
    for (const [key, { signature, modifiedAt }] of present) {
      const t = this.#pairs.get(key);
      if (!t) {
        this.#pairs.set(key, {
          key,
          signature,
          changedAt: signature === '' ? now : Math.min(now, modifiedAt),
          readSignature: undefined,
          retryAt: undefined,
          retries: 0,
          state: 'settling',
          good: undefined,
          lastError: undefined,
          lastErrorAt: undefined,
          goneSince: undefined,
        });
        continue;
      }
      t.goneSince = undefined;
      if (t.signature !== signature) {
        t.signature = signature;
        t.changedAt = now;
        t.retries = 0;
      }
    }
    for (const t of this.#pairs.values()) {
      if (!present.has(t.key)) t.goneSince ??= now;
    }
  }

  /** Keys gone for at least settleMs as of this (just observed) scan; they are dropped. */
  expire(now: number): string[] {
    const out: string[] = [];
    for (const t of this.#pairs.values()) {
      if (t.goneSince !== undefined && now - t.goneSince >= this.settleMs) out.push(t.key);
    }
    for (const k of out) this.#pairs.delete(k);
    return out;
  }

  /** Keys to read now: present, settled, and changed since read or due for a retry. */
  due(now: number): string[] {
    const out: string[] = [];
    for (const t of this.#pairs.values()) {
      if (t.goneSince !== undefined) continue;
      if (now - t.changedAt < this.settleMs) continue;
      const changed = t.readSignature !== t.signature;
      const retry = t.retryAt !== undefined && now >= t.retryAt;
      if (changed || retry) out.push(t.key);
    }
    return out;
  }

  /** The earliest time a read or an expiry could become due, for the wake-up timer. */
  nextWake(now: number): number | undefined {
    let next: number | undefined;
    const consider = (at: number) => {
      const t = Math.max(at, now);
      if (next === undefined || t < next) next = t;
    };
    for (const t of this.#pairs.values()) {
      if (t.goneSince !== undefined) consider(t.goneSince + this.settleMs);
      else if (t.readSignature !== t.signature) consider(t.changedAt + this.settleMs);
      else if (t.retryAt !== undefined) consider(t.retryAt);
    }
    return next;
  }

  /**
   * The outcome of reading a pair whose signature was `signature` when the read
   * started. If the files moved meanwhile the reading is stale and dropped: the new
   * signature will be read once it settles.
   */
  record(key: string, signature: string, reading: Reading, now: number): 'applied' | 'stale' {
    const t = this.#pairs.get(key);
    if (!t || t.signature !== signature || t.goneSince !== undefined) return 'stale';
    switch (reading.kind) {
      case 'ok':
        t.good = reading.cert;
        t.state = 'ok';
        t.readSignature = signature;
        t.retryAt = undefined;
        t.retries = 0;
        t.lastError = undefined;
        t.lastErrorAt = undefined;
        break;
      case 'invalid':
      case 'ignored':
        // Finished and wrong (or not a pair): no point reading again until the files change.
        t.state = reading.kind;
        t.readSignature = signature;
        t.retryAt = undefined;
        t.lastError = reading.reason;
        t.lastErrorAt = now;
        break;
      case 'incomplete':
      case 'unreadable':
        // Not finished: look again even if nothing moves (a change of the files is
        // read as soon as it settles anyway): after one settle window, then doubling
        // up to MAX_RETRY_MS, so a file stuck half-written costs little.
        t.state = reading.kind;
        t.readSignature = signature;
        t.retryAt =
          now +
          backoffMs(t.retries, {
            initialMs: Math.max(1, this.settleMs),
            maxMs: MAX_RETRY_MS,
            maxExponent: 16,
          });
        t.retries++;
        t.lastError = reading.reason;
        t.lastErrorAt = now;
        break;
    }
    return 'applied';
  }

  /** Pairs that currently serve a certificate (gone-but-not-expired ones included). */
  serving(): Tracked[] {
    return [...this.#pairs.values()].filter((t) => t.good !== undefined);
  }
}
