// What a balancer chooses among and the contract every algorithm implements. A
// candidate is one backend as the data plane sees it; `available` and `active`
// change between picks, `id`, `weight` and `backup` only with a new state.

export interface Candidate {
  readonly id: string;
  /** Relative share for weighted algorithms (WeightedRandom); ≤0 means never picked there. */
  readonly weight: number;
  /** Used only when no primary is available (see pickBackend). */
  readonly backup: boolean;
  available: boolean;
  /** In-flight requests or connections: the load the least-loaded algorithms compare. */
  active: number;
}

export interface Balancer {
  /** One available candidate, backup or not, or undefined when the algorithm finds none. */
  pick<C extends Candidate>(candidates: readonly C[]): C | undefined;
}

/** Uniform in [0, 1), like Math.random; injected so tests are deterministic. */
export type Random = () => number;

/** Which candidates a pick may return: any available one, or only available primaries or backups. */
export type Tier = 'any' | 'primary' | 'backup';

/**
 * A balancer that can restrict a pick to one tier without a filtered copy of the
 * array: pickBackend runs per request, and a copy per request is garbage per request.
 */
export interface TieredBalancer extends Balancer {
  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined;
}

export function isTiered(balancer: Balancer): balancer is TieredBalancer {
  return typeof (balancer as Partial<TieredBalancer>).pickIn === 'function';
}

/**
 * A balancer that maps a request's key (a 32-bit hash, see hash-key.ts) to a
 * backend, the same one for the same key while the backends stay; a request
 * without a key is balanced by `pickIn`.
 */
export interface KeyedBalancer extends TieredBalancer {
  pickKeyed<C extends Candidate>(candidates: readonly C[], tier: Tier, key: number): C | undefined;
}

export function isKeyed(balancer: Balancer): balancer is KeyedBalancer {
  return typeof (balancer as Partial<KeyedBalancer>).pickKeyed === 'function';
}

export function eligible(c: Candidate, tier: Tier): boolean {
  return c.available && (tier === 'any' || c.backup === (tier === 'backup'));
}

/** An integer in [0, n); clamped so a generator returning exactly 1 cannot index past the end. */
export function randomIndex(random: Random, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}
