// A put_cluster may carry its backends nested, as the configuration file writes
// clusters: over the socket it is expanded into put_cluster plus a put_backend
// per listed backend, in the same transaction, so workers, the state file and
// the Pulsar topic all see plain changes. The nested list is the cluster's
// whole set of backends (as in an HAProxy or Sōzu cluster): backends of that
// cluster not listed are deleted in the same transaction. Without `backends`
// the cluster's backends are left as they are.

import type { FieldIssue } from '../errors.js';
import { type Backend, nestedBackendSchema } from '../model/objects.js';
import { list } from '../model/schema.js';
import { type Change, parseChanges } from './change.js';
import type { ProxyState } from './proxy-state.js';

/** The backends a put_cluster listed, as its whole set. */
export interface NestedBackends {
  cluster: string;
  backends: Backend[];
}

const nestedList = list(nestedBackendSchema, { maxItems: 10_000 });

/**
 * parseChanges, taking nested `cluster.backends` out of each put_cluster first;
 * every issue keeps its place in the request (`changes[0].cluster.backends[2].address`).
 */
export function parseChangesWithBackends(
  raw: unknown,
  path: string,
): { changes: Change[]; nested: NestedBackends[] } | { issues: FieldIssue[] } {
  if (!Array.isArray(raw)) {
    const r = parseChanges(raw, path); // its issue: not a list
    return 'issues' in r ? r : { ...r, nested: [] };
  }
  const issues: FieldIssue[] = [];
  const listed: { at: number; backends: Omit<Backend, 'cluster'>[] }[] = [];
  const plain = raw.map((item: unknown, i) => {
    const cluster = (item as { op?: unknown; cluster?: unknown } | null)?.cluster;
    if ((item as { op?: unknown }).op !== 'put_cluster' || typeof cluster !== 'object' || cluster === null)
      return item;
    if (!('backends' in cluster)) return item;
    const { backends, ...rest } = cluster as { backends: unknown };
    const at = `${path}[${i}].cluster.backends`;
    const parsed = nestedList.parse(backends, at, issues);
    if (parsed !== undefined) {
      // As in the file: one id, one backend (a second would silently win).
      const first = new Map<string, number>();
      parsed.forEach((b, j) => {
        const k = first.get(b.id);
        if (k === undefined) first.set(b.id, j);
        else issues.push({ path: `${at}[${j}].id`, reason: `"${b.id}" is already used by ${at}[${k}]` });
      });
      listed.push({ at: i, backends: parsed });
    }
    return { ...(item as object), cluster: rest };
  });
  const r = parseChanges(plain, path);
  if ('issues' in r) return { issues: [...issues, ...r.issues] };
  if (issues.length > 0) return { issues };
  // Parsed whole, so each listed index is a put_cluster with its id.
  const nested = listed.map(({ at, backends }) => {
    const id = (r.changes[at] as Extract<Change, { op: 'put_cluster' }>).cluster.id;
    return { cluster: id, backends: backends.map((b): Backend => ({ cluster: id, ...b })) };
  });
  return { changes: r.changes, nested };
}

/**
 * The changes a transaction's nested backends make against the state it meets:
 * a put of each listed backend, and a delete of each backend of the cluster not
 * listed. Appended after the request's own changes, so issue paths of those keep
 * their index.
 */
export function expandNestedBackends(state: ProxyState, nested: readonly NestedBackends[]): Change[] {
  const out: Change[] = [];
  for (const { cluster, backends } of nested) {
    const keep = new Set(backends.map((b) => b.id));
    for (const b of state.backends.values()) {
      if (b.cluster === cluster && !keep.has(b.id))
        out.push({ op: 'delete_backend', cluster, id: b.id, if_exists: true });
    }
    for (const backend of backends) out.push({ op: 'put_backend', backend });
  }
  return out;
}
