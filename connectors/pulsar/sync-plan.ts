// The bootstrap and resync diff: what to send so the proxy holds exactly what the
// topic describes for one source. Puts where the proxy's object differs or belongs
// to another source; deletes of objects the topic deletes; deletes of the
// source's objects the topic no longer has. Objects of other sources that the
// topic does not name are never touched. Pure.

import { redactFrontend } from '../../src/model/frontend-rules.js';
import type { Change } from '../../src/state/change.js';
import { deletionOf } from '../../src/state/diff.js';
import { deepEqual } from '../../src/state/transaction.js';
import type { ObjectWord } from './desired.js';
import { isDelete } from './desired.js';
import { objectKey } from './format.js';

/** One object as `get_state` with `sources: true` shows it (certificate keys redacted). */
export interface HeldObject {
  change: Change;
  source: string | undefined;
}

/** A change to send, with the message key it came from: refusals drop whole messages. */
export interface PlannedChange {
  change: Change;
  group: string;
}

const KIND_ORDER = ['listener', 'certificate', 'cluster', 'backend', 'frontend'];
const rank = (c: Change) => KIND_ORDER.indexOf(c.op.slice(c.op.indexOf('_') + 1));
/** Sort order for changes by kind: parents (listeners, certificates, clusters) first. */
export const parentsFirst = (a: Change, b: Change) => rank(a) - rank(b);

export function heldByKey(
  changes: readonly { change: Change; source: string | undefined }[],
): Map<string, HeldObject> {
  const out = new Map<string, HeldObject>();
  for (const h of changes) out.set(objectKey(h.change), h);
  return out;
}

export function planSync(
  desired: Iterable<[string, ObjectWord]>,
  held: ReadonlyMap<string, HeldObject>,
  source: string,
): PlannedChange[] {
  const puts: PlannedChange[] = [];
  const deletes: PlannedChange[] = [];
  const named = new Set<string>();
  for (const [key, word] of desired) {
    named.add(key);
    const h = held.get(key);
    if (isDelete(word.change)) {
      if (h !== undefined) deletes.push({ change: deletionOf(h.change), group: word.from });
      continue;
    }
    if (h !== undefined && h.source === source && sameObject(h.change, word.change)) continue;
    puts.push({ change: word.change, group: word.from });
  }
  for (const [key, h] of held) {
    if (h.source === source && !named.has(key)) deletes.push({ change: deletionOf(h.change), group: key });
  }
  // Parents first for puts, children first for deletes, so that splitting a plan
  // too large for one request still leaves every prefix valid.
  puts.sort((a, b) => parentsFirst(a.change, b.change));
  deletes.sort((a, b) => parentsFirst(b.change, a.change));
  return [...puts, ...deletes];
}

/**
 * Equal as objects; a certificate's key and a cluster's backend client key are
 * not compared, since the proxy never shows them, and password hashes are
 * compared by the digest the proxy shows.
 */
export function sameObject(held: Change, wanted: Change): boolean {
  if (held.op === 'put_frontend' && wanted.op === 'put_frontend')
    return deepEqual(redactFrontend(held.frontend), redactFrontend(wanted.frontend));
  if (held.op === 'put_cluster' && wanted.op === 'put_cluster') {
    const strip = (c: typeof held.cluster) =>
      c.backend_tls === undefined ? c : { ...c, backend_tls: { ...c.backend_tls, client_key: undefined } };
    return deepEqual(strip(held.cluster), strip(wanted.cluster));
  }
  if (held.op === 'put_certificate' && wanted.op === 'put_certificate') {
    const { key: _a, ...h } = held.certificate;
    const { key: _b, ...w } = wanted.certificate;
    return deepEqual(h, w);
  }
  return deepEqual(held, wanted);
}
