// `kakehi ctl …`: every command-socket request as a subcommand, through the same
// CommandClient the connectors use. Tables for humans, --json for scripts, and exit
// codes scripts can branch on: 0 ok, 1 the proxy said no, 2 usage, 4 unreachable.

import { CommandClient, CommandError, CommandTransportError } from '../client/command-client.js';
import type { TransportFailure } from '../client/command-errors.js';
import { clientSocketPath } from '../command/default-socket.js';
import type { RequestType } from '../command/frames.js';
import { parseArgs } from './args.js';
import {
  CHANGE_FLAGS,
  CTL_COMMANDS,
  type CtlCommand,
  DEFAULT_TIMEOUT_MS,
  type Flag,
  type Given,
  GLOBAL_FLAGS,
  int,
  str,
  UsageError,
} from './ctl-commands.js';
import { changeResult, eventLine, isChangeResult, issueLines, keyValues } from './ctl-output.js';
import { EXIT } from './exit-codes.js';

function flagHelp(flags: Record<string, Flag>): string {
  const rows = Object.entries(flags).map(([name, f]) => [
    `${f.short ? `-${f.short}, ` : '    '}--${name}${f.arg ? ` ${f.arg}` : ''}`,
    f.doc,
  ]);
  const w = Math.max(...rows.map(([a]) => a!.length));
  return rows.map(([a, d]) => `  ${a!.padEnd(w)}  ${d}\n`).join('');
}

/** The flags that may stand for a command's operands (CtlCommand.operands). */
function operandFlags(c: CtlCommand): Record<string, Flag> {
  return Object.fromEntries(
    (c.operands ?? []).map((name, i) => [
      name,
      { value: true, arg: c.args[i], doc: `the ${c.args[i]} operand` },
    ]),
  );
}

function commandHelp(c: CtlCommand): string {
  const own = { ...operandFlags(c), ...c.flags, ...(c.change ? CHANGE_FLAGS : {}) };
  const usage = [
    'kakehi ctl',
    ...c.words,
    ...c.args,
    ...Object.entries(own).map(([n, f]) => `[--${n}${f.arg ? ` ${f.arg}` : ''}]`),
  ].join(' ');
  let out = `Usage: ${usage}\n\n${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.\n`;
  if (c.operands !== undefined) {
    const flagForm = c.operands.map((n, i) => `--${n} ${c.args[i]}`).join(' ');
    out += `\nThe operands may be given as flags instead: kakehi ctl ${c.words.join(' ')} ${flagForm}\n`;
  }
  if (c.words[0] === 'apply') {
    out +=
      '\nThe file holds {changes: [{op: put_cluster, cluster: {...}}, ...]} (docs/protocol.md);\nall of it applies, or none of it.\n';
  }
  if (Object.keys(own).length > 0) out += `\nOptions:\n${flagHelp(own)}`;
  return `${out}\nGlobal options:\n${flagHelp(GLOBAL_FLAGS)}`;
}

function mainHelp(): string {
  const rows = CTL_COMMANDS.map((c) => [[...c.words, ...c.args].join(' '), c.summary]);
  const w = Math.max(...rows.map(([a]) => a!.length));
  return `kakehi ctl — talk to a running kakehi over its command socket

Usage: kakehi ctl [-s PATH] [--json] [--timeout T] <command> [options]

Commands:
${rows.map(([a, d]) => `  ${a!.padEnd(w)}  ${d}\n`).join('')}
Run 'kakehi ctl <command> --help' for a command's options.

Global options:
${flagHelp(GLOBAL_FLAGS)}
Exit codes: 0 ok, 1 the proxy answered an error (or rejected a transaction),
2 wrong usage, 4 the proxy is unreachable (no socket, refused, timeout).
With --json, an error is also printed on stdout as {"error": {...}}; the exit
code is the same.
`;
}

/** CtlCommand words are the positional operands before any flag's value. */
function findCommand(argv: readonly string[]): { command?: CtlCommand; words: string[] } {
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
    CTL_COMMANDS.find((c) => c.words.length === 2 && c.words[0] === words[0] && c.words[1] === words[1]) ??
    CTL_COMMANDS.find((c) => c.words.length === 1 && c.words[0] === words[0]);
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
  // Scripts that asked for JSON get every failure as JSON too; found before the
  // full parse, since a usage error may be what stops the parse.
  const jsonAsked = argv.includes('--json');
  const usage = (message: string, c?: CtlCommand): number => {
    if (jsonAsked) out(jsonError({ kind: 'usage', message }));
    err(`kakehi ctl: ${message}\n\n${c ? commandHelp(c) : mainHelp()}`);
    return EXIT.USAGE;
  };

  if (command === undefined) {
    const group = CTL_COMMANDS.filter((c) => c.words.length === 2 && c.words[0] === words[0]);
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

  const spec = {
    ...GLOBAL_FLAGS,
    ...operandFlags(command),
    ...command.flags,
    ...(command.change ? CHANGE_FLAGS : {}),
  };
  const parsed = parseArgs(argv, spec);
  if ('error' in parsed) return usage(parsed.error, command);
  const given = parsed.positional.slice(0, command.words.length);
  if (given.join(' ') !== command.words.join(' '))
    return usage('put the command before its options', command);
  let args = parsed.positional.slice(command.words.length);
  const asFlags = (command.operands ?? []).filter((n) => parsed.flags.has(n));
  if (asFlags.length > 0) {
    if (args.length > 0)
      return usage(`give ${command.args.join(' ')} as operands or as flags, not both`, command);
    const missing = command.operands!.filter((n) => !parsed.flags.has(n));
    if (missing.length > 0) return usage(`missing ${missing.map((n) => `--${n}`).join(' ')}`, command);
    args = command.operands!.map((n) => parsed.flags.get(n) as string);
  }
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
    const t = str(g, 'timeout');
    if (t !== undefined) timeoutMs = parseTimeout(t);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message, command);
    throw e;
  }

  const socketPath = str(g, 'socket') ?? clientSocketPath(process.env);
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
    return reportFailure(e, request.type, json);
  } finally {
    await client?.close();
  }
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** `--timeout`: 10s, 500ms, 2m, or a bare number of milliseconds (as before). */
export function parseTimeout(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`--timeout: "${text}" is not a duration (10s, 500ms, 2m)`);
  const ms = Math.round(Number(m[1]) * UNITS_MS[m[2] ?? 'ms']!);
  if (ms < 1) throw new UsageError('--timeout: must be at least 1 ms');
  return ms;
}

/** The one shape of a failure on stdout under --json: scripts test `.error.kind`. */
function jsonError(error: {
  kind: 'usage' | 'refused' | 'failure' | TransportFailure;
  message: string;
  code?: string;
  request?: string;
  issues?: unknown;
}): string {
  return `${JSON.stringify({ error }, null, 2)}\n`;
}

function reportFailure(e: unknown, type: RequestType, json: boolean): number {
  if (e instanceof CommandError) {
    if (json)
      process.stdout.write(
        jsonError({ kind: 'refused', code: e.code, message: e.message, request: type, issues: e.issues }),
      );
    process.stderr.write(`kakehi ctl: ${type} refused [${e.code}]: ${e.message}\n${issueLines(e.issues)}`);
    return EXIT.FAILURE;
  }
  if (e instanceof CommandTransportError) {
    if (json) process.stdout.write(jsonError({ kind: e.reason, message: e.message, request: type }));
    const hint = e.reason === 'unreachable' ? ' (set -s PATH or KAKEHI_SOCKET)' : '';
    process.stderr.write(`kakehi ctl: ${e.message}${hint}\n`);
    return e.reason === 'protocol' ? EXIT.FAILURE : EXIT.UNREACHABLE;
  }
  const message = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(jsonError({ kind: 'failure', message, request: type }));
  process.stderr.write(`kakehi ctl: ${message}\n`);
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
        case 'cluster_all_down':
        case 'cluster_back_up':
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
