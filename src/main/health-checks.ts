// Active health checks, run by main once per instance (never once per worker):
// one jittered timer per backend of every cluster with a `health_check`, at
// most HEALTH_CHECK_MAX_CONCURRENT probes in flight. Results are not
// configuration: they bump no generation and are never saved; main sends every
// worker the set of backends down (`health_checks`), and a worker started later
// gets the current set in its init.

import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import * as D from '../defaults.js';
import type { Logger } from '../log/logger.js';
import { type Family, Registry } from '../metrics/registry.js';
import { parseAddress, type SocketAddress } from '../model/address.js';
import type { BackendTls } from '../model/backend-tls.js';
import { type Backend, type Cluster, type HealthCheck, keyOf, probeTimeoutMs } from '../model/objects.js';
import { connectionOptions, prepareBackendTls } from '../proxy/backend-tls.js';
import type { ProxyState } from '../state/proxy-state.js';
import {
  afterPassiveDown,
  afterProbe,
  firstDelay,
  INITIAL_HEALTH,
  jitteredDelay,
  type ProbeHealth,
  statusExpected,
  statusRanges,
} from './health-hysteresis.js';
import type { SupervisorEvent } from './worker-pool.js';

interface Target {
  backend: Backend;
  check: HealthCheck;
  ranges: [number, number][];
  health: ProbeHealth;
  /** Why it is down (the last failed probe, or the traffic that took it out); the last failure while up. */
  reason: string | null;
  timer: NodeJS.Timeout | undefined;
  probing: boolean;
  /** Set when the target is dropped or its check changed, so a late probe result is ignored. */
  stale: boolean;
}

/** What `ctl backends` shows of a backend's active check. */
export interface CheckView {
  check: 'up' | 'down' | 'off';
  check_reason: string | null;
}

export class HealthChecks {
  readonly #targets = new Map<string, Target>();
  /** Clusters whose every backend is down by check: fail-open (or 503) is in force. */
  readonly #allDown = new Set<string>();
  #clusters: ReadonlyMap<string, Cluster> = new Map();
  #backends: ReadonlyMap<string, Backend> | undefined;
  #inFlight = 0;
  #stopped = false;
  /** Down by check in the main this one succeeded (`ctl upgrade --main`), until the first sync. */
  readonly #inherited = new Map<string, string | null>();
  readonly #registry = new Registry();
  readonly #up = this.#registry.gauge(
    'kakehi_backend_up',
    'Whether a backend is up (1) or down (0): by traffic in each worker, by health check in main; the lowest wins.',
  );
  readonly #failOpen = this.#registry.gauge(
    'kakehi_cluster_fail_open',
    'Every backend of the cluster is down by health check and traffic still goes to them (fail_open), 1; else 0.',
  );
  readonly #probes = this.#registry.counter(
    'kakehi_health_check_probes_total',
    'Health check probes by outcome: ok, failed, or skipped (too many probes in flight).',
  );

  constructor(
    private readonly log: Logger,
    private readonly hooks: {
      /** The set of backends down by check changed: every worker gets it. */
      changed: (down: string[]) => void;
      event: (ev: SupervisorEvent) => void;
    },
    private readonly random: () => number = Math.random,
  ) {}

  /** Follows a committed state: new checks start, changed ones restart keeping their health, removed ones stop. */
  sync(state: ProxyState): void {
    if (this.#stopped) return;
    // Maps a transaction leaves alone keep their identity (src/state): most changes (frontends, certificates) cost nothing here.
    if (state.clusters === this.#clusters && state.backends === this.#backends) return;
    this.#clusters = state.clusters;
    this.#backends = state.backends;
    const wanted = new Set<string>();
    let changed = false;
    for (const b of state.backends.values()) {
      const check = state.clusters.get(b.cluster)?.health_check;
      if (check === undefined) continue;
      const key = keyOf('backend', b);
      wanted.add(key);
      const have = this.#targets.get(key);
      if (have !== undefined && have.backend.address === b.address && sameCheck(have.check, check)) {
        have.backend = b;
        continue;
      }
      // A new address is a new server: what the old one answered says nothing of it.
      const keep = have !== undefined && have.backend.address === b.address;
      if (have !== undefined) this.#drop(have);
      const t: Target = {
        backend: b,
        check,
        ranges: statusRanges(check.expect_status),
        health: keep
          ? { up: have.health.up, streak: 0 }
          : this.#inherited.has(key)
            ? { up: false, streak: 0 }
            : INITIAL_HEALTH,
        reason: keep ? have.reason : (this.#inherited.get(key) ?? null),
        timer: undefined,
        probing: false,
        stale: false,
      };
      if (have !== undefined && have.health.up !== t.health.up) changed = true;
      this.#targets.set(key, t);
      this.#up.get(key, () => ({ cluster: b.cluster, backend: b.id })).set(t.health.up ? 1 : 0);
      this.#schedule(t, firstDelay(check.interval_ms, this.random()));
    }
    for (const [key, t] of this.#targets) {
      if (wanted.has(key)) continue;
      if (!t.health.up) changed = true;
      this.#drop(t);
      this.#targets.delete(key);
    }
    this.#up.retain((k) => this.#targets.has(k));
    // The workers started with the inherited set; from now on it is this one's.
    if (this.#inherited.size > 0) changed = true;
    this.#inherited.clear();
    if (changed) this.hooks.changed(this.down());
    this.#reviewClusters();
  }

  /** Backend keys down by check now: what a worker starting now must know. */
  down(): string[] {
    const out: string[] = [];
    for (const [key, t] of this.#targets) if (!t.health.up) out.push(key);
    for (const key of this.#inherited.keys()) if (!this.#targets.has(key)) out.push(key);
    return out;
  }

  /** Who is down and why, for a successor main: it starts from this, not from everyone up. */
  downWithReasons(): { key: string; reason: string | null }[] {
    const out: { key: string; reason: string | null }[] = [];
    for (const [key, t] of this.#targets) if (!t.health.up) out.push({ key, reason: t.reason });
    return out;
  }

  /**
   * A successor main starts with its predecessor's verdicts: a backend the old
   * main had taken out stays out (its workers' init says so) until its own
   * probes bring it back, instead of taking traffic until `fall` probes fail.
   */
  inherit(down: readonly { key: string; reason: string | null }[]): void {
    for (const d of down) this.#inherited.set(d.key, d.reason);
  }

  view(key: string): CheckView {
    const t = this.#targets.get(key);
    if (t === undefined) return { check: 'off', check_reason: null };
    return { check: t.health.up ? 'up' : 'down', check_reason: t.health.up ? null : t.reason };
  }

  /**
   * A worker saw the backend fail real requests (passive): a checked backend is
   * taken out everywhere now, not after `fall` probes, and comes back only
   * after `rise` good ones.
   */
  passiveDown(cluster: string, backend: string, reason: string): void {
    const t = this.#targets.get(keyOf('backend', { cluster, id: backend }));
    if (t === undefined || !t.health.up) return;
    this.#transition(t, afterPassiveDown(t.health), `traffic: ${reason}`);
  }

  families(): Family[] {
    return this.#registry.families();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#targets.values()) this.#drop(t);
    this.#targets.clear();
  }

  #drop(t: Target): void {
    t.stale = true;
    clearTimeout(t.timer);
  }

  #schedule(t: Target, delay: number): void {
    t.timer = setTimeout(() => this.#probe(t), delay);
    t.timer.unref();
  }

  #probe(t: Target): void {
    if (t.stale) return;
    this.#schedule(t, jitteredDelay(t.check.interval_ms, this.random()));
    // Bounded: with every slot busy this round is skipped, and a probe still
    // running (a slow backend) is not doubled.
    if (t.probing || this.#inFlight >= D.HEALTH_CHECK_MAX_CONCURRENT) {
      this.#probes.get('skipped', () => ({ outcome: 'skipped' })).add(1);
      return;
    }
    t.probing = true;
    this.#inFlight++;
    const run = t.check.type === 'tcp' ? probeTcp : probeHttp;
    // A cluster with backend_tls is probed over TLS, checked as its traffic is.
    const tls = this.#clusters.get(t.backend.cluster)?.backend_tls;
    run(t.backend.address, t.check, t.ranges, tls, (failure) => {
      t.probing = false;
      this.#inFlight--;
      if (t.stale || this.#stopped) return;
      const outcome = failure === undefined ? 'ok' : 'failed';
      this.#probes.get(outcome, () => ({ outcome })).add(1);
      if (failure !== undefined && t.health.up) t.reason = failure;
      const next = afterProbe(t.health, failure === undefined, t.check.rise, t.check.fall);
      this.#transition(t, next, failure ?? `${t.check.rise} good probe(s) in a row`);
    });
  }

  #transition(t: Target, next: ProbeHealth, reason: string): void {
    const was = t.health.up;
    t.health = next;
    if (next.up === was) return;
    const b = t.backend;
    const key = keyOf('backend', b);
    t.reason = next.up ? null : reason;
    this.#up.get(key, () => ({ cluster: b.cluster, backend: b.id })).set(next.up ? 1 : 0);
    const type = next.up ? 'backend_up' : 'backend_down';
    const fields = { cluster: b.cluster, backend: b.id, address: b.address, reason };
    if (next.up) this.log.info({ event: type, ...fields }, 'backend up by health check');
    else this.log.warn({ event: type, ...fields }, 'backend down by health check');
    this.hooks.changed(this.down());
    this.hooks.event({ type, ...fields, by: 'health_check' });
    this.#reviewClusters();
  }

  /** Says when a cluster has no backend left up by check (fail-open or 503), and when it has one again. */
  #reviewClusters(): void {
    const byCluster = new Map<string, boolean>();
    for (const t of this.#targets.values()) {
      // Drain and maintenance are the operator's: never fail-open to them, so they do not count.
      if (t.backend.state !== 'active' || t.backend.weight === 0) continue;
      const c = t.backend.cluster;
      byCluster.set(c, (byCluster.get(c) ?? false) || t.health.up);
    }
    for (const [cluster, anyUp] of byCluster) {
      const spec = this.#clusters.get(cluster);
      const failOpen = spec?.fail_open ?? true;
      this.#failOpen.get(cluster, () => ({ cluster })).set(!anyUp && failOpen ? 1 : 0);
      if (!anyUp && !this.#allDown.has(cluster)) {
        this.#allDown.add(cluster);
        this.log.error(
          { event: 'cluster_all_down', cluster, fail_open: failOpen },
          failOpen
            ? 'every backend of the cluster is down by health check; fail-open: traffic still goes to them'
            : 'every backend of the cluster is down by health check; requests get 503 (fail_open is false)',
        );
        this.hooks.event({ type: 'cluster_all_down', cluster, fail_open: failOpen });
      } else if (anyUp && this.#allDown.delete(cluster)) {
        this.log.info({ event: 'cluster_back_up', cluster }, 'a backend of the cluster is up again');
        this.hooks.event({ type: 'cluster_back_up', cluster });
      }
    }
    for (const cluster of this.#allDown) if (!byCluster.has(cluster)) this.#allDown.delete(cluster);
    this.#failOpen.retain((c) => byCluster.has(c));
  }
}

function sameCheck(a: HealthCheck, b: HealthCheck): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function hostPort(address: string): SocketAddress {
  // Checked when the backend was admitted: a string (a problem) cannot come back here.
  return parseAddress(address, { allowPortZero: false }) as SocketAddress;
}

/**
 * The one way a probe ends: first outcome wins, the deadline is cleared and the
 * connection closed; the deadline itself is the timeout failure.
 */
function settleOnce(
  timeoutMs: number,
  timedOut: string,
  close: () => void,
  done: (failure: string | undefined) => void,
): (failure: string | undefined) => void {
  let settled = false;
  const settle = (failure: string | undefined) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    close();
    done(failure);
  };
  const timer = setTimeout(() => settle(timedOut), timeoutMs);
  return settle;
}

/**
 * A connection that opens within the timeout is good (with backend_tls: whose
 * TLS handshake completes, certificate checked); it is closed at once.
 */
function probeTcp(
  address: string,
  check: HealthCheck,
  _ranges: unknown,
  tls: BackendTls | undefined,
  done: (failure: string | undefined) => void,
): void {
  const { host, port } = hostPort(address);
  const what = tls === undefined ? 'tcp connect' : 'tls handshake';
  const socket =
    tls === undefined
      ? connect({ host, port })
      : tlsConnect(connectionOptions(prepareBackendTls(tls), host, port, undefined));
  const settle = settleOnce(
    probeTimeoutMs(check),
    `${what} timed out after ${probeTimeoutMs(check)} ms`,
    () => socket.destroy(),
    done,
  );
  socket.once(tls === undefined ? 'connect' : 'secureConnect', () => settle(undefined));
  socket.once('error', (err) => settle(`${what} failed: ${err.message}`));
}

/**
 * One request on a fresh connection (agent: false: a pooled connection would
 * say nothing of whether the backend accepts new ones); good when the status
 * is expected. The head must arrive within the timeout; the body is not read.
 */
function probeHttp(
  address: string,
  check: HealthCheck,
  ranges: readonly [number, number][],
  tls: BackendTls | undefined,
  done: (failure: string | undefined) => void,
): void {
  const { host, port } = hostPort(address);
  // servername '' rather than absent: node:https would take the SNI name from the Host header.
  const secure =
    tls === undefined
      ? undefined
      : { servername: '', ...connectionOptions(prepareBackendTls(tls), host, port, undefined) };
  const req = (secure === undefined ? request : httpsRequest)({
    ...secure,
    host,
    port,
    method: check.method,
    path: check.path,
    agent: false,
    maxHeaderSize: D.HEALTH_CHECK_MAX_HEAD_BYTES,
    headers: { host: check.host ?? address, 'user-agent': 'kakehi-health-check', connection: 'close' },
  });
  const settle = settleOnce(
    probeTimeoutMs(check),
    `http ${check.method} ${check.path} timed out after ${probeTimeoutMs(check)} ms`,
    () => req.destroy(),
    done,
  );
  req.once('response', (res) => {
    const status = res.statusCode ?? 0;
    res.resume();
    settle(
      statusExpected(status, ranges)
        ? undefined
        : `http ${check.method} ${check.path} answered ${status}, expected ${check.expect_status}`,
    );
  });
  req.once('error', (err) => settle(`http ${check.method} ${check.path} failed: ${err.message}`));
  req.end();
}
