// Expiry warnings: each served certificate is checked against the configured
// thresholds (days before not-after, e.g. 21 and 7). A warning is given once per
// certificate and threshold crossed, not at every rescan; a renewed certificate
// (new fingerprint) starts clean. Pure: time is passed in.

export const DAY_MS = 86_400_000;

export interface ExpiryWarning {
  fingerprint: string;
  pairKey: string;
  names: string[];
  not_after: string;
  /** The smallest threshold crossed, in days. */
  threshold_days: number;
  days_left: number;
  expired: boolean;
}

export class ExpiryWatch {
  readonly #thresholds: number[];
  /** fingerprint → smallest threshold already warned about. */
  readonly #warned = new Map<string, number>();

  constructor(thresholdDays: readonly number[]) {
    this.#thresholds = [...new Set(thresholdDays)].sort((a, b) => b - a);
  }

  /** The smallest threshold the certificate is within, or undefined when none. */
  level(notAfter: string, now: number): number | undefined {
    const left = (Date.parse(notAfter) - now) / DAY_MS;
    if (left <= 0) return 0;
    let hit: number | undefined;
    for (const t of this.#thresholds) if (left <= t) hit = t;
    return hit;
  }

  /**
   * New warnings for this check. `current` is every served certificate; warnings
   * for fingerprints no longer served are forgotten (bounded memory).
   */
  check(
    current: readonly { fingerprint: string; pairKey: string; names: string[]; not_after: string }[],
    now: number,
  ): ExpiryWarning[] {
    const out: ExpiryWarning[] = [];
    const live = new Set<string>();
    for (const c of current) {
      live.add(c.fingerprint);
      const level = this.level(c.not_after, now);
      if (level === undefined) continue;
      const before = this.#warned.get(c.fingerprint);
      if (before !== undefined && before <= level) continue;
      this.#warned.set(c.fingerprint, level);
      const daysLeft = Math.floor((Date.parse(c.not_after) - now) / DAY_MS);
      out.push({
        fingerprint: c.fingerprint,
        pairKey: c.pairKey,
        names: c.names,
        not_after: c.not_after,
        threshold_days: level,
        days_left: daysLeft,
        expired: Date.parse(c.not_after) <= now,
      });
    }
    for (const f of [...this.#warned.keys()]) if (!live.has(f)) this.#warned.delete(f);
    return out;
  }
}
