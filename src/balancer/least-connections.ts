// Least connections (Sōzu LEAST_LOADED on active requests): the eligible
// candidate with the fewest in-flight requests. Ties rotate: the scan starts
// after the previous pick, so equal backends share load instead of the first one
// taking every request while the others idle.
import type { Candidate, Tier, TieredBalancer } from './candidate.js';
import { eligible } from './candidate.js';

export class LeastConnections implements TieredBalancer {
  private cursor = 0;

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return this.pickIn(candidates, 'any');
  }

  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const start = this.cursor % n;
    let best: C | undefined;
    let bestIndex = 0;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const c = candidates[i]!;
      if (!eligible(c, tier)) continue;
      // Strictly fewer: among equals the first met from the cursor wins.
      if (best === undefined || c.active < best.active) {
        best = c;
        bestIndex = i;
      }
    }
    if (best !== undefined) this.cursor = bestIndex + 1;
    return best;
  }
}
