// Round robin (Sōzu's default): a cursor that walks the candidates in order and
// skips those not eligible. Weight is ignored, as in Sōzu; use WeightedRandom for
// uneven shares.
import type { Candidate, Tier, TieredBalancer } from './candidate.js';
import { eligible } from './candidate.js';

export class RoundRobin implements TieredBalancer {
  /** Index after the last pick; kept modulo the current length, which may change between picks. */
  private cursor = 0;

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return this.pickIn(candidates, 'any');
  }

  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const start = this.cursor % n;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const c = candidates[i]!;
      if (eligible(c, tier)) {
        this.cursor = i + 1;
        return c;
      }
    }
    return undefined;
  }
}
