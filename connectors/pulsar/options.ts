// `kakehi pulsar` settings, from flags and an optional YAML file (flags win). One
// table names each setting once: its flag, its key in the file, how it is checked
// and its default, so the help, the file and the flags cannot drift apart.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultSocketPath,
  int,
  type ListenAddress,
  listenAddr,
  logLevel,
  type MistakeKind,
  OptionsError,
  readSettingsFile,
  SOCKET_DEFAULT_HELP,
  sourceName,
} from '../shared/settings.js';
import { type ClientOptions, PulsarClient, tokenAuth } from './client/index.js';

export { OptionsError };

export const DEFAULT_LISTEN = '127.0.0.1:9466';

export interface PulsarOptions {
  serviceUrl: string;
  topics: string[];
  token: string | undefined;
  tokenFile: string | undefined;
  tlsCa: string | undefined;
  socketPath: string;
  source: string;
  listen: ListenAddress;
  batchMax: number;
  batchMs: number;
  resyncIntervalMs: number;
  bootstrapIdleMs: number;
  certificates: boolean;
  deadLetterTopic: string | undefined;
  receiverQueue: number;
  maxObjects: number;
  logLevel: string;
}

type Parse<T> = (v: unknown, what: string, kind: MistakeKind, base: string) => T;

interface Setting<K extends keyof PulsarOptions> {
  field: K;
  flag: string;
  short?: string;
  kind: 'string' | 'boolean';
  multiple?: true;
  arg?: string;
  doc: string;
  parse: Parse<PulsarOptions[K]>;
  fallback: (env: NodeJS.ProcessEnv) => PulsarOptions[K];
}

const str: Parse<string> = (v, what, kind) => {
  if (typeof v !== 'string' || v === '') throw new OptionsError(`${what}: expected a non-empty string`, kind);
  return v;
};
const path: Parse<string> = (v, what, kind, base) => resolve(base, str(v, what, kind, base));
const ms =
  (min: number, max: number): Parse<number> =>
  (v, what, kind) =>
    int(what, v, min, max, kind);
const bool: Parse<boolean> = (v, what, kind) => {
  if (typeof v !== 'boolean') throw new OptionsError(`${what}: expected true or false`, kind);
  return v;
};
const serviceUrl: Parse<string> = (v, what, kind, base) => {
  const s = str(v, what, kind, base);
  if (!/^pulsar(\+ssl)?:\/\/[^/]+$/.test(s)) {
    throw new OptionsError(
      `${what} ${JSON.stringify(s)}: expected pulsar://HOST:PORT or pulsar+ssl://HOST:PORT`,
      kind,
    );
  }
  return s;
};
const topics: Parse<string[]> = (v, what, kind) => {
  const list = (Array.isArray(v) ? v : [v]).flatMap((t) =>
    typeof t === 'string' ? t.split(',').map((x) => x.trim()) : [t],
  );
  if (list.length === 0 || list.some((t) => typeof t !== 'string' || t === '')) {
    throw new OptionsError(`${what}: expected one or more topic names`, kind);
  }
  return [...new Set(list as string[])];
};
const none = () => undefined;

// The order here is the order of --help.
const SETTINGS: { [K in keyof PulsarOptions]: Setting<K> } = {
  serviceUrl: {
    field: 'serviceUrl',
    flag: 'service-url',
    kind: 'string',
    arg: 'URL',
    doc: 'the broker: pulsar://HOST:6650 or pulsar+ssl://HOST:6651 (default $KAKEHI_PULSAR_URL)',
    parse: serviceUrl,
    fallback: (env) => env.KAKEHI_PULSAR_URL ?? '',
  },
  topics: {
    field: 'topics',
    flag: 'topic',
    short: 't',
    kind: 'string',
    multiple: true,
    arg: 'TOPIC',
    doc: 'the route topic (repeatable, or a comma list); non-partitioned, compacted',
    parse: topics,
    fallback: () => [],
  },
  token: {
    field: 'token',
    flag: 'token',
    kind: 'string',
    arg: 'JWT',
    doc: 'token authentication (visible in ps: prefer --token-file)',
    parse: str,
    fallback: (env) => env.KAKEHI_PULSAR_TOKEN,
  },
  tokenFile: {
    field: 'tokenFile',
    flag: 'token-file',
    kind: 'string',
    arg: 'PATH',
    doc: 'token authentication, read again on every connect (a rotated token is picked up)',
    parse: path,
    fallback: none,
  },
  tlsCa: {
    field: 'tlsCa',
    flag: 'tls-ca',
    kind: 'string',
    arg: 'PATH',
    doc: "CA bundle that signed the broker's certificate (pulsar+ssl://; default: the system's)",
    parse: path,
    fallback: none,
  },
  socketPath: {
    field: 'socketPath',
    flag: 'socket',
    short: 's',
    kind: 'string',
    arg: 'PATH',
    doc: `command socket (default ${SOCKET_DEFAULT_HELP})`,
    parse: path,
    fallback: (env) => resolve(defaultSocketPath(env)),
  },
  source: {
    field: 'source',
    flag: 'source',
    kind: 'string',
    arg: 'NAME',
    doc: 'the source its objects carry in the proxy: the set it owns (default pulsar)',
    parse: (v, what, kind) => sourceName(what, v, kind),
    fallback: () => 'pulsar',
  },
  listen: {
    field: 'listen',
    flag: 'listen',
    kind: 'string',
    arg: 'HOST:PORT|off',
    doc: `/metrics, /healthz, /readyz, /status (default ${DEFAULT_LISTEN}; port 0 picks one)`,
    parse: (v, what, kind) => listenAddr(what, v, kind),
    fallback: () => listenAddr('default', DEFAULT_LISTEN, 'usage'),
  },
  batchMax: {
    field: 'batchMax',
    flag: 'batch-max',
    kind: 'string',
    arg: 'N',
    doc: 'most messages applied in one transaction (default 500)',
    parse: ms(1, 100_000),
    fallback: () => 500,
  },
  batchMs: {
    field: 'batchMs',
    flag: 'batch-ms',
    kind: 'string',
    arg: 'MS',
    doc: 'longest wait for more messages before applying what came (milliseconds, default 20)',
    parse: ms(0, 60_000),
    fallback: () => 20,
  },
  resyncIntervalMs: {
    field: 'resyncIntervalMs',
    flag: 'resync-interval-ms',
    kind: 'string',
    arg: 'MS',
    doc: 'rebuild from the compacted view and re-diff this often; 0 = never (default 600000)',
    parse: (v, what, kind) => {
      const n = int(what, v, 0, 7 * 86_400_000, kind);
      if (n > 0 && n < 1_000) throw new OptionsError(`${what} ${n}: 0 (off) or at least 1000`, kind);
      return n;
    },
    fallback: () => 600_000,
  },
  bootstrapIdleMs: {
    field: 'bootstrapIdleMs',
    flag: 'bootstrap-idle-ms',
    kind: 'string',
    arg: 'MS',
    doc: 'during a bootstrap, silence before the last id after which the view counts as incomplete: its puts applied, no deletes, read again soon (default 5000)',
    parse: ms(100, 600_000),
    fallback: () => 5_000,
  },
  certificates: {
    field: 'certificates',
    flag: 'no-certificates',
    kind: 'boolean',
    doc: 'refuse messages that put certificates (their private keys would travel on the topic)',
    parse: bool,
    fallback: () => true,
  },
  deadLetterTopic: {
    field: 'deadLetterTopic',
    flag: 'dead-letter-topic',
    kind: 'string',
    arg: 'TOPIC',
    doc: 'forward skipped messages there, with the reason in properties (default: none)',
    parse: str,
    fallback: none,
  },
  receiverQueue: {
    field: 'receiverQueue',
    flag: 'receiver-queue',
    kind: 'string',
    arg: 'N',
    doc: 'messages the broker may send ahead of what is applied (flow control; default 1000)',
    parse: ms(1, 50_000),
    fallback: () => 1_000,
  },
  maxObjects: {
    field: 'maxObjects',
    flag: 'max-objects',
    kind: 'string',
    arg: 'N',
    doc: 'most objects the topic may describe; messages that would add more are skipped (default 1000000)',
    parse: ms(1, 10_000_000),
    fallback: () => 1_000_000,
  },
  logLevel: {
    field: 'logLevel',
    flag: 'log-level',
    kind: 'string',
    arg: 'LEVEL',
    doc: 'trace|debug|info|warn|error (default $KAKEHI_LOG_LEVEL or info)',
    parse: (v, what, kind) => logLevel(what, v, kind),
    fallback: (env) => env.KAKEHI_LOG_LEVEL ?? 'info',
  },
};

const ALL = Object.values(SETTINGS) as Setting<keyof PulsarOptions>[];
const fileKey = (s: Setting<keyof PulsarOptions>) =>
  s.field === 'certificates' ? 'certificates' : s.flag.replaceAll('-', '_');
const FILE_KEYS = new Set(ALL.map(fileKey));

function helpLines(): string {
  return ALL.map((s) => {
    const head = `${s.short ? `-${s.short}, ` : '    '}--${s.flag}${s.arg ? ` ${s.arg}` : ''}`;
    return `  ${head.padEnd(34)}${s.doc}`;
  }).join('\n');
}

export const PULSAR_HELP = `kakehi pulsar — follow a Pulsar route topic and keep the proxy equal to it

Usage: kakehi pulsar [options]                      follow the topic (source "pulsar")
       kakehi pulsar publish FILE [options]         publish a changes file (kakehi pulsar publish --help)
       kakehi pulsar publish --delete KEY [options] publish tombstones
       kakehi pulsar export [options]               print the topic's desired state as a changes file

Reads the topic's compacted view from the start with a non-durable reader (every
instance sees every update; nothing is kept on the broker for it), applies it to
the proxy as one diff against what the proxy holds from its source, then follows
new messages, applying each batch once the proxy says it is live. Message format:
docs/pulsar.md.

  -c, --config FILE                 YAML settings (keys below in snake_case); flags win
${helpLines()}
  -h, --help                        this text

YAML example:
  service_url: pulsar+ssl://pulsar.internal:6651
  topic: [persistent://edge/routes/main]
  token_file: /etc/kakehi/pulsar.jwt
  tls_ca: /etc/kakehi/pulsar-ca.pem
  socket: /run/kakehi/kakehi.sock
  batch_max: 500
  batch_ms: 20
  resync_interval_ms: 600000
  certificates: false

SIGHUP re-reads the flags and the settings file (a mistake is logged and changes
nothing); batch, resync, bootstrap-idle, dead-letter and log settings apply at once,
the others need a restart.

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 failure (e.g. the HTTP address is taken),
2 wrong usage, 3 invalid settings file.
`;

/** The settings a SIGHUP may change; the rest need a restart. */
export const RELOADABLE: ReadonlySet<keyof PulsarOptions> = new Set([
  'batchMax',
  'batchMs',
  'resyncIntervalMs',
  'bootstrapIdleMs',
  'deadLetterTopic',
  'logLevel',
]);

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export function parsePulsarArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): PulsarOptions | 'help' {
  const r = parseWith(argv, env, {}, false);
  return r === 'help' ? r : r.opts;
}

/**
 * The connector's settings plus a subcommand's own flags and arguments (publish,
 * export): one parser, so the connection flags mean the same everywhere.
 */
export function parseWith(
  argv: string[],
  env: NodeJS.ProcessEnv,
  extra: FlagSpec,
  allowPositionals: boolean,
): { opts: PulsarOptions; extra: Record<string, unknown>; positionals: string[] } | 'help' {
  const options: FlagSpec = {
    ...extra,
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const s of ALL) {
    options[s.flag] = {
      type: s.kind,
      ...(s.short ? { short: s.short } : {}),
      ...(s.multiple ? { multiple: true } : {}),
    };
  }
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: argv, strict: true, allowPositionals, options });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (err) {
    throw new OptionsError((err as Error).message, 'usage');
  }
  if (values.help === true) return 'help';
  const file = typeof values.config === 'string' ? readSettingsFile(values.config, FILE_KEYS) : {};
  const base = typeof values.config === 'string' ? dirname(resolve(values.config)) : process.cwd();
  const out: Record<string, unknown> = {};
  for (const s of ALL) {
    const flag = values[s.flag];
    const key = fileKey(s);
    if (flag !== undefined) {
      // --no-certificates is the one negative flag: present means false.
      out[s.field] =
        s.field === 'certificates' ? false : s.parse(flag, `--${s.flag}`, 'usage', process.cwd());
    } else if (key in file) {
      out[s.field] = s.parse(file[key], `${values.config}: ${key}`, 'config', base);
    } else {
      out[s.field] = s.fallback(env);
    }
  }
  const opts = out as unknown as PulsarOptions;
  if (opts.serviceUrl === '') {
    throw new OptionsError(
      'no broker: give --service-url pulsar://HOST:6650 (or service_url: in --config)',
      'usage',
    );
  }
  opts.serviceUrl = serviceUrl(opts.serviceUrl, 'service URL', 'usage', base);
  if (opts.topics.length === 0)
    throw new OptionsError('no topic: give --topic TOPIC (or topic: in --config)', 'usage');
  if (opts.token !== undefined && opts.tokenFile !== undefined) {
    throw new OptionsError('give --token or --token-file, not both', 'usage');
  }
  const own: Record<string, unknown> = {};
  for (const k of Object.keys(extra)) own[k] = values[k];
  return { opts, extra: own, positionals };
}

/** A Pulsar client for these settings; `extra` overrides client defaults (a CLI gives up sooner). */
export function pulsarClient(opts: PulsarOptions, extra: Partial<ClientOptions> = {}): PulsarClient {
  const token = tokenSource(opts);
  return new PulsarClient({
    serviceUrl: opts.serviceUrl,
    ...(token ? { auth: tokenAuth(token) } : {}),
    ...(opts.tlsCa ? { tls: { ca: readFileSync(opts.tlsCa, 'utf8') } } : {}),
    ...extra,
  });
}

/** The token to connect with, read from its file on each call (rotation without a restart). */
function tokenSource(opts: Pick<PulsarOptions, 'token' | 'tokenFile'>): (() => string) | undefined {
  if (opts.tokenFile !== undefined) {
    const file = opts.tokenFile;
    return () => readFileSync(file, 'utf8').trim();
  }
  const t = opts.token;
  return t === undefined ? undefined : () => t;
}
