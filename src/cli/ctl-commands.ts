// The table of `kakehi ctl` subcommands: for each, its words, operands, options
// and help line, how it builds its request, and how it shows the answer. Adding a
// request type to the protocol means adding a row here. Over 450 lines because it
// is that table, one row per subcommand; the machinery is in ctl.ts and ctl-output.ts.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_SOCKET_TEXT } from '../command/default-socket.js';
import type { RequestType } from '../command/frames.js';
import { frontendRulesSummary } from '../model/frontend-rules.js';
import type { FlagSpec } from './args.js';
import { renderBackends, renderClusters, renderTop, TOP_FAMILIES } from './ctl-live-output.js';
import { keyValues, listenersTable, table } from './ctl-output.js';

/**
 * How long ctl waits for the proxy to connect and then to say something. A
 * `processing` frame counts as saying something, so a long upgrade or a large
 * transaction that reports progress is not cut off: this bounds silence only.
 */
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface Flag extends FlagSpec {
  doc: string;
  arg?: string;
}
export interface Given {
  flags: Map<string, string | true>;
  args: string[];
}
export interface CtlCommand {
  words: string[];
  args: string[];
  /**
   * The flag that may stand for each operand, in order (`backend remove --cluster C
   * --id B` as well as `backend remove C B`): the flag form is what every add command
   * uses, so scripts can be written in one style.
   */
  operands?: string[];
  summary: string;
  flags: Record<string, Flag>;
  change?: boolean;
  build(g: Given): { type: RequestType; body: Record<string, unknown> };
  render?(result: unknown): string;
}

/** A mistake on the command line: exit 2 with the command's help. */
export class UsageError extends Error {}

export const GLOBAL_FLAGS: Record<string, Flag> = {
  socket: {
    value: true,
    short: 's',
    arg: 'PATH',
    doc: `command socket (default: $KAKEHI_SOCKET, else ${DEFAULT_SOCKET_TEXT})`,
  },
  json: { value: false, doc: "print the proxy's raw result as JSON, for scripts" },
  timeout: {
    value: true,
    arg: 'T',
    doc: `how long to wait for the proxy to connect and to answer or report progress: 10s, 500ms, 2m (a bare number is ms; default ${DEFAULT_TIMEOUT_MS / 1000}s)`,
  },
  help: { value: false, short: 'h', doc: 'this help' },
};
export const CHANGE_FLAGS: Record<string, Flag> = {
  'dry-run': { value: false, doc: 'validate and show the diff; change nothing' },
  'expect-generation': {
    value: true,
    arg: 'N',
    doc: 'apply only if the proxy is at generation N (compare-and-set)',
  },
};

export const str = (g: Given, name: string): string | undefined => {
  const v = g.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};
const need = (g: Given, name: string): string => {
  const v = str(g, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
};
export const int = (g: Given, name: string): number | undefined => {
  const v = str(g, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name}: "${v}" is not a whole number`);
  return Number(v);
};
/** Drops absent fields so the proxy's defaults apply. */
const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
// The proxy runs in another directory: paths are sent absolute.
const abs = (p: string) => resolve(p);

const list =
  (key: string, columns: string[]) =>
  (r: unknown): string => {
    const rows = (r as Record<string, unknown> | null)?.[key];
    return Array.isArray(rows) ? table(rows, columns) : keyValues(r as Record<string, unknown>);
  };
const simple = (type: RequestType) => () => ({ type, body: {} });

// A remove of something absent is an error (KKH_OBJECT_NOT_FOUND, exit 1) unless asked not to be.
const REMOVE_FLAGS: Record<string, Flag> = {
  'if-exists': { value: false, doc: 'succeed (unchanged) when there is nothing to remove' },
};
const ifExists = (g: Given) => (g.flags.has('if-exists') ? { if_exists: true } : {});

const frontendKeyFlags: Record<string, Flag> = {
  hostname: { value: true, arg: 'H', doc: 'exact name, *.wildcard, /regex/ labels, or *' },
  listener: { value: true, arg: 'ADDR', doc: 'listener address (default: every listener)' },
  path: { value: true, arg: 'P', doc: 'path rule value (default /)' },
  'path-type': { value: true, arg: 'T', doc: 'prefix (default), exact or regex' },
  method: { value: true, arg: 'M', doc: 'only this HTTP method' },
};
const frontendKey = (g: Given) =>
  defined({
    hostname: need(g, 'hostname'),
    listener: str(g, 'listener'),
    path: str(g, 'path'),
    path_type: str(g, 'path-type'),
    method: str(g, 'method'),
  });

const certificateFlags: Record<string, Flag> = {
  listener: { value: true, arg: 'ADDR', doc: 'the HTTPS listener' },
  cert: {
    value: true,
    arg: 'FILE',
    doc: 'PEM certificate, optionally followed by its chain (fullchain.pem)',
  },
  chain: { value: true, arg: 'FILE', doc: 'PEM chain, if not in --cert' },
  key: { value: true, arg: 'FILE', doc: 'PEM private key' },
  names: { value: true, arg: 'N,N', doc: "names to serve it for, replacing the certificate's own" },
  default: { value: false, doc: 'serve it to clients without SNI or with an unknown name' },
  'allow-expired': { value: false, doc: 'admit it even if it has expired' },
};
const pemFile = (g: Given, flag: string): string | undefined => {
  const file = str(g, flag);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${file}: ${(err as Error).message}`);
  }
};
/** `cluster add`'s backend TLS flags; any of them turns backend TLS on. */
const backendTlsOf = (g: Given) => {
  const tls = defined({
    ca: pemFile(g, 'tls-ca'),
    server_name: str(g, 'tls-server-name'),
    client_certificate: pemFile(g, 'tls-client-cert'),
    client_key: pemFile(g, 'tls-client-key'),
    min_version: str(g, 'tls-min-version'),
    verify: g.flags.has('tls-no-verify') ? false : undefined,
  });
  return g.flags.has('backend-tls') || Object.keys(tls).length > 0 ? tls : undefined;
};
const certificateOf = (g: Given) =>
  defined({
    listener: need(g, 'listener'),
    certificate: pemFile(g, 'cert') ?? need(g, 'cert'),
    chain: pemFile(g, 'chain'),
    key: pemFile(g, 'key') ?? need(g, 'key'),
    names: str(g, 'names')
      ?.split(',')
      .map((n) => n.trim())
      .filter((n) => n !== ''),
    default: g.flags.has('default') ? true : undefined,
    allow_expired: g.flags.has('allow-expired') ? true : undefined,
  });

/** `backend drain|maintenance|ready`: each word, the state it sets, its help line. */
const BACKEND_STATE_WORDS = [
  ['drain', 'drain', 'stop sending a backend new requests; open ones finish'],
  ['maintenance', 'maintenance', 'take a backend out of rotation entirely; open requests finish'],
  ['ready', 'active', 'put a drained or maintenance backend back into rotation'],
] as const;

export const CTL_COMMANDS: CtlCommand[] = [
  {
    words: ['status'],
    args: [],
    summary: 'version, generation, uptime, workers and object counts',
    flags: {},
    build: simple('status'),
    render: (r) => keyValues(r as Record<string, unknown>),
  },
  {
    words: ['workers'],
    args: [],
    summary: 'list worker processes',
    flags: {},
    build: simple('list_workers'),
    render: list('workers', ['id', 'pid', 'state', 'generation', 'uptime_s']),
  },
  {
    words: ['listeners'],
    args: [],
    summary: 'list listeners',
    flags: {},
    build: simple('list_listeners'),
    render: listenersTable,
  },
  {
    words: ['clusters'],
    args: [],
    summary: "list clusters with their backends' states and live totals from every worker",
    flags: { cluster: { value: true, arg: 'ID', doc: 'only this cluster' } },
    build: (g) => ({ type: 'query_backends', body: defined({ cluster: str(g, 'cluster') }) }),
    render: renderClusters,
  },
  {
    words: ['backends'],
    args: [],
    summary: 'list backends: state, health, in-flight requests, connections, last error (from every worker)',
    flags: { cluster: { value: true, arg: 'ID', doc: 'only this cluster' } },
    build: (g) => ({ type: 'query_backends', body: defined({ cluster: str(g, 'cluster') }) }),
    render: renderBackends,
  },
  ...(['metrics', 'top'] as const).map(
    (word): CtlCommand => ({
      words: [word],
      args: [],
      summary:
        word === 'top'
          ? 'same as metrics'
          : 'requests by status class, connect failures and p50/p99 per cluster and backend',
      flags: { cluster: { value: true, arg: 'ID', doc: 'only this cluster' } },
      build: (g) => ({
        type: 'query_metrics',
        body: defined({ cluster: str(g, 'cluster'), names: TOP_FAMILIES }),
      }),
      render: renderTop,
    }),
  ),
  {
    words: ['frontends'],
    args: [],
    summary: 'list frontends',
    flags: {},
    build: simple('list_frontends'),
    render: (r) => {
      const o = r as { frontends?: Parameters<typeof frontendRulesSummary>[0][] };
      const rows = Array.isArray(o.frontends)
        ? {
            frontends: o.frontends.map((f) => {
              // Only frontends with rules get the column: a table of plain routes stays as it was.
              const rules = frontendRulesSummary(f);
              return rules === '' ? f : { ...f, rules };
            }),
          }
        : r;
      return list('frontends', [
        'listener',
        'hostname',
        'path_type',
        'path',
        'method',
        'cluster',
        'deny',
        'rules',
        'source',
      ])(rows);
    },
  },
  {
    words: ['certificates'],
    args: [],
    summary: 'list certificates: names, fingerprint, validity, listener (never keys)',
    flags: { listener: { value: true, arg: 'ADDR', doc: 'only this listener' } },
    build: (g) => ({ type: 'list_certificates', body: defined({ listener: str(g, 'listener') }) }),
    render: (r) => {
      const rows = (r as { certificates?: Record<string, unknown>[] } | null)?.certificates;
      if (!Array.isArray(rows)) return keyValues(r as Record<string, unknown>);
      const shown = rows.map((c) => ({
        ...c,
        names: Array.isArray(c['names']) ? c['names'].join(',') : c['names'],
        fingerprint: typeof c['fingerprint'] === 'string' ? c['fingerprint'].slice(0, 16) : c['fingerprint'],
      }));
      return table(shown, [
        'listener',
        'names',
        'fingerprint',
        'not_before',
        'not_after',
        'default',
        'source',
      ]);
    },
  },
  {
    words: ['connectors'],
    args: [],
    summary: 'what each connector (pki, pulsar…) last reported: health, summary, problems',
    flags: {},
    build: simple('list_connectors'),
    render: (r) => {
      const rows = (r as { connectors?: Record<string, unknown>[] } | null)?.connectors;
      if (!Array.isArray(rows)) return keyValues(r as Record<string, unknown>);
      if (rows.length === 0) return 'no connector has reported\n';
      let out = table(rows, ['connector', 'healthy', 'summary', 'age_s', 'pid'], true);
      for (const c of rows) {
        const problems = Array.isArray(c['problems'])
          ? (c['problems'] as { item: string; reason: string }[])
          : [];
        if (problems.length === 0) continue;
        out += `\n${String(c['connector'])}: ${problems.length} problem(s)\n`;
        for (const p of problems) out += `  ${p.item}: ${p.reason}\n`;
      }
      return out;
    },
  },
  {
    words: ['route'],
    args: ['HOST', 'PATH'],
    summary: 'which frontend and cluster serve HOST and PATH',
    flags: { method: { value: true, arg: 'M', doc: 'request method (default GET)' } },
    build: (g) => ({
      type: 'query_route',
      body: defined({ host: g.args[0], path: g.args[1], method: str(g, 'method') }),
    }),
    render: (r) => {
      const o = r as { matches?: unknown[]; host?: string; path?: string };
      if (Array.isArray(o.matches) && o.matches.length === 0) {
        return `no frontend matches ${o.host}${o.path} (the proxy answers 404)\n`;
      }
      return list('matches', ['listener', 'action', 'cluster', 'frontend'])(r);
    },
  },
  {
    words: ['state'],
    args: [],
    summary: 'the whole state, as the changes that rebuild it, each with its source',
    flags: {},
    build: () => ({ type: 'get_state', body: { sources: true } }),
    render: (r) => {
      const o = r as { generation?: unknown; changes?: Record<string, unknown>[] };
      if (!Array.isArray(o.changes)) return keyValues(r as Record<string, unknown>);
      const rows = o.changes.map(({ op, source, ...rest }) => ({
        op,
        ...(source === undefined ? {} : { source }),
        object: Object.values(rest)[0] ?? rest,
      }));
      return `generation ${o.generation}\n${table(rows, ['op', 'source', 'object'])}`;
    },
  },
  {
    words: ['listener', 'add'],
    args: [],
    summary: 'add or replace a listener (http, https, tcp or tls)',
    flags: {
      address: { value: true, arg: 'A', doc: 'host:port to listen on' },
      protocol: {
        value: true,
        arg: 'P',
        doc: 'http (default), https, tcp or tls: https and tls terminate TLS; tcp and tls pass bytes to --cluster (tls_passthrough needs sni_clusters: use a transaction)',
      },
      cluster: { value: true, arg: 'ID', doc: 'tcp and tls: the cluster every connection goes to' },
      https: { value: false, doc: 'the same as --protocol https' },
      'tls-versions': { value: true, arg: 'V', doc: 'comma-separated: 1.2,1.3 (default) or 1.3' },
      'strict-sni': { value: false, doc: 'answer 421 when Host is not a name of the served certificate' },
    },
    change: true,
    build: (g) => {
      const versions = str(g, 'tls-versions');
      const protocol = str(g, 'protocol');
      if (protocol !== undefined && g.flags.has('https') && protocol !== 'https')
        throw new UsageError(`--https contradicts --protocol ${protocol}`);
      return {
        type: 'add_http_listener',
        body: {
          listener: defined({
            address: need(g, 'address'),
            // The proxy names a wrong protocol value, with the accepted ones.
            protocol: protocol ?? (g.flags.has('https') ? 'https' : undefined),
            cluster: str(g, 'cluster'),
            tls_versions: versions?.split(',').map((v) => v.trim()),
            strict_sni: g.flags.has('strict-sni') ? true : undefined,
          }),
        },
      };
    },
  },
  {
    words: ['listener', 'remove'],
    args: ['ADDRESS'],
    operands: ['address'],
    summary: 'remove a listener',
    flags: REMOVE_FLAGS,
    change: true,
    build: (g) => ({ type: 'remove_listener', body: { address: g.args[0], ...ifExists(g) } }),
  },
  {
    words: ['cluster', 'add'],
    args: [],
    summary: 'add or replace a cluster',
    flags: {
      id: { value: true, arg: 'ID', doc: 'cluster id' },
      'load-balancing': {
        value: true,
        arg: 'A',
        doc: 'round_robin (default), random, least_connections, power_of_two, hash_rendezvous, hash_maglev',
      },
      'hash-key': {
        value: true,
        arg: 'K',
        doc: 'what hash_* balancing hashes: client_ip (default), path, header:NAME, cookie:NAME',
      },
      'sticky-session': {
        value: false,
        doc: 'a cookie (KKHSRV) keeps each client on the backend that answered',
      },
      'connect-attempts': { value: true, arg: 'N', doc: 'connection attempts per request' },
      'connect-timeout-ms': { value: true, arg: 'MS', doc: 'backend connect timeout' },
      'backend-timeout-ms': { value: true, arg: 'MS', doc: 'backend silence timeout' },
      'health-check': { value: true, arg: 'T', doc: 'probe every backend from main: http or tcp' },
      'health-check-path': { value: true, arg: 'P', doc: 'http probe path (default /)' },
      'health-check-expect': { value: true, arg: 'S', doc: 'good statuses, e.g. 200-399 (default)' },
      'health-check-interval-ms': { value: true, arg: 'MS', doc: 'time between probes (default 5000)' },
      'no-fail-open': { value: false, doc: 'answer 503 when every backend is down by health check' },
      'backend-tls': { value: false, doc: 'speak TLS to the backends, checked against the built-in roots' },
      'tls-ca': {
        value: true,
        arg: 'FILE',
        doc: 'backend TLS: PEM CA certificates trusted instead of the roots',
      },
      'tls-server-name': {
        value: true,
        arg: 'NAME',
        doc: 'backend TLS: SNI and name checked (default: address host)',
      },
      'tls-client-cert': { value: true, arg: 'FILE', doc: 'backend TLS: PEM client certificate (mTLS)' },
      'tls-client-key': { value: true, arg: 'FILE', doc: 'backend TLS: PEM key of --tls-client-cert' },
      'tls-min-version': { value: true, arg: 'V', doc: 'backend TLS: 1.2 (default) or 1.3' },
      'tls-no-verify': { value: false, doc: 'backend TLS: do not check certificates (logged as a warning)' },
    },
    change: true,
    build: (g) => {
      const check = defined({
        type: str(g, 'health-check'),
        path: str(g, 'health-check-path'),
        expect_status: str(g, 'health-check-expect'),
        interval_ms: int(g, 'health-check-interval-ms'),
      });
      return {
        type: 'add_cluster',
        body: {
          cluster: defined({
            id: need(g, 'id'),
            load_balancing: str(g, 'load-balancing'),
            hash_key: str(g, 'hash-key'),
            sticky_session: g.flags.has('sticky-session') ? true : undefined,
            connect_attempts: int(g, 'connect-attempts'),
            connect_timeout_ms: int(g, 'connect-timeout-ms'),
            backend_timeout_ms: int(g, 'backend-timeout-ms'),
            health_check: Object.keys(check).length === 0 ? undefined : check,
            fail_open: g.flags.has('no-fail-open') ? false : undefined,
            backend_tls: backendTlsOf(g),
          }),
        },
      };
    },
  },
  {
    words: ['cluster', 'remove'],
    args: ['ID'],
    operands: ['id'],
    summary: 'remove a cluster',
    flags: REMOVE_FLAGS,
    change: true,
    // Not `id`: that field is the request's own id (docs/protocol.md).
    build: (g) => ({ type: 'remove_cluster', body: { cluster: g.args[0], ...ifExists(g) } }),
  },
  {
    words: ['backend', 'add'],
    args: [],
    summary: 'add or replace a backend',
    flags: {
      cluster: { value: true, arg: 'C', doc: 'its cluster' },
      id: { value: true, arg: 'B', doc: 'backend id, unique in the cluster' },
      address: { value: true, arg: 'H:P', doc: 'backend address' },
      weight: { value: true, arg: 'N', doc: 'share under random balancing; 0 drains it' },
      backup: { value: false, doc: 'use only when no primary is available' },
      'sticky-id': {
        value: true,
        arg: 'S',
        doc: 'the sticky cookie value naming it (default: derived from its id)',
      },
    },
    change: true,
    build: (g) => ({
      type: 'add_backend',
      body: {
        backend: defined({
          cluster: need(g, 'cluster'),
          id: need(g, 'id'),
          address: need(g, 'address'),
          weight: int(g, 'weight'),
          backup: g.flags.has('backup') ? true : undefined,
          sticky_id: str(g, 'sticky-id'),
        }),
      },
    }),
  },
  {
    words: ['backend', 'remove'],
    args: ['CLUSTER', 'ID'],
    operands: ['cluster', 'id'],
    summary: 'remove a backend (its in-flight requests finish)',
    flags: REMOVE_FLAGS,
    change: true,
    build: (g) => ({
      type: 'remove_backend',
      body: { cluster: g.args[0], backend: g.args[1], ...ifExists(g) },
    }),
  },
  ...BACKEND_STATE_WORDS.map(
    ([word, state, summary]): CtlCommand => ({
      words: ['backend', word],
      args: [],
      summary,
      flags: {
        cluster: { value: true, arg: 'C', doc: 'its cluster' },
        id: { value: true, arg: 'B', doc: 'backend id' },
      },
      change: true,
      build: (g) => ({
        type: 'set_backend_state',
        body: { cluster: need(g, 'cluster'), backend: need(g, 'id'), state },
      }),
    }),
  ),
  {
    words: ['frontend', 'add'],
    args: [],
    summary: 'add or replace a frontend (a route)',
    flags: {
      ...frontendKeyFlags,
      cluster: { value: true, arg: 'C', doc: 'forward to this cluster' },
      deny: { value: false, doc: 'answer 403 instead' },
    },
    change: true,
    build: (g) => {
      const cluster = str(g, 'cluster');
      const deny = g.flags.has('deny');
      if ((cluster === undefined) === !deny)
        throw new UsageError('give exactly one of --cluster C or --deny');
      return {
        type: 'add_http_frontend',
        body: { frontend: { ...frontendKey(g), ...(deny ? { deny: true } : { cluster }) } },
      };
    },
  },
  {
    words: ['frontend', 'remove'],
    args: [],
    summary: 'remove a frontend, named by its key fields',
    flags: { ...frontendKeyFlags, ...REMOVE_FLAGS },
    change: true,
    build: (g) => ({ type: 'remove_http_frontend', body: { frontend: frontendKey(g), ...ifExists(g) } }),
  },
  {
    words: ['certificate', 'add'],
    args: [],
    summary: 'add a certificate to an HTTPS listener (PEM files read here, sent over the socket)',
    flags: certificateFlags,
    change: true,
    build: (g) => ({ type: 'add_certificate', body: { certificate: certificateOf(g) } }),
  },
  {
    words: ['certificate', 'replace'],
    args: [],
    summary: 'add a certificate and remove an old one in one transaction (the new one is in first)',
    flags: {
      ...certificateFlags,
      'old-fingerprint': {
        value: true,
        arg: 'FP',
        doc: 'SHA-256 fingerprint of the certificate it replaces',
      },
    },
    change: true,
    build: (g) => ({
      type: 'replace_certificate',
      body: { certificate: certificateOf(g), old_fingerprint: need(g, 'old-fingerprint') },
    }),
  },
  {
    words: ['certificate', 'remove'],
    args: ['LISTENER', 'FINGERPRINT'],
    operands: ['listener', 'fingerprint'],
    summary: 'remove a certificate from a listener',
    flags: REMOVE_FLAGS,
    change: true,
    build: (g) => ({
      type: 'remove_certificate',
      body: { listener: g.args[0], fingerprint: g.args[1], ...ifExists(g) },
    }),
  },
  {
    words: ['apply'],
    args: ['FILE'],
    summary: 'apply a JSON or YAML file of changes as one transaction',
    flags: {},
    change: true,
    build: (g) => ({ type: 'transaction', body: { changes: readChanges(g.args[0]!) } }),
  },
  {
    words: ['save-state'],
    args: ['PATH'],
    summary: "save the proxy's state to a file (written by the proxy)",
    flags: {},
    build: (g) => ({ type: 'save_state', body: { path: abs(g.args[0]!) } }),
    render: (r) => {
      const o = r as { objects?: unknown; generation?: unknown; path?: unknown };
      return `saved ${o.objects ?? '?'} objects at generation ${o.generation ?? '?'} to ${o.path ?? '?'}\n`;
    },
  },
  {
    words: ['load-state'],
    args: ['PATH'],
    summary: 'replace the state with a saved one, as one transaction',
    flags: {},
    build: (g) => ({ type: 'load_state', body: { path: abs(g.args[0]!) } }),
  },
  {
    words: ['reload'],
    args: [],
    summary: 're-read the configuration file and apply the difference',
    flags: { config: { value: true, arg: 'PATH', doc: 'another configuration file' } },
    build: (g) => {
      const path = str(g, 'config');
      return { type: 'reload', body: path === undefined ? {} : { path: abs(path) } };
    },
  },
  {
    words: ['soft-stop'],
    args: [],
    summary: 'stop accepting, drain, exit',
    flags: {},
    build: simple('soft_stop'),
  },
  { words: ['hard-stop'], args: [], summary: 'exit now', flags: {}, build: simple('hard_stop') },
  {
    words: ['upgrade'],
    args: [],
    summary: 'replace the workers one by one with the code now on disk (--main: main too)',
    flags: {
      main: {
        value: false,
        doc: 'replace main as well: a new main from the files on disk takes over the sockets and state, then the old one drains and exits',
      },
    },
    build: (g) => ({ type: 'upgrade', body: g.flags.has('main') ? { main: true } : {} }),
  },
  {
    words: ['tickets', 'rotate'],
    args: [],
    summary: 'replace the TLS session ticket keys in every worker now (tickets issued before stop resuming)',
    flags: {},
    build: simple('rotate_ticket_keys'),
  },
  {
    words: ['events'],
    args: [],
    summary: 'print events (changes, backends down/up, workers) until Ctrl-C',
    flags: {},
    build: simple('subscribe_events'),
  },
];

/** A changes file (JSON or YAML): a `changes` list, or a bare list; ctl apply and pulsar publish read it. */
export function readChanges(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text); // YAML 1.2 reads JSON as well
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON or YAML: ${(err as Error).message}`);
  }
  if (Array.isArray(doc)) return doc;
  const changes = (doc as { changes?: unknown } | null)?.changes;
  if (!Array.isArray(changes))
    throw new UsageError(`${file}: expected a "changes" list (or a list of changes)`);
  return changes;
}
