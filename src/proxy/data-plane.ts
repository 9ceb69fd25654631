// The seam between state and traffic: turns a ProxyState into what sessions
// read per request — a router per listener, a balancer and backend runtimes
// per cluster — and swaps it whole on update. Backend runtimes (pools, health)
// survive an update when the backend keeps its key and address.

import type { Balancer } from '../balancer/candidate.js';
import { createBalancer, pickBackend } from '../balancer/select.js';
import { stickyIdOf } from '../balancer/sticky-id.js';
import { type Backend, type Cluster, type Frontend, keyOf, type Listener } from '../model/objects.js';
import { type Route, Router } from '../router/router.js';
import { listenerFrontends, type ProxyState } from '../state/proxy-state.js';
import { type BackendLive, BackendRuntime } from './backend-runtime.js';
import { RateLimits } from './rate-limit.js';
import type { Affinity } from './request-affinity.js';
import { type HealthEvent, stickyMiss } from './request-events.js';
import { frontendRoute, type RouteTarget as RouteTargetOf } from './route-decision.js';

/** Updated in place when its cluster or backends change, so routes can hold it. */
export interface ClusterRuntime {
  spec: Cluster;
  balancer: Balancer;
  backends: BackendRuntime[];
  /** sticky_session: each backend by the sticky id its cookie carries. */
  sticky?: Map<string, BackendRuntime> | undefined;
}

export type RouteTarget = RouteTargetOf<ClusterRuntime>;

export interface ListenerRuntime {
  readonly spec: Listener;
  readonly router: Router<RouteTarget>;
}

export class DataPlane {
  /**
   * Requests begun (a head read, or refused at once) whose end is not yet
   * published: the sessions keep it, the worker's metrics read it. A count on the
   * one data plane of a worker, not an event per request start, which would cost
   * more than the gauge it feeds is worth.
   */
  requestsInFlight = 0;
  /** Every frontend's rate limit buckets in this worker; they survive a change of the limit. */
  readonly rateLimits = new RateLimits();
  private listeners = new Map<string, ListenerRuntime>();
  private clusters = new Map<string, ClusterRuntime>();
  private backends = new Map<string, BackendRuntime>();
  /** Backend keys main's health checks hold down; kept so a backend added later starts right. */
  private checkedDown = new Set<string>();
  private sweeper: NodeJS.Timeout;
  private state: ProxyState | undefined;
  private readonly routes = new WeakMap<Frontend, Route<RouteTarget>>();

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

  /** A cluster by id: a tcp listener finds its own per connection, so a change of it applies to the next one. */
  cluster(id: string): ClusterRuntime | undefined {
    return this.clusters.get(id);
  }

  /** Replaces the routing tables; sessions pick them up on their next request. */
  update(state: ProxyState): void {
    const prev = this.state;
    this.state = state;
    // Maps untouched by a transaction keep their identity (src/state), so a
    // backend change costs the clusters and backends, not the 10,000 routes.
    if (prev === undefined || state.clusters !== prev.clusters || state.backends !== prev.backends) {
      this.updateClusters(state);
    }
    if (prev === undefined || state.frontends !== prev.frontends || state.listeners !== prev.listeners) {
      this.updateRouters(state);
    }
  }

  private updateClusters(state: ProxyState): void {
    const byCluster = new Map<string, Backend[]>();
    for (const b of state.backends.values()) {
      const list = byCluster.get(b.cluster);
      if (list) list.push(b);
      else byCluster.set(b.cluster, [b]);
    }
    const backends = new Map<string, BackendRuntime>();
    const clusters = new Map<string, ClusterRuntime>();
    for (const spec of state.clusters.values()) {
      const runtimes = (byCluster.get(spec.id) ?? []).map((b) => {
        const key = keyOf('backend', b);
        const old = this.backends.get(key);
        let rt: BackendRuntime;
        if (old && old.spec.address === b.address) {
          old.weight = b.weight;
          old.backup = b.backup;
          // A derived id depends only on the key, which is the same: hash again only for a set one.
          if (b.sticky_id !== old.spec.sticky_id) old.stickyId = stickyIdOf(b);
          if (old.state !== b.state) old.setState(b.state);
          if (old.maxConnections !== b.max_connections) old.setMaxConnections(b.max_connections);
          rt = old;
        } else {
          rt = new BackendRuntime(b, this.onHealth);
          rt.checkedDown = this.checkedDown.has(key);
        }
        rt.setTls(spec.backend_tls);
        backends.set(key, rt);
        return rt;
      });
      // The same object for the same id: routes point at it, and stay valid.
      const old = this.clusters.get(spec.id);
      const sticky = spec.sticky_session ? stickyMap(runtimes) : undefined;
      if (old) {
        if (old.spec.load_balancing !== spec.load_balancing)
          old.balancer = createBalancer(spec.load_balancing);
        old.spec = spec;
        old.backends = runtimes;
        old.sticky = sticky;
        clusters.set(spec.id, old);
      } else
        clusters.set(spec.id, {
          spec,
          balancer: createBalancer(spec.load_balancing),
          backends: runtimes,
          sticky,
        });
    }
    for (const [key, rt] of this.backends) if (backends.get(key) !== rt) rt.retire();
    this.backends = backends;
    this.clusters = clusters;
  }

  private updateRouters(state: ProxyState): void {
    const listeners = new Map<string, ListenerRuntime>();
    for (const spec of state.listeners.values()) {
      const routes = listenerFrontends(state, spec).map((f) => this.routeOf(f));
      listeners.set(keyOf('listener', spec), { spec, router: new Router(routes) });
    }
    this.listeners = listeners;
    this.rateLimits.sync(state.frontends.values());
  }

  /** A frontend's route, parsed once per frontend object (rules are the costly part). */
  private routeOf(f: Frontend): Route<RouteTarget> {
    const cluster = f.cluster === undefined ? undefined : this.clusters.get(f.cluster);
    const cached = this.routes.get(f);
    if (cached !== undefined && cached.target.cluster === cluster) return cached;
    const route = frontendRoute(f, cluster);
    this.routes.set(f, route);
    return route;
  }

  /** The whole set of backends main's health checks hold down now. */
  setCheckedDown(keys: readonly string[]): void {
    this.checkedDown = new Set(keys);
    for (const [key, rt] of this.backends) rt.setCheckedDown(this.checkedDown.has(key));
  }

  /** Each backend of the state as this worker sees it now (query_backends). */
  backendsLive(): BackendLive[] {
    return [...this.backends.values()].map((b) => b.live());
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const b of this.backends.values()) b.retire();
  }
}

/** Backends by sticky id; with two alike (an operator's sticky_id), the first declared keeps it. */
function stickyMap(runtimes: readonly BackendRuntime[]): Map<string, BackendRuntime> {
  const m = new Map<string, BackendRuntime>();
  for (const rt of runtimes) if (!m.has(rt.stickyId)) m.set(rt.stickyId, rt);
  return m;
}

/**
 * The backend for one connection attempt, among those not yet tried: the one
 * the sticky cookie names while it is available (a backup only while no
 * primary is), else the balancer's choice, by the request's hash key for a
 * hash balancer. With none available, fail-open (as Sōzu does, so one bad
 * minute never blackholes a cluster): backends down by health check, the
 * sticky one first, then spread by the balancer, when the cluster's fail_open
 * allows; then the one whose backoff ends first.
 */
export function chooseBackend(
  cluster: ClusterRuntime,
  tried: readonly BackendRuntime[],
  affinity?: Affinity,
): BackendRuntime | undefined {
  const chosen = choose(cluster, tried, affinity);
  const sticky = affinity?.sticky;
  // Counted once per request (its first attempt), whatever served it instead.
  if (sticky !== undefined && tried.length === 0 && chosen?.stickyId !== sticky && stickyMiss.hasSubscribers)
    stickyMiss.publish(cluster.spec.id);
  return chosen;
}

function choose(
  cluster: ClusterRuntime,
  tried: readonly BackendRuntime[],
  affinity: Affinity | undefined,
): BackendRuntime | undefined {
  const now = Date.now();
  const all = cluster.backends;
  for (const b of all) b.refresh(now);
  // Tried ones sit out this pick: marked, not filtered out, so hash balancers
  // keep the list their tables were built for (no rebuild per retry).
  for (const b of tried) b.available = false;
  // A retry is not held to the cookie: the backend it names was just tried.
  const stuck =
    affinity?.sticky !== undefined && tried.length === 0 ? cluster.sticky?.get(affinity.sticky) : undefined;
  if (stuck !== undefined && holds(stuck, all)) return stuck;
  const key = affinity?.key;
  const picked = pickBackend(cluster.balancer, all, key) as BackendRuntime | undefined;
  if (picked !== undefined) return picked;
  const failOpen = cluster.spec.fail_open;
  if (failOpen) {
    let any = false;
    for (const b of all) {
      if (!b.checkedDown || !b.usable(now) || tried.includes(b)) continue;
      b.available = true; // until the next pick's refresh
      any = true;
    }
    if (any && stuck !== undefined && holds(stuck, all)) return stuck;
    const open = any ? (pickBackend(cluster.balancer, all, key) as BackendRuntime | undefined) : undefined;
    if (open !== undefined) return open;
  }
  let best: BackendRuntime | undefined;
  for (const b of all) {
    if (tried.includes(b)) continue;
    // Fail-open is for backends that fail, not for those the operator took out.
    if (b.retired || b.weight === 0 || b.state !== 'active') continue;
    if (b.checkedDown && !failOpen) continue;
    if (best === undefined || b.retryAt < best.retryAt) best = b;
  }
  return best;
}

/** A sticky backend keeps its client while available; a backup only while no primary is. */
function holds(b: BackendRuntime, all: readonly BackendRuntime[]): boolean {
  return b.available && (!b.backup || !all.some((o) => o.available && !o.backup));
}
