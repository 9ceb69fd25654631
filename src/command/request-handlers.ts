// What each command request does: change requests become one transaction in
// the change vocabulary; queries read the authoritative state in main; process
// requests (save, load, reload, upgrade, stop) drive the supervisor.

import { METRICS_QUERY_TIMEOUT_MS } from '../defaults.js';
import { KakehiError } from '../errors.js';
import type { Supervisor } from '../main/supervisor.js';
import { filterFamilies, mergeFamilies } from '../metrics/aggregate.js';
import { keyOf } from '../model/objects.js';
import { parseHostRule } from '../router/host-rule.js';
import { parsePathRule } from '../router/path-rule.js';
import { type Route, Router } from '../router/router.js';
import { type Change, changeTarget, parseChanges } from '../state/change.js';
import { diffStatesWithSources, stateAsChanges } from '../state/diff.js';
import { listenerFrontends, sourceKey } from '../state/proxy-state.js';
import { loadStateFile, saveStateFile } from '../state/state-file.js';
import { certificateSummary, redactChange } from '../tls/certificate-output.js';
import { VERSION } from '../version.js';
import type { Handler } from './command-server.js';
import { ConnectorReports, parseReport } from './connector-reports.js';
import type { CommandRequest } from './frames.js';

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

/** The single change a Sōzu-style request names, before validation. */
function changeOf(req: CommandRequest): unknown[] {
  const b = req.body;
  switch (req.type) {
    case 'add_http_listener':
      return [{ op: 'put_listener', listener: b['listener'] }];
    case 'remove_listener':
      return [{ op: 'delete_listener', address: b['address'] }];
    case 'add_cluster':
      return [{ op: 'put_cluster', cluster: b['cluster'] }];
    // `id` names the request itself on the wire, so removals name their object by kind.
    case 'remove_cluster':
      return [{ op: 'delete_cluster', id: b['cluster'] }];
    case 'add_backend':
      return [{ op: 'put_backend', backend: b['backend'] }];
    case 'remove_backend':
      return [{ op: 'delete_backend', cluster: b['cluster'], id: b['backend'] }];
    case 'add_http_frontend':
      return [{ op: 'put_frontend', frontend: b['frontend'] }];
    case 'remove_http_frontend':
      return [{ op: 'delete_frontend', frontend: b['frontend'] }];
    case 'add_certificate':
      return [{ op: 'put_certificate', certificate: b['certificate'] }];
    // One transaction: the new certificate is in before the old one goes.
    case 'replace_certificate': {
      const c = b['certificate'];
      const listener =
        typeof c === 'object' && c !== null ? (c as { listener?: unknown }).listener : undefined;
      return [
        { op: 'put_certificate', certificate: c },
        { op: 'delete_certificate', listener, fingerprint: b['old_fingerprint'] },
      ];
    }
    case 'remove_certificate':
      return [{ op: 'delete_certificate', listener: b['listener'], fingerprint: b['fingerprint'] }];
    default:
      return Array.isArray(b['changes']) ? b['changes'] : (b['changes'] as unknown[]);
  }
}

function validChanges(raw: unknown): Change[] {
  const r = parseChanges(raw, 'changes');
  if ('issues' in r) {
    throw new KakehiError('KKH_CHANGE_INVALID', `the change was refused: ${r.issues.length} problem(s)`, {
      issues: r.issues,
    });
  }
  return r.changes;
}

export function createRequestHandler(sup: Supervisor, stopProcess: (hard: boolean) => void): Handler {
  const connectors = new ConnectorReports();
  return async (req, ctx) => {
    const b = req.body;
    switch (req.type) {
      case 'status':
        return {
          version: VERSION,
          pid: process.pid,
          generation: sup.generation,
          uptime_s: Math.round((Date.now() - sup.startedAt) / 1000),
          workers: sup.listWorkers(),
          listeners: sup.state.listeners.size,
          clusters: sup.state.clusters.size,
          backends: sup.state.backends.size,
          frontends: sup.state.frontends.size,
          certificates: sup.state.certificates.size,
        };
      case 'list_workers':
        return { workers: sup.listWorkers() };
      case 'list_listeners': {
        const bound = new Map(sup.boundListeners().map((l) => [l.key, l.port]));
        return {
          listeners: [...sup.state.listeners.entries()].map(([key, l]) => ({
            ...l,
            port: bound.get(key) ?? null,
            source: sup.state.sources.get(sourceKey('listener', key)),
          })),
        };
      }
      case 'list_clusters':
        return {
          clusters: [...sup.state.clusters.values()].map((c) => ({
            ...c,
            source: sup.state.sources.get(sourceKey('cluster', c.id)),
          })),
        };
      case 'list_backends': {
        const cluster = str(b, 'cluster', false);
        return {
          backends: [...sup.state.backends.entries()]
            .filter(([, x]) => cluster === undefined || x.cluster === cluster)
            .map(([key, x]) => ({ ...x, source: sup.state.sources.get(sourceKey('backend', key)) })),
        };
      }
      case 'list_frontends':
        return {
          frontends: [...sup.state.frontends.entries()].map(([key, f]) => ({
            ...f,
            key,
            source: sup.state.sources.get(sourceKey('frontend', key)),
          })),
        };
      case 'list_certificates': {
        const listener = str(b, 'listener', false);
        const want = listener === undefined ? undefined : keyOf('listener', { address: listener });
        return {
          certificates: [...sup.state.certificates.entries()]
            .filter(([, c]) => want === undefined || keyOf('listener', { address: c.listener }) === want)
            .map(([key, c]) => certificateSummary(c, sup.state.sources.get(sourceKey('certificate', key)))),
        };
      }
      case 'list_connectors':
        return {
          connectors: connectors.list().map((r) => ({
            ...r,
            age_s: Math.round((Date.now() - Date.parse(r.reported_at)) / 1000),
          })),
        };
      case 'report_connector_status':
        connectors.put(parseReport(b));
        return {};
      case 'query_route':
        return queryRoute(
          sup,
          str(b, 'host')!,
          str(b, 'path')!,
          str(b, 'method', false) ?? 'GET',
          str(b, 'listener', false),
        );
      case 'get_state':
        // Private keys stay in main (and in state files, mode 0600); answers never carry them.
        // With `sources: true` each change names who put its object, so a connector can
        // diff what it owns (the Pulsar connector's bootstrap) without a second request.
        if (b['sources'] === true) {
          const state = sup.state;
          return {
            generation: sup.generation,
            changes: stateAsChanges(state).map((c) => {
              const t = changeTarget(c);
              return { ...redactChange(c), source: state.sources.get(sourceKey(t.kind, t.key)) };
            }),
          };
        }
        return { generation: sup.generation, changes: stateAsChanges(sup.state).map(redactChange) };
      case 'query_metrics':
        return queryMetrics(sup, b);
      case 'add_http_listener':
      case 'remove_listener':
      case 'add_cluster':
      case 'remove_cluster':
      case 'add_backend':
      case 'remove_backend':
      case 'add_http_frontend':
      case 'remove_http_frontend':
      case 'add_certificate':
      case 'replace_certificate':
      case 'remove_certificate':
      case 'transaction': {
        const changes = validChanges(changeOf(req));
        const expect = b['expect_generation'];
        if (expect !== undefined && (typeof expect !== 'number' || !Number.isInteger(expect))) {
          throw new KakehiError('KKH_REQUEST_INVALID', 'expect_generation: expected a whole number', {
            issues: [{ path: 'expect_generation', reason: 'expected a whole number' }],
          });
        }
        if (changes.length > 100) ctx.processing(`applying ${changes.length} changes`);
        return sup.transact(changes, {
          source: typeof b['source'] === 'string' ? b['source'] : 'runtime',
          dryRun: b['dry_run'] === true,
          expectGeneration: expect as number | undefined,
        });
      }
      case 'save_state': {
        const path = str(b, 'path')!;
        saveStateFile(path, sup.state, sup.generation);
        return { path, generation: sup.generation, objects: stateAsChanges(sup.state).length };
      }
      case 'load_state': {
        const path = str(b, 'path')!;
        const loaded = loadStateFile(path);
        // The file replaces the running state as one transaction: everything or nothing.
        // Every object comes back with the source recorded for it in the file.
        const entries = diffStatesWithSources(sup.state, loaded.state);
        return sup.transact(
          entries.map((e) => e.change),
          { source: 'state_file', sources: entries.map((e) => e.source) },
        );
      }
      case 'reload':
        return sup.reload(str(b, 'path', false));
      case 'rotate_ticket_keys':
        return sup.rotateTicketKeys('command');
      case 'upgrade':
        return sup.upgrade((m) => ctx.processing(m));
      case 'soft_stop':
      case 'hard_stop':
        setImmediate(() => stopProcess(req.type === 'hard_stop'));
        return { stopping: req.type === 'hard_stop' ? 'now' : 'after draining' };
      case 'subscribe_events':
        ctx.subscribe((send) => {
          const listener = (e: { type: string }) => send(e);
          sup.on('event', listener);
          return () => sup.off('event', listener);
        });
        return new Promise(() => {}); // the subscription answers with events until the connection closes
    }
  };
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

function queryRoute(
  sup: Supervisor,
  host: string,
  path: string,
  method: string,
  listener: string | undefined,
) {
  const out: { listener: string; frontend: unknown; cluster: string | null; action: string }[] = [];
  for (const l of sup.state.listeners.values()) {
    const key = keyOf('listener', l);
    if (listener !== undefined && key !== keyOf('listener', { address: listener })) continue;
    const routes: Route<(typeof out)[number]['frontend']>[] = listenerFrontends(sup.state, l).map((f) => ({
      key: `${f.hostname};${f.path_type}:${f.path};${f.method ?? '*'}`,
      host: parseHostRule(f.hostname),
      path: parsePathRule(f.path_type, f.path),
      ...(f.method === undefined ? {} : { method: f.method }),
      target: f,
    }));
    const hit = new Router(routes).lookup(host, path.split('?')[0] ?? path, method) as
      | { cluster?: string; deny?: boolean; redirect?: unknown }
      | undefined;
    if (hit !== undefined) {
      out.push({
        listener: key,
        frontend: hit,
        cluster: hit.cluster ?? null,
        action: hit.cluster !== undefined ? 'forward' : hit.deny ? 'deny' : 'redirect',
      });
    }
  }
  return { host, path, method, matches: out };
}
