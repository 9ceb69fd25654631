// The connector's settings, from flags and an optional small YAML file (flags win).
// Every mistake is reported with the flag or key it is about.

import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultSocketPath,
  int,
  listenAddr,
  logLevel,
  OptionsError,
  readSettingsFile,
  sourceName,
} from '../shared/settings.js';

export { OptionsError };

export const DEFAULT_LISTEN = '127.0.0.1:9465';
export const DEFAULT_SETTLE_MS = 500;
export const DEFAULT_RESCAN_MS = 60_000;
export const DEFAULT_CHECK_MS = 2_000;
export const DEFAULT_SOURCE = 'pki';
export const DEFAULT_EXPIRY_DAYS = [21, 7];
export const DEFAULT_MAX_PAIRS = 20_000;

export interface DirectoryOption {
  path: string;
  /** Listener addresses; undefined = every HTTPS listener the proxy has. */
  listeners: string[] | undefined;
  /** Its certificates are their listeners' defaults (clients without SNI, or a name no certificate has). */
  default?: true;
}

export interface PkiOptions {
  socketPath: string;
  directories: DirectoryOption[];
  settleMs: number;
  rescanIntervalMs: number;
  /** Watch the directories for events (inotify); false = stat checks and rescans only. */
  watch: boolean;
  /** Period of the stat check of known pairs' files; 0 = off. */
  checkIntervalMs: number;
  /** The source name its certificates carry in the proxy: the set this connector owns. */
  source: string;
  expiryWarningDays: number[];
  /** HTTP address for /metrics, /healthz, /status; undefined = off. */
  listen: { host: string; port: number } | undefined;
  maxPairs: number;
  logLevel: string;
}

export const PKI_HELP = `kakehi pki — serve the certificates found in directories

Usage: kakehi pki [options] [DIR ...]
       kakehi pki status [--listen HOST:PORT] [--json]   (ask a running connector)

Watches directories for certificate/key pairs (certbot live/, <name>/<name>.crt+.key,
name.crt|name.pem + name.key, or one PEM holding certificate, chain and key) and keeps
the proxy's certificates (source "pki", or --source) equal to them, over the
command socket.

  -c, --config FILE               YAML settings (keys below in snake_case); flags win
  -s, --socket PATH               command socket (default $KAKEHI_SOCKET, else $RUNTIME_DIRECTORY/kakehi.sock,
                                  else /run/kakehi/kakehi.sock, else ./kakehi.sock)
  -d, --dir PATH                  a directory to watch (repeatable; also positional)
  -l, --listener ADDR             serve on this HTTPS listener only (repeatable; applies
                                  to the directories given on the command line; default:
                                  every HTTPS listener)
      --default                   the certificates of the directories given on the command
                                  line are their listeners' defaults: what clients without
                                  SNI (or with a name no certificate has) get
      --settle-ms N               quiet time before reading a change, and before a
                                  vanished pair is removed (default ${DEFAULT_SETTLE_MS})
      --rescan-interval-ms N      full rescan and reconcile period (default ${DEFAULT_RESCAN_MS})
      --check-interval-ms N       stat the known pairs' files this often (at least 3 ms per
                                  pair), to catch changes no watch event announced (a
                                  symlink swapped further up, as in a Kubernetes secret
                                  volume; NFS); 0 = off (default ${DEFAULT_CHECK_MS})
      --no-watch                  no inotify watches: changes to known pairs are found by
                                  the stat check, new pairs by the rescan (for filesystems
                                  that send no events, or too few inotify watches)
      --source NAME               the source its certificates carry in the proxy; give two
                                  connectors of one proxy different names, or each removes
                                  the other's certificates (default ${DEFAULT_SOURCE})
      --expiry-warning-days LIST  warn this many days before not-after (default ${DEFAULT_EXPIRY_DAYS.join(',')})
      --listen HOST:PORT|off      /metrics, /healthz, /status (default ${DEFAULT_LISTEN}; port 0 picks one)
      --max-pairs N               refuse to track more pairs than this (default ${DEFAULT_MAX_PAIRS})
      --log-level LEVEL           trace|debug|info|warn|error (default $KAKEHI_LOG_LEVEL or info)
  -h, --help                      this text

YAML example:
  socket: /run/kakehi/kakehi.sock
  directories:
    - path: /etc/letsencrypt/live
      listeners: ["0.0.0.0:443"]
      default: true        # these answer clients without SNI
    - /etc/kakehi/certs
  settle_ms: 500
  rescan_interval_ms: 60000
  check_interval_ms: 2000
  watch: true
  source: pki
  expiry_warning_days: [21, 7]
  listen: 127.0.0.1:9465

SIGHUP re-reads the flags and the settings file (a mistake is logged and changes
nothing; socket, source and listen need a restart).

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 failure (e.g. the HTTP address is taken),
2 wrong usage, 3 invalid settings file.
`;

const CONFIG_KEYS = new Set([
  'socket',
  'directories',
  'settle_ms',
  'rescan_interval_ms',
  'check_interval_ms',
  'watch',
  'source',
  'expiry_warning_days',
  'listen',
  'max_pairs',
  'log_level',
]);
function days(what: string, v: unknown, kind: 'usage' | 'config'): number[] {
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
  if (!Array.isArray(list) || list.length === 0) {
    throw new OptionsError(`${what}: expected a list of days, e.g. 21,7`, kind);
  }
  return list.map((d, i) => int(`${what}[${i}]`, d, 0, 3650, kind));
}

function checkInterval(what: string, v: unknown, kind: 'usage' | 'config'): number {
  const n = int(what, v, 0, 86_400_000, kind);
  if (n > 0 && n < 100) throw new OptionsError(`${what} ${n}: 0 (off) or at least 100`, kind);
  return n;
}

function listeners(what: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !/^.+:\d+$/.test(x))) {
    throw new OptionsError(`${what}: expected a list of listener addresses like "0.0.0.0:443"`, 'config');
  }
  return v as string[];
}

function readConfigFile(file: string): Partial<PkiOptions> {
  const doc = readSettingsFile(file, CONFIG_KEYS);
  const base = dirname(resolve(file));
  const out: Partial<PkiOptions> = {};
  for (const [k, v] of Object.entries(doc)) {
    const at = `${file}: ${k}`;
    switch (k) {
      case 'socket':
        if (typeof v !== 'string' || v === '') throw new OptionsError(`${at}: expected a path`, 'config');
        out.socketPath = resolve(base, v);
        break;
      case 'directories':
        if (!Array.isArray(v)) throw new OptionsError(`${at}: expected a list`, 'config');
        out.directories = v.map((d, i) => {
          if (typeof d === 'string') return { path: resolve(base, d), listeners: undefined };
          if (d && typeof d === 'object' && typeof (d as { path?: unknown }).path === 'string') {
            const extra = Object.keys(d).filter((x) => x !== 'path' && x !== 'listeners' && x !== 'default');
            if (extra.length > 0) {
              throw new OptionsError(
                `${at}[${i}]: unknown key "${extra[0]}"; known: path, listeners, default`,
                'config',
              );
            }
            const l = (d as { listeners?: unknown }).listeners;
            const isDefault = (d as { default?: unknown }).default;
            if (isDefault !== undefined && typeof isDefault !== 'boolean') {
              throw new OptionsError(`${at}[${i}].default: expected true or false`, 'config');
            }
            const dir: DirectoryOption = {
              path: resolve(base, (d as { path: string }).path),
              listeners: l === undefined ? undefined : listeners(`${at}[${i}].listeners`, l),
            };
            if (isDefault === true) dir.default = true;
            return dir;
          }
          throw new OptionsError(`${at}[${i}]: expected a path or {path, listeners, default}`, 'config');
        });
        break;
      case 'settle_ms':
        out.settleMs = int(at, v, 0, 600_000, 'config');
        break;
      case 'rescan_interval_ms':
        out.rescanIntervalMs = int(at, v, 100, 86_400_000, 'config');
        break;
      case 'check_interval_ms':
        out.checkIntervalMs = checkInterval(at, v, 'config');
        break;
      case 'watch':
        if (typeof v !== 'boolean') throw new OptionsError(`${at}: expected true or false`, 'config');
        out.watch = v;
        break;
      case 'source':
        out.source = sourceName(at, v, 'config');
        break;
      case 'expiry_warning_days':
        out.expiryWarningDays = days(at, v, 'config');
        break;
      case 'listen':
        out.listen = listenAddr(at, v, 'config');
        break;
      case 'max_pairs':
        out.maxPairs = int(at, v, 1, 10_000_000, 'config');
        break;
      case 'log_level':
        out.logLevel = logLevel(at, v, 'config');
        break;
    }
  }
  return out;
}

export function parsePkiArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): PkiOptions | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        socket: { type: 'string', short: 's' },
        dir: { type: 'string', short: 'd', multiple: true },
        listener: { type: 'string', short: 'l', multiple: true },
        'settle-ms': { type: 'string' },
        'rescan-interval-ms': { type: 'string' },
        'check-interval-ms': { type: 'string' },
        'no-watch': { type: 'boolean' },
        default: { type: 'boolean' },
        source: { type: 'string' },
        'expiry-warning-days': { type: 'string' },
        listen: { type: 'string' },
        'max-pairs': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new OptionsError((err as Error).message, 'usage');
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (v.help) return 'help';
  const file = typeof v.config === 'string' ? readConfigFile(v.config) : {};
  const cliDirs = [...((v.dir as string[] | undefined) ?? []), ...parsed.positionals];
  const cliListeners = v.listener as string[] | undefined;
  if (cliListeners) {
    for (const l of cliListeners) {
      if (!/^.+:\d+$/.test(l))
        throw new OptionsError(`--listener ${JSON.stringify(l)}: expected HOST:PORT`, 'usage');
    }
    if (cliDirs.length === 0)
      throw new OptionsError(
        '--listener applies to directories given on the command line; give one',
        'usage',
      );
  }
  if (v.default === true && cliDirs.length === 0) {
    throw new OptionsError(
      '--default applies to directories given on the command line; give one (or default: in --config)',
      'usage',
    );
  }
  const directories = [
    ...(file.directories ?? []),
    ...cliDirs.map((d): DirectoryOption => {
      const dir: DirectoryOption = { path: resolve(d), listeners: cliListeners };
      if (v.default === true) dir.default = true;
      return dir;
    }),
  ];
  if (directories.length === 0) {
    throw new OptionsError('no directory to watch: give DIR, --dir or directories: in --config', 'usage');
  }
  const level = logLevel(
    '--log-level',
    (v['log-level'] as string | undefined) ?? file.logLevel ?? env.KAKEHI_LOG_LEVEL ?? 'info',
    'usage',
  );
  return {
    socketPath: resolve((v.socket as string | undefined) ?? file.socketPath ?? defaultSocketPath(env)),
    directories,
    settleMs:
      v['settle-ms'] !== undefined
        ? int('--settle-ms', v['settle-ms'], 0, 600_000, 'usage')
        : (file.settleMs ?? DEFAULT_SETTLE_MS),
    rescanIntervalMs:
      v['rescan-interval-ms'] !== undefined
        ? int('--rescan-interval-ms', v['rescan-interval-ms'], 100, 86_400_000, 'usage')
        : (file.rescanIntervalMs ?? DEFAULT_RESCAN_MS),
    checkIntervalMs:
      v['check-interval-ms'] !== undefined
        ? checkInterval('--check-interval-ms', v['check-interval-ms'], 'usage')
        : (file.checkIntervalMs ?? DEFAULT_CHECK_MS),
    watch: v['no-watch'] === true ? false : (file.watch ?? true),
    source:
      v.source !== undefined ? sourceName('--source', v.source, 'usage') : (file.source ?? DEFAULT_SOURCE),
    expiryWarningDays:
      v['expiry-warning-days'] !== undefined
        ? days('--expiry-warning-days', v['expiry-warning-days'], 'usage')
        : (file.expiryWarningDays ?? DEFAULT_EXPIRY_DAYS),
    listen:
      v.listen !== undefined
        ? listenAddr('--listen', v.listen, 'usage')
        : 'listen' in file
          ? file.listen
          : listenAddr('default', DEFAULT_LISTEN, 'usage'),
    maxPairs:
      v['max-pairs'] !== undefined
        ? int('--max-pairs', v['max-pairs'], 1, 10_000_000, 'usage')
        : (file.maxPairs ?? DEFAULT_MAX_PAIRS),
    logLevel: level,
  };
}
