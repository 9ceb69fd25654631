// Power of two choices (Mitzenmacher): two distinct eligible candidates drawn at
// random, the one with fewer in-flight requests wins. Unlike Sōzu's POWER_OF_TWO
// (a full scan keeping the two least loaded), the random draw avoids every worker
// herding onto the same least-loaded backend from slightly stale counts.
import type { Candidate, Random, Tier, TieredBalancer } from './candidate.js';
import { eligible, randomIndex } from './candidate.js';

export class PowerOfTwo implements TieredBalancer {
  constructor(private readonly random: Random = Math.random) {}

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return this.pickIn(candidates, 'any');
  }

  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined {
    let m = 0;
    let only: C | undefined;
    for (const c of candidates) {
      if (eligible(c, tier)) {
        m++;
        only = c;
      }
    }
    if (m <= 1) return only;
    const a = randomIndex(this.random, m);
    // Second draw over the m-1 others: distinct without rejection sampling.
    let b = randomIndex(this.random, m - 1);
    if (b >= a) b++;
    let first: C | undefined;
    let second: C | undefined;
    let k = 0;
    for (const c of candidates) {
      if (!eligible(c, tier)) continue;
      if (k === a) first = c;
      else if (k === b) second = c;
      k++;
    }
    // On a tie the first draw wins; it is itself uniform, so ties split evenly.
    return second!.active < first!.active ? second : first;
  }
}
