// What each command request does: change requests become one transaction in
// the change vocabulary; queries read the authoritative state in main; process
// requests (save, load, reload, upgrade, stop) drive the supervisor.

import type { RequestType } from '../../command/frames.js';
import type { ResultOf } from '../../command/protocol.js';
import { METRICS_QUERY_TIMEOUT_MS } from '../../defaults.js';
import { KakehiError } from '../../errors.js';
import { filterFamilies, mergeFamilies } from '../../metrics/aggregate.js';
import type { Family } from '../../metrics/registry.js';
import { redactFrontend } from '../../model/frontend-rules.js';
import { keyOf } from '../../model/objects.js';
import { decideRoute, frontendRoute } from '../../proxy/route-decision.js';
import { Router } from '../../router/router.js';
import { CHANGE_REQUESTS, type Change, type ChangeRequestType, requestChanges } from '../../state/change.js';
import { stateAsChanges } from '../../state/diff.js';
import {
  expandNestedBackends,
  type NestedBackends,
  parseChangesWithBackends,
} from '../../state/nested-backends.js';
import { listenerFrontends, type ProxyState, sourceKey } from '../../state/proxy-state.js';
import { loadStateFile, mergeSavedState, saveStateFile, sourcedPuts } from '../../state/state-file.js';
import { VERSION } from '../../version.js';
import { setBackendState } from '../backend-state-request.js';
import { backendsResult } from '../backend-status.js';
import { auditChange, refusalOf } from '../change-audit.js';
import type { Supervisor } from '../supervisor.js';
import { certificateSummary, redactChange, redactCluster } from './certificate-output.js';
import type { Handler, RequestContext } from './command-server.js';
import { ConnectorReports, parseReport } from './connector-reports.js';

function str(body: Record<string, unknown>, field: string, required = true): string | undefined {
  const v = body[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') {
    throw new KakehiError('KKH_REQUEST_INVALID', `${field}: expected a non-empty string`, {
      issues: [{ path: field, reason: 'expected a non-empty string' }],
    });
  }
  return v;
}

function validChanges(raw: unknown): { changes: Change[]; nested: NestedBackends[] } {
  const r = parseChangesWithBackends(raw, 'changes');
  if ('issues' in r) {
    throw new KakehiError('KKH_CHANGE_INVALID', `the change was refused: ${r.issues.length} problem(s)`, {
      issues: r.issues,
    });
  }
  return r;
}

/** What one request type does with the request's body fields: its answer as the protocol types it. */
/** A worker's count against the top-level max_connections, from its metrics answer. */
function openConnections(families: readonly Family[]): number {
  const f = families.find((x) => x.name === 'kakehi_worker_connections_open');
  const s = f?.samples[0];
  return s !== undefined && 'value' in s ? s.value : 0;
}

type RequestFn<T extends RequestType = RequestType> = (
  b: Record<string, unknown>,
  ctx: RequestContext,
) => ResultOf<T> | Promise<ResultOf<T>>;

export function createRequestHandler(
  sup: Supervisor,
  stopProcess: (hard: boolean) => void,
  /** `upgrade` with `main: true`: the whole binary (succession.ts). */
  upgradeMain?: (progress: (message: string) => void) => Promise<unknown>,
): Handler {
  const connectors = new ConnectorReports();
  // Every change request ends here: one transaction, optionally a dry run or
  // bound to the generation the caller saw.
  const change = (type: RequestType, raw: unknown, b: Record<string, unknown>, ctx: RequestContext) => {
    const source = typeof b['source'] === 'string' ? b['source'] : 'runtime';
    let changes: Change[];
    let nested: NestedBackends[];
    const expect = b['expect_generation'];
    try {
      ({ changes, nested } = validChanges(raw));
      if (expect !== undefined && (typeof expect !== 'number' || !Number.isInteger(expect))) {
        throw new KakehiError('KKH_REQUEST_INVALID', 'expect_generation: expected a whole number', {
          issues: [{ path: 'expect_generation', reason: 'expected a whole number' }],
        });
      }
    } catch (err) {
      // Refused before reaching the transaction, which audits everything after.
      if (b['dry_run'] !== true)
        auditChange(sup.log, { request: type, source, generationBefore: sup.generation }, refusalOf(err));
      throw err;
    }
    if (changes.length > 100) ctx.processing(`applying ${changes.length} changes`);
    const given =
      nested.length === 0 ? changes : (s: ProxyState) => [...changes, ...expandNestedBackends(s, nested)];
    return sup.transact(given, {
      source,
      dryRun: b['dry_run'] === true,
      expectGeneration: expect as number | undefined,
      request: type,
    });
  };
  // Object.fromEntries loses the key type; its keys are exactly CHANGE_REQUESTS' own.
  const aliases = Object.fromEntries(
    (Object.keys(CHANGE_REQUESTS) as ChangeRequestType[]).map(
      (type): [ChangeRequestType, RequestFn<ChangeRequestType>] => [
        type,
        (b, ctx) => change(type, requestChanges(type, b), b, ctx),
      ],
    ),
  ) as { [T in ChangeRequestType]: RequestFn<T> };
  const stop = (hard: boolean) => {
    setImmediate(() => stopProcess(hard));
    return { stopping: hard ? 'now' : 'after draining' };
  };

  // One entry per request type, checked by the compiler: a new type has to say what it does.
  const handlers: { readonly [T in RequestType]: RequestFn<T> } = {
    status: async () => ({
      version: VERSION,
      pid: process.pid,
      generation: sup.generation,
      uptime_s: Math.round((Date.now() - sup.startedAt) / 1000),
      workers: sup.listWorkers(),
      max_connections_per_worker: sup.maxConnections ?? null,
      connections_open: (await sup.workerMetrics(METRICS_QUERY_TIMEOUT_MS)).map((w) => ({
        worker: w.worker,
        open: openConnections(w.families),
      })),
      listeners: sup.state.listeners.size,
      clusters: sup.state.clusters.size,
      backends: sup.state.backends.size,
      frontends: sup.state.frontends.size,
      certificates: sup.state.certificates.size,
    }),
    list_workers: () => ({ workers: sup.listWorkers() }),
    list_listeners: () => {
      const bound = new Map(sup.boundListeners().map((l) => [l.key, l.port]));
      return {
        listeners: [...sup.state.listeners.entries()].map(([key, l]) => ({
          ...l,
          port: bound.get(key) ?? null,
          source: sup.state.sources.get(sourceKey('listener', key)),
        })),
      };
    },
    list_clusters: () => ({
      clusters: [...sup.state.clusters.values()].map((c) => ({
        ...redactCluster(c),
        source: sup.state.sources.get(sourceKey('cluster', c.id)),
      })),
    }),
    list_backends: (b) => {
      const cluster = str(b, 'cluster', false);
      return {
        backends: [...sup.state.backends.entries()]
          .filter(([, x]) => cluster === undefined || x.cluster === cluster)
          .map(([key, x]) => ({ ...x, source: sup.state.sources.get(sourceKey('backend', key)) })),
      };
    },
    list_frontends: () => ({
      frontends: [...sup.state.frontends.entries()].map(([key, f]) => ({
        ...redactFrontend(f),
        key,
        source: sup.state.sources.get(sourceKey('frontend', key)),
      })),
    }),
    list_certificates: (b) => {
      const listener = str(b, 'listener', false);
      const want = listener === undefined ? undefined : keyOf('listener', { address: listener });
      return {
        certificates: [...sup.state.certificates.entries()]
          .filter(([, c]) => want === undefined || keyOf('listener', { address: c.listener }) === want)
          .map(([key, c]) => certificateSummary(c, sup.state.sources.get(sourceKey('certificate', key)))),
      };
    },
    list_connectors: () => ({
      connectors: connectors.list().map((r) => ({
        ...r,
        age_s: Math.round((Date.now() - Date.parse(r.reported_at)) / 1000),
      })),
    }),
    report_connector_status: (b) => {
      connectors.put(parseReport(b));
      return {};
    },
    query_route: (b) =>
      queryRoute(
        sup,
        str(b, 'host')!,
        str(b, 'path')!,
        str(b, 'method', false) ?? 'GET',
        str(b, 'listener', false),
      ),
    get_state: (b) => {
      // Private keys stay in main (and in state files, mode 0600); answers never carry them.
      // With `sources: true` each change names who put its object, so a connector can
      // diff what it owns (the Pulsar connector's bootstrap) without a second request.
      if (b['sources'] === true) {
        return {
          generation: sup.generation,
          changes: sourcedPuts(sup.state).map(({ change, source }) => ({ ...redactChange(change), source })),
        };
      }
      return { generation: sup.generation, changes: stateAsChanges(sup.state).map(redactChange) };
    },
    query_metrics: (b) => queryMetrics(sup, b),
    query_backends: async (b) => {
      const cluster = str(b, 'cluster', false);
      const views = await sup.workerBackends(METRICS_QUERY_TIMEOUT_MS);
      return backendsResult(sup.state, sup.generation, views, cluster, (key) => sup.checkView(key));
    },
    set_backend_state: (b) => setBackendState(sup, b),
    ...aliases,
    transaction: (b, ctx) => change('transaction', b['changes'], b, ctx),
    save_state: (b) => {
      const path = str(b, 'path')!;
      saveStateFile(path, sup.state, sup.generation);
      return { path, generation: sup.generation, objects: stateAsChanges(sup.state).length };
    },
    load_state: (b) => {
      let loaded: ReturnType<typeof loadStateFile>;
      try {
        loaded = loadStateFile(str(b, 'path')!);
      } catch (err) {
        const facts = { request: 'load_state', source: 'state_file', generationBefore: sup.generation };
        auditChange(sup.log, facts, refusalOf(err));
        throw err;
      }
      // The file replaces the running state as one transaction: everything or nothing.
      // Every object comes back with the source recorded for it in the file.
      const entries = mergeSavedState(sup.state, loaded.state, 'replace').changes;
      return sup.transact(
        entries.map((e) => e.change),
        { source: 'state_file', sources: entries.map((e) => e.source), request: 'load_state' },
      );
    },
    reload: (b) => sup.reload(str(b, 'path', false)),
    rotate_ticket_keys: () => sup.rotateTicketKeys('command'),
    upgrade: (b, ctx) => {
      const main = b['main'];
      if (main !== undefined && typeof main !== 'boolean') {
        throw new KakehiError('KKH_REQUEST_INVALID', 'main: expected true or false', {
          issues: [{ path: 'main', reason: 'expected true or false' }],
        });
      }
      if (main !== true) return sup.upgrade((m) => ctx.processing(m));
      if (upgradeMain === undefined)
        throw new KakehiError('KKH_UPGRADE_FAILED', 'this main cannot hand over');
      return upgradeMain((m) => ctx.processing(m));
    },
    soft_stop: () => stop(false),
    hard_stop: () => stop(true),
    subscribe_events: (_b, ctx) => {
      ctx.subscribe((send) => {
        const listener = (e: { type: string }) => send(e);
        sup.on('event', listener);
        return () => sup.off('event', listener);
      });
      return new Promise(() => {}); // the subscription answers with events until the connection closes
    },
  };
  return async (req, ctx) => handlers[req.type](req.body, ctx);
}

async function queryMetrics(sup: Supervisor, b: Record<string, unknown>) {
  const names = b['names'];
  if (names !== undefined && (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))) {
    throw new KakehiError('KKH_REQUEST_INVALID', 'names: expected an array of strings', {
      issues: [{ path: 'names', reason: 'expected an array of strings' }],
    });
  }
  const filter = {
    cluster: str(b, 'cluster', false),
    backend: str(b, 'backend', false),
    names: names as string[] | undefined,
  };
  const workers = await sup.workerMetrics(METRICS_QUERY_TIMEOUT_MS);
  const families = filterFamilies(
    mergeFamilies([...workers.map((w) => w.families), sup.retainedMetrics(), sup.mainMetrics()]),
    filter,
  );
  return {
    generation: sup.generation,
    families,
    ...(b['per_worker'] === true
      ? {
          workers: workers.map((w) => ({
            worker: w.worker,
            pid: w.pid,
            families: filterFamilies(w.families, filter),
          })),
        }
      : {}),
  };
}

/**
 * Which route each listener gives a request, decided by the data plane's own
 * decideRoute over the same routes, so the answer is what a request would get
 * (no TLS connection here: strict SNI is not checked).
 */
function queryRoute(
  sup: Supervisor,
  host: string,
  path: string,
  method: string,
  listener: string | undefined,
) {
  const out: {
    listener: string;
    frontend: unknown;
    cluster: string | null;
    action: string;
    status?: number;
    location?: string;
  }[] = [];
  const state = sup.state;
  const req = { host, path: path.split('?')[0] ?? path, method, target: path };
  for (const l of state.listeners.values()) {
    const key = keyOf('listener', l);
    if (listener !== undefined && key !== keyOf('listener', { address: listener })) continue;
    const router = new Router(
      listenerFrontends(state, l).map((f) => {
        const spec = f.cluster === undefined ? undefined : state.clusters.get(f.cluster);
        return frontendRoute(f, spec === undefined ? undefined : { spec });
      }),
    );
    const d = decideRoute(router, req, l.protocol, false, undefined);
    const hit = d.kind === 'forward' ? d : d.target;
    if (hit === undefined) continue; // 404 or an invalid Host: no frontend matches
    const f = hit.frontend;
    if (d.kind === 'forward') {
      out.push({ listener: key, frontend: f, cluster: f.cluster ?? null, action: 'forward' });
      continue;
    }
    out.push({
      listener: key,
      frontend: f,
      cluster: f.cluster ?? null,
      action: f.deny ? 'deny' : d.location !== undefined ? 'redirect' : 'answer',
      status: d.status,
      ...(d.location === undefined ? {} : { location: d.location }),
    });
  }
  return { host, path, method, matches: out };
}
