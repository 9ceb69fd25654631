// A worker's metrics: subscribes to the data plane's diagnostics channels
// (src/proxy/request-events.ts) and keeps the counts the proxy exposes through
// query_metrics. The data plane publishes only when someone subscribes, so
// with KAKEHI_METRICS=off nothing here runs and the hot path pays nothing.

import type diagnostics_channel from 'node:diagnostics_channel';
import type { HealthEvent } from '../proxy/backend-runtime.js';
import {
  type BackendAttempt,
  backendConnectFailure,
  backendHealth,
  backendRetry,
  connectionClose,
  connectionOpen,
  type RequestEnd,
  requestEnd,
  requestStart,
} from '../proxy/request-events.js';
import { type Family, Registry } from './registry.js';

const SEP = '\u0000';

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
  // The global series, made once: gauges read 0 rather than being absent.
  private readonly conn = this.connections.get('', () => ({}));
  private readonly act = this.active.get('', () => ({}));
  private readonly inB = this.bytesIn.get('', () => ({}));
  private readonly outB = this.bytesOut.get('', () => ({}));

  private readonly handlers: [diagnostics_channel.Channel, (m: unknown) => void][] = [
    [requestEnd, (m) => this.onRequestEnd(m as RequestEnd)],
    [requestStart, () => this.act.add(1)],
    [connectionOpen, () => this.conn.add(1)],
    [connectionClose, () => this.conn.add(-1)],
    [backendHealth, (m) => this.onHealth(m as HealthEvent)],
    [backendConnectFailure, (m) => this.onConnectFailure(m as BackendAttempt)],
    [backendRetry, (m) => this.onRetry(m as BackendAttempt)],
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

  families(): Family[] {
    return this.registry.families();
  }

  private onRequestEnd(e: RequestEnd): void {
    const cluster = e.cluster ?? '';
    const backend = e.backend ?? '';
    const code = String(e.status);
    this.requests.get(cluster + SEP + backend + SEP + code, () => ({ cluster, backend, code })).add(1);
    this.duration.get(cluster, () => ({ cluster })).observe(e.durationMs / 1000);
    if (e.backendMs >= 0) {
      this.backendTime.get(cluster + SEP + backend, () => ({ cluster, backend })).observe(e.backendMs / 1000);
    }
    this.inB.add(e.bytesIn);
    this.outB.add(e.bytesOut);
    this.act.add(-1);
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

  private onRetry(e: BackendAttempt): void {
    this.retries.get(e.cluster, () => ({ cluster: e.cluster })).add(1);
  }
}
