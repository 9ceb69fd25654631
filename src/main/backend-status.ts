// What `query_backends` answers: each backend of the authoritative state with
// what the workers see of it now (in flight, connections, failures, up or down),
// added up over the workers, and per cluster the totals of its backends. Pure,
// so the sums are checked without processes.

import type { BackendStatus, BackendsResult, ClusterStatus } from '../command/protocol.js';
import { type Backend, keyOf } from '../model/objects.js';
import type { BackendLive } from '../proxy/backend-runtime.js';
import { type ProxyState, sourceKey } from '../state/proxy-state.js';
import { redactCluster } from './command/certificate-output.js';

/** One worker's answer. */
export interface WorkerBackends {
  worker: number;
  backends: BackendLive[];
}

export function backendsResult(
  state: ProxyState,
  generation: number,
  views: readonly WorkerBackends[],
  cluster?: string,
  /** Main's health check of a backend, by key; absent: no checks known (pure callers). */
  checkOf: (key: string) => { check: string; check_reason: string | null } = () => ({
    check: 'off',
    check_reason: null,
  }),
): BackendsResult {
  const seen = new Map<string, BackendLive[]>();
  for (const v of views) {
    for (const b of v.backends) {
      const key = keyOf('backend', b);
      const list = seen.get(key);
      if (list) list.push(b);
      else seen.set(key, [b]);
    }
  }
  const backends: BackendStatus[] = [];
  for (const [key, b] of state.backends) {
    if (cluster !== undefined && b.cluster !== cluster) continue;
    backends.push({
      ...b,
      source: state.sources.get(sourceKey('backend', key)),
      ...liveTotals(seen.get(key) ?? [], checkOf(key)),
    });
  }
  const clusters: ClusterStatus[] = [];
  for (const c of state.clusters.values()) {
    if (cluster !== undefined && c.id !== cluster) continue;
    const own = backends.filter((b) => b.cluster === c.id);
    const count = (pred: (b: BackendStatus) => boolean) => own.filter(pred).length;
    clusters.push({
      ...redactCluster(c),
      source: state.sources.get(sourceKey('cluster', c.id)),
      backends: own.length,
      active: count((b) => b.state === 'active'),
      drain: count((b) => b.state === 'drain'),
      maintenance: count((b) => b.state === 'maintenance'),
      down: count((b) => b.health !== 'up'),
      in_flight: own.reduce((n, b) => n + b.in_flight, 0),
      queued: own.reduce((n, b) => n + b.queued, 0),
      connections: own.reduce((n, b) => n + b.connections, 0),
    });
  }
  return { generation, workers: views.length, backends, clusters };
}

type LiveTotals = Omit<BackendStatus, keyof Backend | 'source'>;

function liveTotals(
  views: readonly BackendLive[],
  check: { check: string; check_reason: string | null },
): LiveTotals {
  const down = views.filter((v) => v.down);
  let last: BackendLive | undefined;
  for (const v of views) {
    if (v.last_error_at !== null && (last === undefined || v.last_error_at > last.last_error_at!)) last = v;
  }
  const since = down.map((v) => v.down_since).filter((s): s is string => s !== null);
  return {
    // Down by health check is down for every worker, whatever its traffic saw.
    health:
      check.check === 'down'
        ? 'down'
        : views.length === 0
          ? 'unknown'
          : down.length === 0
            ? 'up'
            : down.length === views.length
              ? 'down'
              : `down in ${down.length}/${views.length} workers`,
    in_flight: views.reduce((n, v) => n + v.in_flight, 0),
    // A worker from before this field (a rolling upgrade) answers without it.
    queued: views.reduce((n, v) => n + (v.queued ?? 0), 0),
    connections: views.reduce((n, v) => n + v.connections, 0),
    failures: views.reduce((n, v) => n + v.failures, 0),
    last_error: last?.last_error ?? null,
    last_error_at: last?.last_error_at ?? null,
    down_since: since.length === 0 ? null : since.sort()[0]!,
    ...check,
  };
}
