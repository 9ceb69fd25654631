// Shared by the state-*.test.ts files: model objects with defaults filled in by
// the real schemas, and structural comparison of two states.
import assert from 'node:assert/strict';
import type { FieldIssue } from '../../src/errors.js';
import {
  type Backend,
  backendSchema,
  type Cluster,
  clusterSchema,
  type Frontend,
  frontendSchema,
  type Listener,
  listenerSchema,
} from '../../src/model/objects.js';
import type { Schema } from '../../src/model/schema.js';
import type { ProxyState } from '../../src/state/proxy-state.js';
import { deepEqual } from '../../src/state/transaction.js';

function make<T>(schema: Schema<T>, raw: unknown): T {
  const issues: FieldIssue[] = [];
  const v = schema.parse(raw, 'fixture', issues);
  assert.ok(v !== undefined, `fixture is valid: ${JSON.stringify(issues)}`);
  return v;
}
export const listener = (address: string, extra: object = {}): Listener =>
  make(listenerSchema, { address, ...extra });
export const cluster = (id: string, extra: object = {}): Cluster => make(clusterSchema, { id, ...extra });
export const backend = (
  clusterId: string,
  id: string,
  address = '127.0.0.1:9001',
  extra: object = {},
): Backend => make(backendSchema, { cluster: clusterId, id, address, ...extra });
export const frontend = (raw: object): Frontend => make(frontendSchema, raw);

const KINDS = ['listeners', 'clusters', 'backends', 'frontends'] as const;

/** The same objects under the same keys (sources not compared). */
export function sameObjects(a: ProxyState, b: ProxyState): boolean {
  return KINDS.every((k) => {
    const x = a[k] as ReadonlyMap<string, unknown>;
    const y = b[k] as ReadonlyMap<string, unknown>;
    if (x.size !== y.size) return false;
    for (const [key, v] of x) if (!y.has(key) || !deepEqual(v, y.get(key))) return false;
    return true;
  });
}

export function sameSources(a: ProxyState, b: ProxyState): boolean {
  if (a.sources.size !== b.sources.size) return false;
  for (const [k, v] of a.sources) if (b.sources.get(k) !== v) return false;
  return true;
}

/** A plain copy of every map, to prove a state was not modified. */
export function snapshot(s: ProxyState): string {
  return JSON.stringify([...KINDS, 'sources' as const].map((k) => [...s[k]]));
}
