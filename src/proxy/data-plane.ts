// The seam between state and traffic: turns a ProxyState into what sessions
// read per request — a router per listener, a balancer and backend runtimes
// per cluster — and swaps it whole on update. Backend runtimes (pools, health)
// survive an update when the backend keeps its key and address.

import type { Balancer } from '../balancer/candidate.js';
import { createBalancer, pickBackend } from '../balancer/select.js';
import { type Cluster, type Frontend, type Listener, listenerKey } from '../model/objects.js';
import { parseHostRule } from '../router/host-rule.js';
import { parsePathRule } from '../router/path-rule.js';
import { type Route, Router } from '../router/router.js';
import { clusterBackends, listenerFrontends, type ProxyState } from '../state/proxy-state.js';
import { BackendRuntime, type HealthEvent } from './backend-runtime.js';

export interface ClusterRuntime {
  readonly spec: Cluster;
  readonly balancer: Balancer;
  readonly backends: BackendRuntime[];
}

export interface RouteTarget {
  readonly frontend: Frontend;
  readonly cluster: ClusterRuntime | undefined;
}

export interface ListenerRuntime {
  readonly spec: Listener;
  readonly router: Router<RouteTarget>;
}

export class DataPlane {
  private listeners = new Map<string, ListenerRuntime>();
  private clusters = new Map<string, ClusterRuntime>();
  private backends = new Map<string, BackendRuntime>();
  private sweeper: NodeJS.Timeout;

  constructor(
    state: ProxyState,
    private readonly onHealth: (e: HealthEvent) => void,
  ) {
    this.update(state);
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const b of this.backends.values()) b.sweep(now);
    }, 1000);
    this.sweeper.unref();
  }

  listener(key: string): ListenerRuntime | undefined {
    return this.listeners.get(key);
  }

  /** Replaces the routing tables; sessions pick them up on their next request. */
  update(state: ProxyState): void {
    const backends = new Map<string, BackendRuntime>();
    const clusters = new Map<string, ClusterRuntime>();
    for (const spec of state.clusters.values()) {
      const runtimes = clusterBackends(state, spec.id).map((b) => {
        const key = `${b.cluster}/${b.id}`;
        const old = this.backends.get(key);
        let rt: BackendRuntime;
        if (old && old.spec.address === b.address) {
          old.weight = b.weight;
          old.backup = b.backup;
          rt = old;
        } else rt = new BackendRuntime(b, this.onHealth);
        backends.set(key, rt);
        return rt;
      });
      const old = this.clusters.get(spec.id);
      const balancer =
        old && old.spec.load_balancing === spec.load_balancing
          ? old.balancer
          : createBalancer(spec.load_balancing);
      clusters.set(spec.id, { spec, balancer, backends: runtimes });
    }
    for (const [key, rt] of this.backends) if (backends.get(key) !== rt) rt.retire();
    const listeners = new Map<string, ListenerRuntime>();
    for (const spec of state.listeners.values()) {
      const routes: Route<RouteTarget>[] = listenerFrontends(state, spec).map((f) => ({
        key: `${f.hostname};${f.path_type}:${f.path};${f.method ?? '*'}`,
        host: parseHostRule(f.hostname),
        path: parsePathRule(f.path_type, f.path),
        ...(f.method === undefined ? {} : { method: f.method }),
        target: { frontend: f, cluster: f.cluster === undefined ? undefined : clusters.get(f.cluster) },
      }));
      listeners.set(listenerKey(spec), { spec, router: new Router(routes) });
    }
    this.backends = backends;
    this.clusters = clusters;
    this.listeners = listeners;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const b of this.backends.values()) b.retire();
  }
}

/**
 * The backend for one connection attempt: the balancer's choice among those not
 * yet tried; if every backend is backing off, the one whose backoff ends first
 * (fail-open, as Sōzu does, so one bad minute never blackholes a cluster).
 */
export function chooseBackend(
  cluster: ClusterRuntime,
  tried: readonly BackendRuntime[],
): BackendRuntime | undefined {
  const now = Date.now();
  const all = cluster.backends;
  for (const b of all) b.refresh(now);
  const candidates = tried.length === 0 ? all : all.filter((b) => !tried.includes(b));
  const picked = pickBackend(cluster.balancer, candidates) as BackendRuntime | undefined;
  if (picked !== undefined) return picked;
  let best: BackendRuntime | undefined;
  for (const b of candidates) {
    if (b.retired || b.weight === 0) continue;
    if (best === undefined || b.retryAt < best.retryAt) best = b;
  }
  return best;
}
