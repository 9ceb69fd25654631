// A worker's metrics: subscribes to the data plane's diagnostics channels
// (src/proxy/request-events.ts) and keeps the counts the proxy exposes through
// query_metrics. The data plane publishes only when someone subscribes, so
// with KAKEHI_METRICS=off nothing here runs and the hot path pays nothing.
// With metrics on, a request costs one `request:end` event; its series are
// cached per (cluster, backend), never found by a label key built per request
// (docs/performance.md, "Cost of metrics on the hot path").

import type diagnostics_channel from 'node:diagnostics_channel';
import { basicAuthLoad } from '../proxy/basic-auth.js';
import { type H2ConnectionClosed, h2Refused } from '../proxy/h2-events.js';
import {
  connectionsRefused,
  type LimitRefusal,
  limitRefused,
  listenerRefused,
} from '../proxy/limit-events.js';
import { workerConnections } from '../proxy/listening-server.js';
import { type ProxyProtocolError, proxyProtocolError } from '../proxy/proxy-accept.js';
import {
  type BackendAttempt,
  backendConnectFailure,
  backendHealth,
  backendRetry,
  connectionClose,
  connectionOpen,
  type HealthEvent,
  type RequestEnd,
  requestEnd,
  stickyMiss,
} from '../proxy/request-events.js';
import { type TcpConnectionEnd, tcpConnectionEnd, tcpConnectionStart } from '../proxy/tcp-events.js';
import { type Family, type Histogram, Registry, type Scalar } from './registry.js';

const SEP = '\u0000';

/** What a request on one (cluster, backend) pair updates, resolved once per pair. */
interface RouteSeries {
  readonly cluster: string;
  readonly backend: string;
  /** kakehi_http_requests_total by status (the index); statuses are 3 digits, so 1000 slots. */
  readonly byStatus: (Scalar | undefined)[];
  /** kakehi_http_request_duration_seconds of the cluster (shared by its backends). */
  readonly duration: Histogram;
  /** kakehi_backend_response_seconds, made on the first request a backend answers. */
  backendTime: Histogram | undefined;
}

export class WorkerMetrics {
  private readonly registry = new Registry();
  private readonly requests = this.registry.counter(
    'kakehi_http_requests_total',
    'HTTP requests answered, by cluster, backend and status code ("" when none).',
  );
  private readonly duration = this.registry.histogram(
    'kakehi_http_request_duration_seconds',
    'Time from the request head read to the response end, in seconds.',
  );
  private readonly backendTime = this.registry.histogram(
    'kakehi_backend_response_seconds',
    'Time from the request sent to the backend to its response head, in seconds.',
  );
  private readonly connections = this.registry.gauge(
    'kakehi_connections_active',
    'Client connections open now.',
  );
  private readonly active = this.registry.gauge('kakehi_requests_active', 'Requests in progress now.');
  private readonly bytesIn = this.registry.counter(
    'kakehi_client_bytes_received_total',
    'Bytes received from clients (request heads and bodies).',
  );
  private readonly bytesOut = this.registry.counter(
    'kakehi_client_bytes_sent_total',
    'Response bytes sent to clients.',
  );
  private readonly up = this.registry.gauge(
    'kakehi_backend_up',
    'Whether the backend is considered up (1) or down (0) by this worker.',
  );
  private readonly connectFailures = this.registry.counter(
    'kakehi_backend_connect_failures_total',
    'Failed connection attempts to a backend.',
  );
  private readonly retries = this.registry.counter(
    'kakehi_backend_retries_total',
    'Requests tried again on another backend after a failed connect.',
  );
  private readonly stickyMisses = this.registry.counter(
    'kakehi_sticky_misses_total',
    'Requests whose sticky cookie named a backend that is gone or not available, so were balanced anew, by cluster.',
  );
  private readonly proxyErrors = this.registry.counter(
    'kakehi_proxy_protocol_errors_total',
    'Connections to a listener with expect_proxy closed for want of a valid PROXY header, by listener and reason.',
  );
  private readonly tcpActive = this.registry.gauge(
    'kakehi_tcp_connections_active',
    'Connections of tcp and tls listeners open now, by cluster.',
  );
  private readonly tcpTotal = this.registry.counter(
    'kakehi_tcp_connections_total',
    'Connections of tcp and tls listeners ended, by cluster (with or without a backend).',
  );
  private readonly tcpBytesIn = this.registry.counter(
    'kakehi_tcp_bytes_received_total',
    'Bytes received from clients of tcp and tls listeners, by cluster, counted when a connection ends.',
  );
  private readonly tcpBytesOut = this.registry.counter(
    'kakehi_tcp_bytes_sent_total',
    'Bytes sent to clients of tcp and tls listeners, by cluster, counted when a connection ends.',
  );
  private readonly tcpDuration = this.registry.histogram(
    'kakehi_tcp_connection_duration_seconds',
    'How long connections of tcp and tls listeners lasted, by cluster, in seconds.',
  );
  private readonly authRemembered = this.registry.gauge(
    'kakehi_basic_auth_remembered',
    'Basic credentials remembered as checked (bounded LRU), summed over workers.',
  );
  private readonly authRunning = this.registry.gauge(
    'kakehi_basic_auth_checks_running',
    'scrypt password checks running now off the event loop.',
  );
  private readonly listenerRefusals = this.registry.counter(
    'kakehi_listener_connections_refused_total',
    'Connections a listener closed unserved at once because it was at its max_connections, by listener.',
  );
  private readonly globalRefusals = this.registry.counter(
    'kakehi_connections_refused_total',
    'Connections closed unserved at once because the worker was at its overall max_connections, by listener and reason (global_limit).',
  );
  private readonly workerOpen = this.registry.gauge(
    'kakehi_worker_connections_open',
    'Client connections a worker holds open now over all its listeners, in TLS handshakes and PROXY headers too: its count against the top-level max_connections.',
  );
  private readonly rateLimited = this.registry.counter(
    'kakehi_rate_limited_total',
    'Requests answered 429 by a frontend rate limit, by listener and cluster.',
  );
  private readonly bodyRefused = this.registry.counter(
    'kakehi_request_body_too_large_total',
    'Requests answered 413 (or cut) for a body over max_request_body_bytes, by listener and cluster.',
  );
  private readonly queueRefused = this.registry.counter(
    'kakehi_backend_queue_refused_total',
    'Requests answered 503 by a backend at its max_connections, by cluster, backend and reason (queue_full, queue_timeout).',
  );
  private readonly queueLength = this.registry.gauge(
    'kakehi_backend_queue_length',
    'Requests waiting now for a backend at its max_connections, by cluster and backend.',
  );
  private readonly byProtocol = this.registry.counter(
    'kakehi_http_requests_by_protocol_total',
    'HTTP requests answered, by the protocol the client spoke (http/1.1, h2).',
  );
  private readonly h2Refusals = this.registry.counter(
    'kakehi_http2_refused_total',
    'HTTP/2 connections closed (rapid_reset, session_error) or streams reset (malformed_request) for what the client sent, by listener and reason.',
  );
  // The global series, made once: gauges read 0 rather than being absent.
  private readonly h1Requests = this.byProtocol.get('http/1.1', () => ({ protocol: 'http/1.1' }));
  private readonly h2Requests = this.byProtocol.get('h2', () => ({ protocol: 'h2' }));
  private readonly conn = this.connections.get('', () => ({}));
  private readonly act = this.active.get('', () => ({}));
  private readonly workerOpenNow = this.workerOpen.get('', () => ({}));
  private readonly inB = this.bytesIn.get('', () => ({}));
  private readonly outB = this.bytesOut.get('', () => ({}));
  private readonly remembered = this.authRemembered.get('', () => ({}));
  private readonly checking = this.authRunning.get('', () => ({}));

  /** The series one (cluster, backend) pair updates per request, found without building a key. */
  private readonly routes = new Map<string, Map<string, RouteSeries>>();
  private readonly clusterDuration = new Map<string, Histogram>();

  private readonly handlers: [diagnostics_channel.Channel, (m: unknown) => void][] = [
    [requestEnd, (m) => this.onRequestEnd(m as RequestEnd)],
    [connectionOpen, () => this.conn.add(1)],
    [connectionClose, () => this.conn.add(-1)],
    [backendHealth, (m) => this.onHealth(m as HealthEvent)],
    [backendConnectFailure, (m) => this.onConnectFailure(m as BackendAttempt)],
    [backendRetry, (m) => this.onRetry(m as BackendAttempt)],
    [stickyMiss, (m) => this.stickyMisses.get(m as string, () => ({ cluster: m as string })).add(1)],
    [proxyProtocolError, (m) => this.onProxyError(m as ProxyProtocolError)],
    [h2Refused, (m) => this.onH2Refused(m as H2ConnectionClosed)],
    [tcpConnectionStart, (m) => this.tcpActiveOf(m as string).add(1)],
    [tcpConnectionEnd, (m) => this.onTcpEnd(m as TcpConnectionEnd)],
    [
      listenerRefused,
      (m) => this.listenerRefusals.get(m as string, () => ({ listener: m as string })).add(1),
    ],
    [
      connectionsRefused,
      (m) =>
        this.globalRefusals
          .get(m as string, () => ({ listener: m as string, reason: 'global_limit' }))
          .add(1),
    ],
    [limitRefused, (m) => this.onLimitRefused(m as LimitRefusal)],
  ];

  start(): this {
    for (const [ch, fn] of this.handlers) ch.subscribe(fn);
    return this;
  }

  stop(): void {
    for (const [ch, fn] of this.handlers) ch.unsubscribe(fn);
  }

  /** Backends start up (1), as the data plane assumes; removed backends lose their series. Called with every state served. */
  syncBackends(backends: Iterable<{ cluster: string; id: string }>): void {
    const keys = new Set<string>();
    for (const b of backends) {
      const key = b.cluster + SEP + b.id;
      keys.add(key);
      if (!this.up.has(key)) this.up.get(key, () => ({ cluster: b.cluster, backend: b.id })).set(1);
    }
    this.up.retain((k) => keys.has(k));
  }

  /**
   * The kakehi_tcp_* series of a cluster no longer configured go, as a removed
   * backend's kakehi_backend_up does. A cluster whose connections are still open
   * (a retired listener draining) keeps them until a sync after they ended.
   */
  syncClusters(ids: Iterable<string>): void {
    const present = new Set(ids);
    const keep = (k: string) => present.has(k) || (this.tcpActive.has(k) && this.tcpActiveOf(k).value !== 0);
    for (const m of [this.tcpActive, this.tcpTotal, this.tcpBytesIn, this.tcpBytesOut, this.tcpDuration])
      m.retain(keep);
  }

  /** `requestsInFlight`: read, not counted here; the data plane keeps it (DataPlane.requestsInFlight). */
  families(
    requestsInFlight = 0,
    backends: readonly { cluster: string; id: string; queued: number }[] = [],
  ): Family[] {
    this.act.set(requestsInFlight);
    this.workerOpenNow.set(workerConnections.open);
    const auth = basicAuthLoad();
    this.remembered.set(auth.remembered);
    this.checking.set(auth.running);
    // Read at scrape time from the backends: a queue moves too often to count by events.
    const keys = new Set<string>();
    for (const b of backends) {
      const key = b.cluster + SEP + b.id;
      keys.add(key);
      this.queueLength.get(key, () => ({ cluster: b.cluster, backend: b.id })).set(b.queued);
    }
    this.queueLength.retain((k) => keys.has(k));
    return this.registry.families();
  }

  // The hot path: two Map lookups on the event's own strings (their hashes are
  // cached), an array index by status, a bucket search; no string built.
  private onRequestEnd(e: RequestEnd): void {
    const r = this.route(e.cluster ?? '', e.backend ?? '');
    const status = e.status;
    let c = status >= 0 && status < r.byStatus.length ? r.byStatus[status] : undefined;
    if (c === undefined) c = this.requestSeries(r, status);
    c.value++;
    r.duration.observe(e.durationMs / 1000);
    if (e.backendMs >= 0) {
      const cluster = r.cluster;
      const backend = r.backend;
      r.backendTime ??= this.backendTime.get(cluster + SEP + backend, () => ({ cluster, backend }));
      r.backendTime.observe(e.backendMs / 1000);
    }
    if (e.protocol === 'h2') this.h2Requests.value++;
    else this.h1Requests.value++;
    this.inB.value += e.bytesIn;
    this.outB.value += e.bytesOut;
  }

  private route(cluster: string, backend: string): RouteSeries {
    let byBackend = this.routes.get(cluster);
    if (byBackend === undefined) {
      byBackend = new Map();
      this.routes.set(cluster, byBackend);
    }
    let r = byBackend.get(backend);
    if (r === undefined) {
      let duration = this.clusterDuration.get(cluster);
      if (duration === undefined) {
        duration = this.duration.get(cluster, () => ({ cluster }));
        this.clusterDuration.set(cluster, duration);
      }
      r = {
        cluster,
        backend,
        byStatus: new Array<Scalar | undefined>(1000).fill(undefined),
        duration,
        backendTime: undefined,
      };
      byBackend.set(backend, r);
    }
    return r;
  }

  /** First request with this status on this route (or a status outside 0–999, never cached). */
  private requestSeries(r: RouteSeries, status: number): Scalar {
    const { cluster, backend } = r;
    const code = String(status);
    const s = this.requests.get(cluster + SEP + backend + SEP + code, () => ({ cluster, backend, code }));
    if (status >= 0 && status < r.byStatus.length) r.byStatus[status] = s;
    return s;
  }

  // Per connection, not per request: a label lookup each is cheap next to a connection.
  private tcpActiveOf(cluster: string): Scalar {
    return this.tcpActive.get(cluster, () => ({ cluster }));
  }

  private onTcpEnd(e: TcpConnectionEnd): void {
    const labels = () => ({ cluster: e.cluster });
    this.tcpActiveOf(e.cluster).add(-1);
    this.tcpTotal.get(e.cluster, labels).add(1);
    this.tcpBytesIn.get(e.cluster, labels).add(e.bytesIn);
    this.tcpBytesOut.get(e.cluster, labels).add(e.bytesOut);
    this.tcpDuration.get(e.cluster, labels).observe(e.durationMs / 1000);
    // The client byte totals cover every listener.
    this.inB.value += e.bytesIn;
    this.outB.value += e.bytesOut;
  }

  private onHealth(e: HealthEvent): void {
    const key = e.cluster + SEP + e.backend;
    this.up.get(key, () => ({ cluster: e.cluster, backend: e.backend })).set(e.type === 'backend_up' ? 1 : 0);
  }

  private onConnectFailure(e: BackendAttempt): void {
    this.connectFailures
      .get(e.cluster + SEP + e.backend, () => ({ cluster: e.cluster, backend: e.backend }))
      .add(1);
  }

  private onH2Refused(e: H2ConnectionClosed): void {
    this.h2Refusals
      .get(e.listener + SEP + e.reason, () => ({ listener: e.listener, reason: e.reason }))
      .add(1);
  }

  private onProxyError(e: ProxyProtocolError): void {
    this.proxyErrors
      .get(e.listener + SEP + e.reason, () => ({ listener: e.listener, reason: e.reason }))
      .add(1);
  }

  private onLimitRefused(e: LimitRefusal): void {
    if (e.reason === 'rate' || e.reason === 'body') {
      const family = e.reason === 'rate' ? this.rateLimited : this.bodyRefused;
      family.get(e.listener + SEP + e.cluster, () => ({ listener: e.listener, cluster: e.cluster })).add(1);
      return;
    }
    this.queueRefused
      .get(e.cluster + SEP + e.backend + SEP + e.reason, () => ({
        cluster: e.cluster,
        backend: e.backend,
        reason: e.reason,
      }))
      .add(1);
  }

  private onRetry(e: BackendAttempt): void {
    this.retries.get(e.cluster, () => ({ cluster: e.cluster })).add(1);
  }
}
