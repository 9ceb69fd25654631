// An immutable string-keyed map made of a shared base and a small patch of
// edits, so a transaction touching one of 10,000 frontends copies the patch,
// not the map. Reads cost one extra lookup; iteration order is Map's own.

const DELETED: unique symbol = Symbol('deleted');
type Slot<V> = V | typeof DELETED;

/**
 * Patch size above which the patch is folded into a fresh base: 4·√n keeps
 * each change's patch copy small (400 entries at n = 10,000) while the O(n)
 * fold happens once per 400 changes, so it stays out of the p99.
 */
function foldAt(baseSize: number): number {
  return Math.max(64, 4 * Math.ceil(Math.sqrt(baseSize)));
}

export class LayeredMap<V> implements ReadonlyMap<string, V> {
  readonly size: number;

  private constructor(
    private readonly base: ReadonlyMap<string, V>,
    private readonly patch: ReadonlyMap<string, Slot<V>>,
    size: number,
  ) {
    this.size = size;
  }

  /**
   * `from` with `edits` applied (undefined deletes), sharing what it can. `from`
   * is never modified; `edits` must not be modified afterwards.
   */
  static edit<V>(
    from: ReadonlyMap<string, V>,
    edits: ReadonlyMap<string, V | undefined>,
  ): ReadonlyMap<string, V> {
    if (edits.size === 0) return from;
    const base = from instanceof LayeredMap ? (from.base as ReadonlyMap<string, V>) : from;
    const patch = new Map<string, Slot<V>>(from instanceof LayeredMap ? from.patch : []);
    let size = from.size;
    for (const [k, v] of edits) {
      const had = from.has(k);
      if (v === undefined) {
        if (had) size--;
        // A key absent from the base needs no tombstone.
        if (base.has(k)) patch.set(k, DELETED);
        else patch.delete(k);
      } else {
        if (!had) size++;
        patch.set(k, v);
      }
    }
    const out = new LayeredMap(base, patch, size);
    return patch.size > foldAt(base.size) ? new Map(out) : out;
  }

  get(key: string): V | undefined {
    const v = this.patch.get(key);
    if (v === undefined) return this.base.get(key);
    return v === DELETED ? undefined : v;
  }

  has(key: string): boolean {
    const v = this.patch.get(key);
    return v === undefined ? this.base.has(key) : v !== DELETED;
  }

  *entries(): MapIterator<[string, V]> {
    for (const [k, v] of this.base) {
      const p = this.patch.get(k);
      if (p === undefined) yield [k, v];
      else if (p !== DELETED) yield [k, p];
    }
    for (const [k, p] of this.patch) if (p !== DELETED && !this.base.has(k)) yield [k, p];
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}
