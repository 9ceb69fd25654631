// `kakehi ctl …`: every command-socket request as a subcommand, through the same
// CommandClient the connectors use. Tables for humans, --json for scripts, and exit
// codes scripts can branch on: 0 ok, 1 the proxy said no, 2 usage, 4 unreachable.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CommandClient, CommandError, CommandTransportError } from '../client/command-client.js';
import type { RequestType } from '../command/frames.js';
import { type FlagSpec, parseArgs } from './args.js';
import { changeResult, eventLine, isChangeResult, issueLines, keyValues, table } from './ctl-output.js';
import { EXIT } from './exit-codes.js';

const DEFAULT_SOCKET = './kakehi.sock';
const DEFAULT_TIMEOUT_MS = 60_000;

interface Flag extends FlagSpec {
  doc: string;
  arg?: string;
}
interface Given {
  flags: Map<string, string | true>;
  args: string[];
}
interface Command {
  words: string[];
  args: string[];
  summary: string;
  flags: Record<string, Flag>;
  change?: boolean;
  build(g: Given): { type: RequestType; body: Record<string, unknown> };
  render?(result: unknown): string;
}

class UsageError extends Error {}

const GLOBAL: Record<string, Flag> = {
  socket: {
    value: true,
    short: 's',
    arg: 'PATH',
    doc: 'command socket (default: $KAKEHI_SOCKET, else ./kakehi.sock)',
  },
  json: { value: false, doc: "print the proxy's raw result as JSON, for scripts" },
  timeout: { value: true, arg: 'MS', doc: `connect and answer deadline (default ${DEFAULT_TIMEOUT_MS})` },
  help: { value: false, short: 'h', doc: 'this help' },
};
const CHANGE: Record<string, Flag> = {
  'dry-run': { value: false, doc: 'validate and show the diff; change nothing' },
  'expect-generation': {
    value: true,
    arg: 'N',
    doc: 'apply only if the proxy is at generation N (compare-and-set)',
  },
};

const str = (g: Given, name: string): string | undefined => {
  const v = g.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};
const need = (g: Given, name: string): string => {
  const v = str(g, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
};
const int = (g: Given, name: string): number | undefined => {
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

const COMMANDS: Command[] = [
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
    render: list('listeners', ['address', 'port', 'protocol', 'source']),
  },
  {
    words: ['clusters'],
    args: [],
    summary: 'list clusters',
    flags: {},
    build: simple('list_clusters'),
    render: list('clusters', ['id', 'load_balancing', 'connect_attempts', 'source']),
  },
  {
    words: ['backends'],
    args: [],
    summary: 'list backends',
    flags: { cluster: { value: true, arg: 'ID', doc: 'only this cluster' } },
    build: (g) => ({ type: 'list_backends', body: defined({ cluster: str(g, 'cluster') }) }),
    render: list('backends', ['cluster', 'id', 'address', 'weight', 'backup', 'source']),
  },
  {
    words: ['frontends'],
    args: [],
    summary: 'list frontends',
    flags: {},
    build: simple('list_frontends'),
    render: list('frontends', [
      'listener',
      'hostname',
      'path_type',
      'path',
      'method',
      'cluster',
      'deny',
      'source',
    ]),
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
    summary: 'the whole state, as the changes that rebuild it',
    flags: {},
    build: simple('get_state'),
    render: (r) => {
      const o = r as { generation?: unknown; changes?: Record<string, unknown>[] };
      if (!Array.isArray(o.changes)) return keyValues(r as Record<string, unknown>);
      const rows = o.changes.map(({ op, ...rest }) => ({ op, object: Object.values(rest)[0] ?? rest }));
      return `generation ${o.generation}\n${table(rows, ['op', 'object'])}`;
    },
  },
  {
    words: ['listener', 'add'],
    args: [],
    summary: 'add or replace an HTTP listener',
    flags: { address: { value: true, arg: 'A', doc: 'host:port to listen on' } },
    change: true,
    build: (g) => ({ type: 'add_http_listener', body: { listener: { address: need(g, 'address') } } }),
  },
  {
    words: ['listener', 'remove'],
    args: ['ADDRESS'],
    summary: 'remove a listener',
    flags: {},
    change: true,
    build: (g) => ({ type: 'remove_listener', body: { address: g.args[0] } }),
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
        doc: 'round_robin (default), random, least_connections, power_of_two',
      },
      'connect-attempts': { value: true, arg: 'N', doc: 'connection attempts per request' },
      'connect-timeout-ms': { value: true, arg: 'MS', doc: 'backend connect timeout' },
      'backend-timeout-ms': { value: true, arg: 'MS', doc: 'backend silence timeout' },
    },
    change: true,
    build: (g) => ({
      type: 'add_cluster',
      body: {
        cluster: defined({
          id: need(g, 'id'),
          load_balancing: str(g, 'load-balancing'),
          connect_attempts: int(g, 'connect-attempts'),
          connect_timeout_ms: int(g, 'connect-timeout-ms'),
          backend_timeout_ms: int(g, 'backend-timeout-ms'),
        }),
      },
    }),
  },
  {
    words: ['cluster', 'remove'],
    args: ['ID'],
    summary: 'remove a cluster',
    flags: {},
    change: true,
    // Not `id`: that field is the request's own id (docs/protocol.md).
    build: (g) => ({ type: 'remove_cluster', body: { cluster: g.args[0] } }),
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
        }),
      },
    }),
  },
  {
    words: ['backend', 'remove'],
    args: ['CLUSTER', 'ID'],
    summary: 'remove a backend (its in-flight requests finish)',
    flags: {},
    change: true,
    build: (g) => ({ type: 'remove_backend', body: { cluster: g.args[0], backend: g.args[1] } }),
  },
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
    flags: frontendKeyFlags,
    change: true,
    build: (g) => ({ type: 'remove_http_frontend', body: { frontend: frontendKey(g) } }),
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
    summary: 'replace the workers one by one with the code now on disk',
    flags: {},
    build: simple('upgrade'),
  },
  {
    words: ['events'],
    args: [],
    summary: 'print events (changes, backends down/up, workers) until Ctrl-C',
    flags: {},
    build: simple('subscribe_events'),
  },
];

function readChanges(file: string): unknown[] {
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

function flagHelp(flags: Record<string, Flag>): string {
  const rows = Object.entries(flags).map(([name, f]) => [
    `${f.short ? `-${f.short}, ` : '    '}--${name}${f.arg ? ` ${f.arg}` : ''}`,
    f.doc,
  ]);
  const w = Math.max(...rows.map(([a]) => a!.length));
  return rows.map(([a, d]) => `  ${a!.padEnd(w)}  ${d}\n`).join('');
}

function commandHelp(c: Command): string {
  const own = { ...c.flags, ...(c.change ? CHANGE : {}) };
  const usage = [
    'kakehi ctl',
    ...c.words,
    ...c.args,
    ...Object.entries(own).map(([n, f]) => `[--${n}${f.arg ? ` ${f.arg}` : ''}]`),
  ].join(' ');
  let out = `Usage: ${usage}\n\n${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.\n`;
  if (c.words[0] === 'apply') {
    out +=
      '\nThe file holds {changes: [{op: put_cluster, cluster: {...}}, ...]} (docs/protocol.md);\nall of it applies, or none of it.\n';
  }
  if (Object.keys(own).length > 0) out += `\nOptions:\n${flagHelp(own)}`;
  return `${out}\nGlobal options:\n${flagHelp(GLOBAL)}`;
}

function mainHelp(): string {
  const rows = COMMANDS.map((c) => [[...c.words, ...c.args].join(' '), c.summary]);
  const w = Math.max(...rows.map(([a]) => a!.length));
  return `kakehi ctl — talk to a running kakehi over its command socket

Usage: kakehi ctl [-s PATH] [--json] [--timeout MS] <command> [options]

Commands:
${rows.map(([a, d]) => `  ${a!.padEnd(w)}  ${d}\n`).join('')}
Run 'kakehi ctl <command> --help' for a command's options.

Global options:
${flagHelp(GLOBAL)}
Exit codes: 0 ok, 1 the proxy answered an error (or rejected a transaction),
2 wrong usage, 4 the proxy is unreachable (no socket, refused, timeout).
`;
}

/** Command words are the positional operands before any flag's value. */
function findCommand(argv: readonly string[]): { command?: Command; words: string[] } {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if ((a === '-s' || a === '--socket' || a === '--timeout') && !a.includes('=')) i++;
      continue;
    }
    words.push(a);
  }
  const command =
    COMMANDS.find((c) => c.words.length === 2 && c.words[0] === words[0] && c.words[1] === words[1]) ??
    COMMANDS.find((c) => c.words.length === 1 && c.words[0] === words[0]);
  return { command, words };
}

export async function runCtl(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(s);
  const err = (s: string) => process.stderr.write(s);
  const wantsHelp = argv.includes('-h') || argv.includes('--help');
  const { command, words } = findCommand(argv);
  const help = (text: string): number => {
    out(text);
    return EXIT.OK;
  };
  const usage = (message: string, c?: Command): number => {
    err(`kakehi ctl: ${message}\n\n${c ? commandHelp(c) : mainHelp()}`);
    return EXIT.USAGE;
  };

  if (command === undefined) {
    const group = COMMANDS.filter((c) => c.words.length === 2 && c.words[0] === words[0]);
    if (wantsHelp && words.length === 0) return help(mainHelp());
    if (group.length > 0) {
      const text = group.map((c) => commandHelp(c)).join('\n');
      if (wantsHelp) return help(text);
      const choices = group.map((c) => c.words[1]).join(' or ');
      err(`kakehi ctl: '${words[0]}' needs ${choices}${words[1] ? `, not '${words[1]}'` : ''}\n\n${text}`);
      return EXIT.USAGE;
    }
    return usage(words.length === 0 ? 'no command given' : `unknown command '${words[0]}'`);
  }
  if (wantsHelp) return help(commandHelp(command));

  const spec = { ...GLOBAL, ...command.flags, ...(command.change ? CHANGE : {}) };
  const parsed = parseArgs(argv, spec);
  if ('error' in parsed) return usage(parsed.error, command);
  const given = parsed.positional.slice(0, command.words.length);
  if (given.join(' ') !== command.words.join(' '))
    return usage('put the command before its options', command);
  const args = parsed.positional.slice(command.words.length);
  if (args.length !== command.args.length) {
    return usage(
      args.length < command.args.length
        ? `missing ${command.args.slice(args.length).join(' ')}`
        : `unexpected argument '${args[command.args.length]}'`,
      command,
    );
  }
  const g: Given = { flags: parsed.flags, args };
  let request: { type: RequestType; body: Record<string, unknown> };
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  try {
    request = command.build(g);
    if (command.change) {
      if (g.flags.has('dry-run')) request.body.dry_run = true;
      const expect = int(g, 'expect-generation');
      if (expect !== undefined) request.body.expect_generation = expect;
    }
    const t = int(g, 'timeout');
    if (t !== undefined) {
      if (t < 1) throw new UsageError('--timeout: must be at least 1 ms');
      timeoutMs = t;
    }
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message, command);
    throw e;
  }

  const socketPath = str(g, 'socket') ?? (process.env.KAKEHI_SOCKET || DEFAULT_SOCKET);
  const json = g.flags.has('json');
  let client: CommandClient | undefined;
  try {
    client = await CommandClient.connect(socketPath, { timeoutMs });
    if (request.type === 'subscribe_events') return await followEvents(client, json);
    const result = await client.request(request.type, request.body, {
      onProcessing: (m) => err(`… ${m}\n`),
    });
    if (json) out(`${JSON.stringify(result, null, 2)}\n`);
    else if (command.render) out(command.render(result));
    else if (isChangeResult(result)) out(changeResult(result));
    else
      out(
        result !== null && typeof result === 'object' ? keyValues(result as Record<string, unknown>) : 'ok\n',
      );
    return EXIT.OK;
  } catch (e) {
    return reportFailure(e, request.type);
  } finally {
    await client?.close();
  }
}

function reportFailure(e: unknown, type: RequestType): number {
  if (e instanceof CommandError) {
    process.stderr.write(`kakehi ctl: ${type} refused [${e.code}]: ${e.message}\n${issueLines(e.issues)}`);
    return EXIT.FAILURE;
  }
  if (e instanceof CommandTransportError) {
    const hint = e.reason === 'unreachable' ? ' (set -s PATH or KAKEHI_SOCKET)' : '';
    process.stderr.write(`kakehi ctl: ${e.message}${hint}\n`);
    return e.reason === 'protocol' ? EXIT.FAILURE : EXIT.UNREACHABLE;
  }
  process.stderr.write(`kakehi ctl: ${e instanceof Error ? e.message : String(e)}\n`);
  return EXIT.FAILURE;
}

async function followEvents(client: CommandClient, json: boolean): Promise<number> {
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    void client.close();
  };
  process.once('SIGINT', onSigint);
  try {
    for await (const ev of client.events()) {
      switch (ev.type) {
        case 'disconnected':
          process.stderr.write(`kakehi ctl: events stopped: ${ev.reason}\n`);
          return EXIT.UNREACHABLE;
        case 'reconnected':
        case 'events_dropped':
          process.stderr.write(`kakehi ctl: ${ev.type} ${JSON.stringify(ev)}\n`);
          break;
        case 'other':
          process.stdout.write(json ? `${JSON.stringify(ev.event)}\n` : eventLine(ev.event));
          break;
        case 'change_applied':
        case 'backend_down':
        case 'backend_up':
        case 'worker_crashed':
        case 'worker_restarted':
        case 'worker_not_answering':
          process.stdout.write(json ? `${JSON.stringify(ev)}\n` : eventLine(ev));
          break;
        default: {
          const unhandled: never = ev;
          throw new Error(`unhandled client event ${JSON.stringify(unhandled)}`);
        }
      }
    }
    return interrupted ? EXIT.OK : EXIT.UNREACHABLE;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
