// How `kakehi ctl backends`, `clusters` and `metrics` show live numbers: the
// backends' states from query_backends, and per cluster and backend the main
// counters of query_metrics with p50/p99 estimated from histogram buckets.
// Pure functions over the answers, so the formats are testable without a socket.

import { isHashing } from '../balancer/select.js';
import { stickyIdOf } from '../balancer/sticky-id.js';
import type { BackendsResult, ClusterStatus, Family, MetricsResult, Sample } from '../command/protocol.js';
import type { HistogramSample } from '../metrics/registry.js';
import type { BackendTls } from '../model/backend-tls.js';
import { DEFAULT_STICKY_COOKIE, type HealthCheck } from '../model/objects.js';
import { keyValues, table } from './ctl-output.js';

/** The families `ctl metrics` reads; asked for by name so the answer stays small. */
export const TOP_FAMILIES = [
  'kakehi_http_requests_total',
  'kakehi_http_request_duration_seconds',
  'kakehi_backend_response_seconds',
  'kakehi_backend_connect_failures_total',
  'kakehi_requests_active',
  'kakehi_connections_active',
  'kakehi_client_bytes_received_total',
  'kakehi_client_bytes_sent_total',
];

function isBackendsResult(r: unknown): r is BackendsResult {
  const o = r as BackendsResult | null;
  return typeof o === 'object' && o !== null && Array.isArray(o.backends) && Array.isArray(o.clusters);
}

export function renderBackends(r: unknown): string {
  if (!isBackendsResult(r)) return keyValues(r as Record<string, unknown>);
  const sticky = new Set(r.clusters.filter((c) => c.sticky_session).map((c) => c.id));
  const rows = r.backends.map((b) => ({
    ...b,
    since: b.last_error_at,
    // A backup's role matters when reading why it gets no traffic.
    id: b.backup ? `${b.id} (backup)` : b.id,
    // What the sticky cookie holds for it: derived ids cannot be guessed from the id.
    sticky_id: sticky.has(b.cluster) ? stickyIdOf(b) : '-',
  }));
  const columns = [
    'cluster',
    'id',
    'address',
    'state',
    'health',
    'check',
    'check_reason',
    'in_flight',
    'max_connections',
    'queued',
    'connections',
    'failures',
    'last_error',
    'since',
    'source',
  ];
  if (sticky.size > 0) columns.splice(3, 0, 'sticky_id');
  return `${table(rows, columns, true)}${workersLine(r)}`;
}

export function renderClusters(r: unknown): string {
  if (!isBackendsResult(r)) return keyValues(r as Record<string, unknown>);
  const columns = [
    'id',
    'load_balancing',
    'sticky',
    'health_check',
    'fail_open',
    'backend_tls',
    'backends',
    'active',
    'drain',
    'maintenance',
    'down',
    'in_flight',
    'queued',
    'queue_size',
    'connections',
    'source',
  ];
  const rows = r.clusters.map((c) => ({
    ...c,
    load_balancing: isHashing(c.load_balancing)
      ? `${c.load_balancing} by ${c.hash_key ?? 'client_ip'}`
      : c.load_balancing,
    sticky: stickySummary(c),
    health_check: checkSummary(c.health_check),
    backend_tls: backendTlsSummary(c.backend_tls),
  }));
  return `${table(rows, columns, true)}${workersLine(r)}`;
}

/** A sticky cluster's cookie in one cell (`KKHSRV Path=/ HttpOnly SameSite=Lax`), or `-`. */
function stickySummary(c: ClusterStatus): string {
  if (!c.sticky_session) return '-';
  const k = c.sticky_cookie ?? DEFAULT_STICKY_COOKIE;
  const same = `SameSite=${k.same_site[0]!.toUpperCase()}${k.same_site.slice(1)}`;
  return [
    k.name,
    `Path=${k.path}`,
    k.max_age_s === undefined ? '' : `Max-Age=${k.max_age_s}`,
    k.secure ? 'Secure' : '',
    k.http_only ? 'HttpOnly' : '',
    same,
  ]
    .filter((a) => a !== '')
    .join(' ');
}

/** A cluster's health check in one cell (`http GET /healthz 200-399 /5000ms rise 2 fall 3`), or `-`. */
function checkSummary(h: HealthCheck | undefined): string {
  if (h === undefined) return '-';
  const rhythm = `/${h.interval_ms}ms rise ${h.rise} fall ${h.fall}`;
  return h.type === 'tcp' ? `tcp ${rhythm}` : `http ${h.method} ${h.path} ${h.expect_status} ${rhythm}`;
}

/** A cluster's backend TLS in one cell (`tls1.2+ verify name=api.internal ca client-cert`), or `-`. */
function backendTlsSummary(t: BackendTls | undefined): string {
  if (t === undefined) return '-';
  return [
    `tls${t.min_version}+`,
    t.verify ? 'verify' : 'NO-VERIFY',
    t.server_name === undefined ? '' : `name=${t.server_name}`,
    t.ca === undefined ? '' : 'ca',
    t.client_certificate === undefined ? '' : 'client-cert',
  ]
    .filter((w) => w !== '')
    .join(' ');
}

function workersLine(r: BackendsResult): string {
  return `live numbers from ${r.workers} worker(s) at generation ${r.generation}\n`;
}

/**
 * The q-quantile of a histogram, interpolated inside its bucket as Prometheus'
 * histogram_quantile does; in the open last bucket, the last bound (a floor).
 */
export function quantile(h: HistogramSample, q: number): number | undefined {
  if (h.count === 0) return undefined;
  const rank = q * h.count;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const n = h.counts[i]!;
    if (below + n >= rank && n > 0) {
      if (i >= h.bounds.length) return h.bounds[h.bounds.length - 1];
      const lo = i === 0 ? 0 : h.bounds[i - 1]!;
      const hi = h.bounds[i]!;
      return lo + (hi - lo) * ((rank - below) / n);
    }
    below += n;
  }
  return h.bounds[h.bounds.length - 1];
}

interface TopRow {
  cluster: string;
  backend: string;
  requests: number;
  '2xx': number;
  '3xx': number;
  '4xx': number;
  '5xx': number;
  connect_failures: number;
  p50_ms: number | undefined;
  p99_ms: number | undefined;
}

const isHistogram = (s: Sample): s is HistogramSample => 'counts' in s;
const ms = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 10_000) / 10);

/**
 * Per cluster (backend "*") and per backend: requests by status class,
 * connect failures, and p50/p99 in ms — of the whole request for a cluster, of
 * the backend's response head for a backend. Requests no cluster served (404,
 * 400…) are the cluster "-".
 */
export function topRows(families: readonly Family[]): TopRow[] {
  const byName = new Map(families.map((f) => [f.name, f.samples]));
  const rows = new Map<string, TopRow>();
  const row = (cluster: string, backend: string): TopRow => {
    const key = `${cluster}\u0000${backend}`;
    let r = rows.get(key);
    if (r === undefined) {
      r = {
        cluster: cluster === '' ? '-' : cluster,
        backend,
        requests: 0,
        '2xx': 0,
        '3xx': 0,
        '4xx': 0,
        '5xx': 0,
        connect_failures: 0,
        p50_ms: undefined,
        p99_ms: undefined,
      };
      rows.set(key, r);
    }
    return r;
  };
  for (const s of byName.get('kakehi_http_requests_total') ?? []) {
    if (isHistogram(s)) continue;
    const cluster = s.labels['cluster'] ?? '';
    const klass = `${(s.labels['code'] ?? '').charAt(0)}xx`;
    for (const r of [
      row(cluster, '*'),
      ...(s.labels['backend'] ? [row(cluster, s.labels['backend'])] : []),
    ]) {
      r.requests += s.value;
      if (klass === '2xx' || klass === '3xx' || klass === '4xx' || klass === '5xx') r[klass] += s.value;
    }
  }
  for (const s of byName.get('kakehi_backend_connect_failures_total') ?? []) {
    if (isHistogram(s)) continue;
    const cluster = s.labels['cluster'] ?? '';
    for (const r of [row(cluster, '*'), row(cluster, s.labels['backend'] ?? '')])
      r.connect_failures += s.value;
  }
  const latency = (name: string, backendOf: (s: Sample) => string) => {
    for (const s of byName.get(name) ?? []) {
      if (!isHistogram(s)) continue;
      const r = row(s.labels['cluster'] ?? '', backendOf(s));
      r.p50_ms = ms(quantile(s, 0.5));
      r.p99_ms = ms(quantile(s, 0.99));
    }
  };
  latency('kakehi_http_request_duration_seconds', () => '*');
  latency('kakehi_backend_response_seconds', (s) => s.labels['backend'] ?? '');
  return [...rows.values()].sort(
    (a, b) =>
      a.cluster.localeCompare(b.cluster) ||
      (a.backend === '*' ? -1 : b.backend === '*' ? 1 : a.backend.localeCompare(b.backend)),
  );
}

/** The sum of a family's samples; undefined when a filter left it none (a global one under --cluster). */
function total(families: readonly Family[], name: string): number | undefined {
  const samples = families.find((f) => f.name === name)?.samples ?? [];
  if (samples.length === 0) return undefined;
  return samples.reduce((n, s) => n + (isHistogram(s) ? 0 : s.value), 0);
}

export function renderTop(r: unknown): string {
  const m = r as MetricsResult | null;
  if (m === null || typeof m !== 'object' || !Array.isArray(m.families))
    return keyValues(r as Record<string, unknown>);
  const f = m.families;
  const parts = [
    ['kakehi_requests_active', 'request(s) in flight'],
    ['kakehi_connections_active', 'client connection(s)'],
    ['kakehi_client_bytes_received_total', 'bytes in'],
    ['kakehi_client_bytes_sent_total', 'bytes out'],
  ].flatMap(([name, what]) => {
    const n = total(f, name!);
    return n === undefined ? [] : [`${n} ${what}`];
  });
  const head = `generation ${m.generation}${parts.length === 0 ? '' : `: ${parts.join(', ')}`}\n`;
  const rows = topRows(f);
  if (rows.length === 0) return `${head}no request answered yet\n`;
  return (
    head +
    table(rows, [
      'cluster',
      'backend',
      'requests',
      '2xx',
      '3xx',
      '4xx',
      '5xx',
      'connect_failures',
      'p50_ms',
      'p99_ms',
    ])
  );
}
