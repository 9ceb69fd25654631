// Weighted random (Sōzu RANDOM): each eligible candidate is picked with
// probability weight / total weight. A weight of 0 (or negative, or not finite)
// is never picked, which is how an operator drains a backend.
import type { Candidate, Random, Tier, TieredBalancer } from './candidate.js';
import { eligible } from './candidate.js';

function weightOf(c: Candidate): number {
  const w = c.weight;
  return w > 0 && w !== Number.POSITIVE_INFINITY ? w : 0;
}

export class WeightedRandom implements TieredBalancer {
  constructor(private readonly random: Random = Math.random) {}

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return this.pickIn(candidates, 'any');
  }

  /** Two passes (sum, then walk) rather than a prefix-sum array: no allocation per pick. */
  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined {
    let total = 0;
    for (const c of candidates) if (eligible(c, tier)) total += weightOf(c);
    if (!(total > 0)) return undefined;
    let r = this.random() * total;
    let last: C | undefined;
    for (const c of candidates) {
      const w = eligible(c, tier) ? weightOf(c) : 0;
      if (w === 0) continue;
      last = c;
      r -= w;
      if (r < 0) return c;
    }
    // Floating-point rounding can leave r at a hair above 0 after the last weight.
    return last;
  }
}
