// The desired state of source `pulsar`, as the topic describes it: the connector's
// copy of the compacted view (the latest message per key, each with its position)
// and the fold of that view into one word per object. The fold has the meaning
// compaction gives the topic: each object takes the change of the latest message
// still in the view that names it. A tombstone removes its message from the view,
// so an object also put by a transaction message falls back to that transaction's
// version (docs/pulsar.md, "Transactions and compaction").
//
// Pure: no I/O, no clock. The live path and the bootstrap both feed messages
// through `apply`, so a replay and a live stream end in the same state.

import type { Change } from '../../src/state/change.js';
import { deletionOf } from '../../src/state/diff.js';
import { type Decoded, objectKey, TRANSACTION_PREFIX } from './format.js';

interface ViewEntry {
  seq: number;
  changes: Change[];
  objects: string[];
  transaction: boolean;
}

/** The fold's word on one object: its latest change (a put or a delete), and the message key that said it. */
export interface ObjectWord {
  change: Change;
  from: string;
}

/** What one message did to the fold, and the changes that bring a proxy from before to after. */
export interface Applied {
  objects: string[];
  changes: Change[];
}

export class DesiredState {
  readonly #view = new Map<string, ViewEntry>();
  readonly #words = new Map<string, ObjectWord>();
  // Transaction messages that name an object: its other possible writers besides
  // the message under its own key. Kept so a refold looks at a few entries, not the view.
  readonly #txnWriters = new Map<string, Set<string>>();
  #seq = 0;

  constructor(readonly maxObjects = 1_000_000) {}

  get messages(): number {
    return this.#view.size;
  }

  get objects(): ReadonlyMap<string, ObjectWord> {
    return this.#words;
  }

  /** Whether a message under `key` with these changes would grow the fold past maxObjects. */
  wouldOverflow(key: string, changes: readonly Change[]): boolean {
    if (this.#view.has(key)) return false;
    let added = 0;
    for (const c of changes) if (!this.#words.has(objectKey(c))) added++;
    return this.#words.size + added > this.maxObjects;
  }

  /**
   * Takes one message: `changes` for a message with a payload, undefined for a
   * tombstone. Returns the objects it touched and the changes that turn the
   * previous fold's objects into the new one's (puts, and deletes of objects the
   * fold no longer has or now deletes).
   */
  apply(key: string, changes: Change[] | undefined, transaction: boolean): Applied {
    const old = this.#view.get(key);
    const before = new Map<string, ObjectWord | undefined>();
    if (old !== undefined) {
      for (const o of old.objects) before.set(o, this.#words.get(o));
      this.#unlink(key, old);
    }
    if (changes !== undefined) {
      const objects = [...new Set(changes.map(objectKey))];
      const entry: ViewEntry = { seq: ++this.#seq, changes, objects, transaction };
      for (const o of objects) if (!before.has(o)) before.set(o, this.#words.get(o));
      this.#view.set(key, entry);
      if (transaction) {
        for (const o of objects) {
          const w = this.#txnWriters.get(o) ?? new Set<string>();
          w.add(key);
          this.#txnWriters.set(o, w);
        }
      }
    } else if (!transaction) {
      // A tombstone under an object's key names that object even with no message before it.
      if (!before.has(key)) before.set(key, this.#words.get(key));
    }
    const out: Change[] = [];
    for (const [o, prev] of before) {
      const next = this.#refold(o);
      if (next === undefined) this.#words.delete(o);
      else this.#words.set(o, next);
      const c = transition(prev?.change, next?.change);
      if (c !== undefined) out.push(c);
    }
    return { objects: [...before.keys()], changes: out };
  }

  /** A decoded message: its changes, or a tombstone (a transaction's is known by its key). */
  take(d: Exclude<Decoded, { type: 'rejected' }>): Applied {
    return d.type === 'tombstone'
      ? this.apply(d.key, undefined, d.key.startsWith(TRANSACTION_PREFIX))
      : this.apply(d.key, d.changes, d.transaction);
  }

  /** Every object's latest word, parents first: what the bootstrap diffs against the proxy. */
  words(): IterableIterator<[string, ObjectWord]> {
    return this.#words.entries();
  }

  #unlink(key: string, entry: ViewEntry): void {
    this.#view.delete(key);
    if (!entry.transaction) return;
    for (const o of entry.objects) {
      const w = this.#txnWriters.get(o);
      w?.delete(key);
      if (w?.size === 0) this.#txnWriters.delete(o);
    }
  }

  // The latest message still in the view that names object `o`: the one under
  // o's own key, or a transaction that names it.
  #refold(o: string): ObjectWord | undefined {
    let best: ViewEntry | undefined;
    let bestKey = '';
    const own = this.#view.get(o);
    if (own !== undefined && !own.transaction) {
      best = own;
      bestKey = o;
    }
    for (const t of this.#txnWriters.get(o) ?? []) {
      const e = this.#view.get(t);
      if (e !== undefined && (best === undefined || e.seq > best.seq)) {
        best = e;
        bestKey = t;
      }
    }
    if (best === undefined) return undefined;
    let change: Change | undefined;
    for (const c of best.changes) if (objectKey(c) === o) change = c;
    return change === undefined ? undefined : { change, from: bestKey };
  }
}

/** The change that takes a proxy from the fold's old word on an object to its new one. */
function transition(prev: Change | undefined, next: Change | undefined): Change | undefined {
  // A delete is sent even after a delete: the topic's word holds whoever put the object since.
  if (next !== undefined) return prev === next ? undefined : next;
  if (prev === undefined || isDelete(prev)) return undefined;
  return deletionOf(prev);
}

export function isDelete(c: Change): boolean {
  return c.op.startsWith('delete_');
}
