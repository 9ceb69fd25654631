// The whole state as a list of puts, and a state built back from one: how main
// hands its state to a new worker. Both halves live here, below main and the
// worker, so the encoding and its reading cannot drift apart.

import type { Change } from './change.js';
import { stateAsChanges } from './diff.js';
import type { ProxyState } from './proxy-state.js';
import { buildState } from './transaction.js';

/**
 * The whole state as puts, parents first: a worker builds its state from it with
 * the same function as every other process (stateOfSnapshot), and then applies
 * each transaction to it in the same vocabulary.
 */
export type Snapshot = Change[];

/** The source of every object a worker holds. */
export const WORKER_SOURCE = 'main';

export function snapshotOf(state: ProxyState): Snapshot {
  return stateAsChanges(state);
}

/**
 * A worker's state from main's snapshot. Sources stay in main (they decide what
 * a reload may touch); in a worker every object is from 'main', the same
 * source its later transactions record.
 */
export function stateOfSnapshot(snapshot: Snapshot): ProxyState {
  const r = buildState(snapshot.map((change) => ({ change, source: WORKER_SOURCE })));
  if (!r.ok) {
    // Main admitted every one of these changes; a refusal here is a bug in kakehi.
    throw new Error(`snapshot refused: ${r.issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`);
  }
  return r.state;
}
