// The routing state as one immutable value: every object by its stable key,
// and the invariants that must hold between them (references resolve). The
// data plane builds its routing tables from one of these at a time.

import type { FieldIssue } from '../errors.js';
import {
  type Backend,
  type Certificate,
  type Cluster,
  type Frontend,
  keyOf,
  type Listener,
  listenerClusters,
  type ObjectKind,
  terminatesTls,
} from '../model/objects.js';

/** Every map is keyed by keyOf(kind, object) (src/model/objects.ts). */
export interface ProxyState {
  readonly listeners: ReadonlyMap<string, Listener>;
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly backends: ReadonlyMap<string, Backend>;
  readonly frontends: ReadonlyMap<string, Frontend>;
  readonly certificates: ReadonlyMap<string, Certificate>;
  /**
   * Who put each object ('config', 'runtime', 'pki', 'pulsar'…), keyed
   * sourceKey(kind, key): `listener:<key>`, `backend:<cluster/id>`…
   * A config reload touches only objects whose source is 'config'.
   */
  readonly sources: ReadonlyMap<string, string>;
}

/** The map of a ProxyState that holds each kind of object. */
export const STATE_MAPS = {
  listener: 'listeners',
  cluster: 'clusters',
  backend: 'backends',
  frontend: 'frontends',
  certificate: 'certificates',
} as const satisfies Record<ObjectKind, keyof ProxyState>;

/** The key of an object's entry in `ProxyState.sources`. */
export function sourceKey(kind: ObjectKind, key: string): string {
  return `${kind}:${key}`;
}

export function emptyState(): ProxyState {
  return Object.freeze({
    listeners: new Map(),
    clusters: new Map(),
    backends: new Map(),
    frontends: new Map(),
    certificates: new Map(),
    sources: new Map(),
  });
}

/** Freezes a plain JSON-like value and everything inside it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Every reference that does not resolve, named by the object that holds it. */
export function referenceIssues(state: ProxyState): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [key, b] of state.backends) {
    if (!state.clusters.has(b.cluster)) {
      issues.push({ path: `backend ${key}`, reason: `cluster "${b.cluster}" does not exist` });
    }
  }
  for (const [key, f] of state.frontends) {
    if (f.cluster !== undefined && !state.clusters.has(f.cluster)) {
      issues.push({ path: `frontend ${key}`, reason: `cluster "${f.cluster}" does not exist` });
    }
    if (f.listener !== undefined && !state.listeners.has(keyOf('listener', { address: f.listener }))) {
      issues.push({ path: `frontend ${key}`, reason: `listener "${f.listener}" does not exist` });
    }
  }
  for (const [key, c] of state.certificates) {
    const l = state.listeners.get(keyOf('listener', { address: c.listener }));
    if (l === undefined)
      issues.push({ path: `certificate ${key}`, reason: `listener "${c.listener}" does not exist` });
    else if (!terminatesTls(l.protocol))
      issues.push({
        path: `certificate ${key}`,
        reason: `listener "${c.listener}" is not an https or tls listener`,
      });
  }
  for (const [key, l] of state.listeners) {
    for (const cluster of listenerClusters(l))
      if (!state.clusters.has(cluster))
        issues.push({ path: `listener ${key}`, reason: `cluster "${cluster}" does not exist` });
  }
  return issues;
}

/** Frontends that apply to a listener: its own and those for every listener. */
export function listenerFrontends(state: ProxyState, listener: Listener): Frontend[] {
  const key = keyOf('listener', listener);
  const out: Frontend[] = [];
  for (const f of state.frontends.values()) {
    if (f.listener === undefined || keyOf('listener', { address: f.listener }) === key) out.push(f);
  }
  return out;
}
