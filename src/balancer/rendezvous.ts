// Rendezvous (highest random weight) hashing: each backend scores the key, the
// highest score wins. Removing a backend moves only the keys it held, and an
// unavailable one simply falls out of the race, so its keys go to their second
// choice, spread over the others. Weighted as in "logarithmic method" HRW
// (score = -w / ln u, u uniform in (0, 1)): a backend's share is w / Σw.
import type { Candidate, KeyedBalancer, Tier } from './candidate.js';
import { eligible } from './candidate.js';
import { fmix32, hashString } from './hash-key.js';
import { RoundRobin } from './round-robin.js';

const TWO_POW_32 = 4294967296;

/** A backend's score for a key: its id's hash mixed with the key's, as u in (0, 1). */
function uniform(key: number, idHash: number): number {
  return (fmix32(Math.imul(key, 0x9e3779b1) ^ idHash) + 0.5) / TWO_POW_32;
}

export class Rendezvous implements KeyedBalancer {
  /** Requests without a key (no such header or cookie): balanced round robin, as HAProxy does. */
  private readonly fallback = new RoundRobin();
  /** The id hashes of the last candidate list seen; the data plane keeps one list per state. */
  private hashesOf: readonly Candidate[] | undefined;
  private hashes = new Uint32Array(0);
  /** Whether the list's weights differ (read with the hashes, once per list). */
  private weighted = false;

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return this.fallback.pickIn(candidates, 'any');
  }

  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined {
    return this.fallback.pickIn(candidates, tier);
  }

  pickKeyed<C extends Candidate>(candidates: readonly C[], tier: Tier, key: number): C | undefined {
    const hashes = this.idHashes(candidates);
    const weighted = this.weighted;
    let best: C | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (!eligible(c, tier) || !(c.weight > 0)) continue;
      // ln u < 0, so the score is positive and grows with the weight. With equal
      // weights it orders backends as u does: the logarithm is skipped.
      const u = uniform(key, hashes[i]!);
      const score = weighted ? -c.weight / Math.log(u) : u;
      // Ties (same id twice) go to the first, so the choice never depends on order of equals.
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    return best;
  }

  /** Hashes of the candidates' ids, computed once per list rather than per request. */
  private idHashes(candidates: readonly Candidate[]): Uint32Array {
    if (this.hashesOf !== candidates || this.hashes.length !== candidates.length) {
      const hashes = new Uint32Array(candidates.length);
      for (let i = 0; i < candidates.length; i++) hashes[i] = hashString(candidates[i]!.id);
      this.hashes = hashes;
      this.weighted = candidates.some((c) => c.weight !== candidates[0]!.weight);
      this.hashesOf = candidates;
    }
    return this.hashes;
  }
}
