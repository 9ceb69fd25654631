// What `kakehi pki status`, the HTTP face and the proxy's connector list show of
// the connector: per directory, per pair (serving, waiting, refused, and why),
// the connection and the last sync. Pure: built from what the connector holds.

import type { ConnectorReportBody } from '../../src/command/protocol.js';
import type { PkiOptions } from './options.js';
import type { ScannedPair } from './scan.js';
import type { Settler } from './settle.js';

const MAX_ERROR_CHARS = 2_000;

export const clip = (s: string) => (s.length > MAX_ERROR_CHARS ? `${s.slice(0, MAX_ERROR_CHARS)}…` : s);

export interface PairInfo extends ScannedPair {
  /** Indexes into opts.directories that found this pair. */
  dirs: Set<number>;
}

export interface DirectoryStatus {
  path: string;
  listeners: string[] | 'all https';
  default: boolean;
  pairs: number;
  unpaired: string[];
  error: string | undefined;
  truncated: boolean;
  notes: string[];
}

export interface LastSync {
  at: number;
  ok: boolean;
  error?: string;
  puts: number;
  deletes: number;
}

/** The body of report_connector_status. */
export type ReportBody = ConnectorReportBody;

export interface StatusInput {
  opts: PkiOptions;
  settler: Settler;
  pairs: ReadonlyMap<string, PairInfo>;
  dirStatus: DirectoryStatus[];
  connected: boolean;
  lastScanAt: number;
  sync: {
    proxyErrors: ReadonlyMap<string, { reason: string; at: number }>;
    httpsListeners: string[];
    lastSync: LastSync | undefined;
  };
}

export function healthOf(
  connected: boolean,
  lastSync: LastSync | undefined,
): { ok: boolean; reason: string } {
  if (!connected) return { ok: false, reason: 'not connected to the proxy' };
  if (!lastSync) return { ok: false, reason: 'not reconciled with the proxy yet' };
  if (!lastSync.ok) return { ok: false, reason: `last reconcile failed: ${lastSync.error}` };
  return { ok: true, reason: 'ok' };
}

export function pkiStatus(s: StatusInput): Record<string, unknown> {
  const { opts, settler, pairs: known, dirStatus, connected, lastScanAt, sync } = s;
  const lastSync = sync.lastSync;
  const pairs = [...settler.all()]
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((t) => {
      const info = known.get(t.key);
      const proxyError = sync.proxyErrors.get(t.key);
      const g = t.good?.facts;
      return {
        pair: t.key,
        layout: info?.layout,
        files: info
          ? [info.certificate, info.key, info.chain].filter((f, i, a) => f && a.indexOf(f) === i)
          : [],
        state: proxyError && t.state === 'ok' ? 'refused_by_proxy' : t.state,
        serving: g
          ? {
              fingerprint: g.fingerprint,
              names: g.names,
              serial: g.serial,
              issuer: g.issuer,
              not_before: g.not_before,
              not_after: g.not_after,
            }
          : null,
        last_error: proxyError?.reason ?? t.lastError ?? null,
        last_error_at: new Date(proxyError?.at ?? t.lastErrorAt ?? 0).toISOString(),
        gone_since: t.goneSince === undefined ? null : new Date(t.goneSince).toISOString(),
      };
    })
    .map((p) => (p.last_error === null ? { ...p, last_error_at: null } : p));
  const h = healthOf(connected, lastSync);
  return {
    healthy: h.ok,
    reason: h.reason,
    socket: opts.socketPath,
    connected: connected,
    https_listeners: sync.httpsListeners,
    settle_ms: opts.settleMs,
    rescan_interval_ms: opts.rescanIntervalMs,
    watch: opts.watch,
    check_interval_ms: opts.checkIntervalMs,
    source: opts.source,
    last_scan: lastScanAt ? new Date(lastScanAt).toISOString() : null,
    last_sync: lastSync ? { ...lastSync, at: new Date(lastSync.at).toISOString() } : null,
    directories: dirStatus,
    pairs,
  };
}

export function reportBody(status: Record<string, unknown>, source: string): ReportBody {
  const pairs = (status['pairs'] ?? []) as {
    pair: string;
    state: string;
    last_error: string | null;
  }[];
  const count = (state: string) => pairs.filter((p) => p.state === state).length;
  const problems = pairs
    .filter((p) => p.state !== 'ok' && p.state !== 'ignored')
    .map((p) => ({ item: p.pair, reason: `${p.state}${p.last_error ? `: ${p.last_error}` : ''}` }));
  return {
    connector: source,
    healthy: status['healthy'] === true,
    summary: `${pairs.length} pairs: ${count('ok')} serving, ${problems.length} with problems, ${count('ignored')} ignored`,
    problems,
  };
}

export function directoryStatuses(opts: PkiOptions): DirectoryStatus[] {
  return opts.directories.map((d) => ({
    path: d.path,
    listeners: d.listeners ?? 'all https',
    default: d.default === true,
    pairs: 0,
    unpaired: [],
    error: undefined,
    truncated: false,
    notes: [],
  }));
}
