// Maglev hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size
// where each backend fills slots in its own pseudo-random order, in turns, so
// shares are even to within one slot and a key is one table read. The table is
// built when the set of backends (ids, weights, backup roles) changes, at the
// first pick after it, never per request. A key whose slot holds an unavailable
// backend walks on to the next slots: the table's interleaving spreads those
// keys over the others, and keys of available backends do not move.
import type { Candidate, KeyedBalancer, Tier } from './candidate.js';
import { eligible } from './candidate.js';
import { hashString } from './hash-key.js';
import { RoundRobin } from './round-robin.js';

/**
 * Table sizes: primes, the smallest one at least 100 times the backends taking
 * part (the paper's advice, so a change moves few keys beyond the minimum).
 * 65,537 entries of 2 bytes (128 KiB) serve up to 655 backends.
 */
const TABLE_SIZES = [65_537, 131_071, 262_139, 524_287, 1_048_573] as const;

export function maglevTableSize(members: number): number {
  for (const m of TABLE_SIZES) if (m >= members * 100) return m;
  return TABLE_SIZES[TABLE_SIZES.length - 1]!;
}

/** Slots before a walk over unavailable backends checks whether any is available at all. */
const WALK_BEFORE_SCAN = 64;

interface Table {
  /** Index into the candidate list of the backend owning each slot. */
  readonly slots: Uint16Array | Uint32Array;
}

/**
 * Fills a table for the candidates whose indices are `members`, weighted: per
 * round a backend takes weight/max-weight slots on average (Maglev's weighted
 * variant), the heaviest exactly one.
 */
export function buildMaglevTable(candidates: readonly Candidate[], members: readonly number[]): Table {
  const size = maglevTableSize(members.length);
  const n = members.length;
  const slots = candidates.length < 0xffff ? new Uint16Array(size) : new Uint32Array(size);
  const owned = new Uint8Array(size);
  // Positions and skips are below the size (< 2^21): int arithmetic, and a
  // subtraction instead of a modulo in the inner loop.
  const pos = new Int32Array(n);
  const skip = new Int32Array(n);
  const share = new Float64Array(n);
  const credit = new Float64Array(n);
  let maxWeight = 0;
  for (const i of members) maxWeight = Math.max(maxWeight, candidates[i]!.weight);
  for (let k = 0; k < n; k++) {
    const c = candidates[members[k]!]!;
    pos[k] = hashString(c.id, 0x4d41474c) % size;
    skip[k] = (hashString(c.id, 0x45563031) % (size - 1)) + 1;
    share[k] = c.weight / maxWeight;
  }
  let filled = 0;
  while (filled < size) {
    for (let k = 0; k < n && filled < size; k++) {
      credit[k]! += share[k]!;
      if (credit[k]! < 1) continue;
      credit[k]! -= 1;
      // The next slot of this backend's permutation that no one owns yet.
      const step = skip[k]!;
      let p = pos[k]!;
      while (owned[p] === 1) {
        p += step;
        if (p >= size) p -= size;
      }
      owned[p] = 1;
      slots[p] = members[k]!;
      p += step;
      pos[k] = p >= size ? p - size : p;
      filled++;
    }
  }
  return { slots };
}

export class Maglev implements KeyedBalancer {
  private readonly fallback = new RoundRobin();
  /** The list the tables index, and what it held when they were built. */
  private builtFor: readonly Candidate[] | undefined;
  private signature = '';
  private tables: Partial<Record<Tier, Table | null>> = {};
  /** Tables built so far: tests hold it to one per set of backends, never one per request. */
  tablesBuilt = 0;

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return this.fallback.pickIn(candidates, 'any');
  }

  pickIn<C extends Candidate>(candidates: readonly C[], tier: Tier): C | undefined {
    return this.fallback.pickIn(candidates, tier);
  }

  pickKeyed<C extends Candidate>(candidates: readonly C[], tier: Tier, key: number): C | undefined {
    const table = this.tableFor(candidates, tier);
    if (table === null) return undefined;
    const { slots } = table;
    const size = slots.length;
    let p = key % size;
    for (let walked = 0; walked < size; walked++) {
      if (walked === WALK_BEFORE_SCAN && !candidates.some((c) => eligible(c, tier) && c.weight > 0))
        return undefined;
      const c = candidates[slots[p]!]!;
      if (eligible(c, tier)) return c;
      p = p + 1 === size ? 0 : p + 1;
    }
    return undefined;
  }

  /** The tier's table for this list: rebuilt only when ids, weights or roles differ. */
  private tableFor(candidates: readonly Candidate[], tier: Tier): Table | null {
    if (this.builtFor !== candidates) {
      const signature = signatureOf(candidates);
      if (signature !== this.signature) {
        this.signature = signature;
        this.tables = {};
      }
      // Same ids in the same order: the slots' indices hold for the new list.
      this.builtFor = candidates;
    }
    let table = this.tables[tier];
    if (table === undefined) {
      const members: number[] = [];
      candidates.forEach((c, i) => {
        if (c.weight > 0 && (tier === 'any' || c.backup === (tier === 'backup'))) members.push(i);
      });
      table = members.length === 0 ? null : buildMaglevTable(candidates, members);
      this.tablesBuilt++;
      this.tables[tier] = table;
    }
    return table;
  }
}

function signatureOf(candidates: readonly Candidate[]): string {
  let s = '';
  for (const c of candidates) s += `${c.id}\u0000${c.weight}\u0000${c.backup ? 1 : 0}\u0000`;
  return s;
}
