// How long to wait before trying again: exponential, capped, with an optional
// random share taken off so that many retriers of one failure spread out. Pure,
// and below every layer, so the command client, main and the connectors all
// compute their retry delays here, each with its own parameters.

export interface BackoffPolicy {
  /** The wait before the first retry (retry 0), before jitter. */
  initialMs: number;
  /** No wait is longer than this, before jitter. */
  maxMs: number;
  /** Growth per retry (default 2). */
  factor?: number;
  /** Retries past this one wait as long as it does (a bound on the exponent). */
  maxExponent?: number;
  /** Share of each wait taken off at random: 0 none (default), 0.5 half, 1 "full jitter". */
  jitter?: number;
}

/**
 * The wait before retry `retry` (0-based): min(maxMs, initialMs·factor^retry),
 * less `jitter · random` of it. `random` is in [0, 1): Math.random(), or a fixed
 * value in tests.
 */
export function backoffMs(retry: number, p: BackoffPolicy, random = 0): number {
  const exponent = Math.min(retry, p.maxExponent ?? Number.POSITIVE_INFINITY);
  const ceiling = Math.min(p.maxMs, p.initialMs * (p.factor ?? 2) ** exponent);
  return ceiling * (1 - (p.jitter ?? 0) * random);
}
