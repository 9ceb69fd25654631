// Balancer construction by configured name, and the per-request backend choice:
// available primaries first, backups only when no primary can be picked (Sōzu
// `backends.rs`), undefined when nothing is available (the caller answers 503).
import type { Balancer, Candidate, Random } from './candidate.js';
import { isKeyed, isTiered } from './candidate.js';
import { LeastConnections } from './least-connections.js';
import { Maglev } from './maglev.js';
import { PowerOfTwo } from './power-of-two.js';
import { WeightedRandom } from './random.js';
import { Rendezvous } from './rendezvous.js';
import { RoundRobin } from './round-robin.js';

export type BalancerKind =
  | 'round_robin'
  | 'random'
  | 'least_connections'
  | 'power_of_two'
  | 'hash_rendezvous'
  | 'hash_maglev';

/** The algorithms that map a request's hash_key to a backend. */
export function isHashing(kind: BalancerKind): kind is 'hash_rendezvous' | 'hash_maglev' {
  return kind === 'hash_rendezvous' || kind === 'hash_maglev';
}

/** One balancer per cluster: round robin and least connections keep a cursor across picks. */
export function createBalancer(kind: BalancerKind, random: Random = Math.random): Balancer {
  switch (kind) {
    case 'round_robin':
      return new RoundRobin();
    case 'random':
      return new WeightedRandom(random);
    case 'least_connections':
      return new LeastConnections();
    case 'power_of_two':
      return new PowerOfTwo(random);
    case 'hash_rendezvous':
      return new Rendezvous();
    case 'hash_maglev':
      return new Maglev();
    default: {
      const unknown: never = kind;
      throw new Error(`unknown load balancing ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * The backend for one request. Backups are considered only when the balancer picks
 * no primary: none available or, for weighted random, every available primary at
 * weight 0 (drained). Returns one of `candidates`, or undefined when none is available.
 * `key` is the request's hash (hash-key.ts), read by hash balancers only.
 */
export function pickBackend<C extends Candidate>(
  balancer: Balancer,
  candidates: readonly C[],
  key?: number,
): C | undefined {
  if (key !== undefined && isKeyed(balancer)) {
    return balancer.pickKeyed(candidates, 'primary', key) ?? balancer.pickKeyed(candidates, 'backup', key);
  }
  if (isTiered(balancer)) {
    return balancer.pickIn(candidates, 'primary') ?? balancer.pickIn(candidates, 'backup');
  }
  // A balancer from elsewhere knows no tiers: hand it filtered copies.
  return (
    balancer.pick(candidates.filter((c) => c.available && !c.backup)) ??
    balancer.pick(candidates.filter((c) => c.available && c.backup))
  );
}
