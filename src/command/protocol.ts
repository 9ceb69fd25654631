// What the command protocol says, as types: the result of each request type,
// the events a subscription sends, metric families and certificate summaries.
// The server builds these, the client returns them and every connector reads
// them from here, so a field renamed on one side fails to compile on the other.
// Frames and request names are in frames.ts; the change vocabulary in src/state.

import type { CertificateFacts } from '../certificate/inspect.js';
import type { Family } from '../metrics/registry.js';
import type { Backend, Certificate, Cluster, Frontend, Listener } from '../model/objects.js';
import type { Change, ChangeRequestType } from '../state/change.js';
import type { ShadowedObject } from '../state/diff.js';
import type { Applied } from '../state/transaction.js';
import type { RequestType } from './frames.js';

export type { Family, Labels, MetricType, Sample } from '../metrics/registry.js';

/** A worker as `kakehi ctl workers` shows it. */
export interface WorkerInfo {
  id: number;
  pid: number | undefined;
  state: string;
  generation: number;
  uptime_s: number;
}

/** A change applied: the generation it made, when every worker served it, each object's effect. */
export interface ChangeResult {
  generation: number;
  live_ms: number;
  applied: Applied[];
}

/** A dry run: what would apply, nothing changed. */
export interface DryRunResult {
  dry_run: true;
  generation: number;
  diff: Applied[];
}

/** A reload's answer: a change result, and the file objects another source holds, left alone. */
export type ReloadResult = ChangeResult & { shadowed: ShadowedObject[] };

/** What every change request (an alias, `transaction`, `load_state`, `reload`) answers. */
export type TransactionResult = ChangeResult | DryRunResult;

/** What a query shows of a certificate: its facts, where it is served, and who put it. Never the key. */
export type CertificateSummary = Omit<CertificateFacts, 'key_bits' | 'self_signed'> & {
  listener: string;
  default: boolean;
  source: string | undefined;
  origin?: string;
};

export interface ConnectorProblem {
  /** What the problem is about: a file, a pair, a topic. */
  item: string;
  reason: string;
}

/** What a connector says about itself in report_connector_status (with its pid). */
export interface ConnectorReportBody {
  connector: string;
  healthy: boolean;
  summary: string;
  problems: ConnectorProblem[];
}

/** A report as main keeps it and list_connectors shows it. */
export interface ConnectorReport extends ConnectorReportBody {
  pid: number | undefined;
  reported_at: string;
}

/** A change as get_state shows it (a certificate's key and password hashes redacted), with its source when asked for. */
export type StateChange = Change & { source?: string | undefined };

export interface StatusResult {
  version: string;
  pid: number;
  generation: number;
  uptime_s: number;
  workers: WorkerInfo[];
  /** The top-level max_connections, per worker; null: none. */
  max_connections_per_worker: number | null;
  /** Client connections each worker holds open now (its count against that limit); a worker that did not answer is left out. */
  connections_open: { worker: number; open: number }[];
  listeners: number;
  clusters: number;
  backends: number;
  frontends: number;
  certificates: number;
}

export interface MetricsResult {
  generation: number;
  families: Family[];
  /** With `per_worker: true`. */
  workers?: { worker: number; pid: number | undefined; families: Family[] }[];
}

export interface RouteMatch {
  listener: string;
  frontend: unknown;
  cluster: string | null;
  action: string;
}

type Sourced = { source: string | undefined };

/**
 * A backend as `query_backends` shows it: its object, and what the workers see
 * of it now, added up over every worker that answered.
 */
export type BackendStatus = Backend &
  Sourced & {
    /** up; down (every worker that answered sees it down); `down in N/M workers`; unknown (no worker answered). */
    health: string;
    in_flight: number;
    /** Requests waiting for it at its max_connections, summed over the workers. */
    queued: number;
    connections: number;
    /** Consecutive failed connection attempts, summed over the workers. */
    failures: number;
    /** The latest connection error any worker saw, and when. */
    last_error: string | null;
    last_error_at: string | null;
    /** Since when it is down, in the worker that saw it first; null while up. */
    down_since: string | null;
    /** What main's active health check says: up, down (with its reason), or off (its cluster has none). */
    check: string;
    check_reason: string | null;
  };

/** A cluster with its backends' totals, as `kakehi ctl clusters` shows it. */
export type ClusterStatus = Cluster &
  Sourced & {
    backends: number;
    active: number;
    drain: number;
    maintenance: number;
    /** Backends whose health is not up. */
    down: number;
    in_flight: number;
    queued: number;
    connections: number;
  };

export interface BackendsResult {
  generation: number;
  /** How many workers answered in time; live numbers count only these. */
  workers: number;
  backends: BackendStatus[];
  clusters: ClusterStatus[];
}

/** The result of each request type; a type not named here answers something not typed yet. */
export interface Results {
  status: StatusResult;
  list_workers: { workers: WorkerInfo[] };
  list_listeners: { listeners: (Listener & Sourced & { port: number | null })[] };
  list_clusters: { clusters: (Cluster & Sourced)[] };
  list_backends: { backends: (Backend & Sourced)[] };
  list_frontends: { frontends: (Frontend & Sourced & { key: string })[] };
  list_certificates: { certificates: (CertificateSummary | undefined)[] };
  list_connectors: { connectors: (ConnectorReport & { age_s: number })[] };
  report_connector_status: Record<string, never>;
  query_route: { host: string; path: string; method: string; matches: RouteMatch[] };
  get_state: { generation: number; changes: StateChange[] };
  query_metrics: MetricsResult;
  query_backends: BackendsResult;
  set_backend_state: TransactionResult;
  transaction: TransactionResult;
  load_state: TransactionResult;
  reload: ReloadResult;
  save_state: { path: string; generation: number; objects: number };
}

/** What a request of type T resolves with. */
export type ResultOf<T extends RequestType> = T extends keyof Results
  ? Results[T]
  : T extends ChangeRequestType
    ? TransactionResult
    : unknown;

/** Events the proxy sends after subscribe_events (docs/protocol.md). */
export type ProxyEvent =
  | { type: 'change_applied'; generation: number; source: string; applied: Applied[] }
  | {
      type: 'backend_down' | 'backend_up';
      backend: string;
      cluster: string;
      address: string;
      /** The worker whose traffic saw it (by: traffic); absent for main's health checks. */
      worker?: number;
      by?: 'traffic' | 'health_check';
      reason?: string;
    }
  /** Every backend of a cluster is down by health check; fail_open says whether traffic still goes to them. */
  | { type: 'cluster_all_down'; cluster: string; fail_open: boolean }
  /** A backend of a cluster that was all down is up again. */
  | { type: 'cluster_back_up'; cluster: string }
  | { type: 'worker_crashed'; worker: number; code: number | null; signal: string | null }
  | { type: 'worker_restarted'; worker: number; replaces: number; generation: number }
  | { type: 'worker_not_answering'; worker: number; generation: number };

export const PROXY_EVENT_TYPES: ReadonlySet<string> = new Set<ProxyEvent['type']>([
  'change_applied',
  'backend_down',
  'backend_up',
  'cluster_all_down',
  'cluster_back_up',
  'worker_crashed',
  'worker_restarted',
  'worker_not_answering',
]);

/** A certificate as a client puts it: the model's fields, defaults left to the proxy. */
export type CertificateInput = Pick<Certificate, 'listener' | 'certificate' | 'key'> &
  Partial<Omit<Certificate, 'listener' | 'certificate' | 'key'>>;
