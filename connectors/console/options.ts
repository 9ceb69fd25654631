// The console's settings, from flags. It refuses to listen beyond loopback over
// plain HTTP: tokens and session cookies would cross the network in clear.

import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultSocketPath,
  listenAddr,
  logLevel,
  OptionsError,
  SOCKET_DEFAULT_HELP,
  sourceName,
} from '../shared/settings.js';

export { OptionsError };

export const DEFAULT_LISTEN = '127.0.0.1:9467';
export const DEFAULT_SOURCE = 'console';
export const TOKEN_FILE_NAME = 'kakehi-console.json';

export interface ConsoleOptions {
  socketPath: string;
  host: string;
  port: number;
  /** Hashed tokens; created with fresh tokens (printed once) when missing. */
  tokenFile: string;
  /** HTTPS with this certificate and key (PEM files); required beyond loopback. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** The source name the console's changes carry in the proxy. */
  source: string;
  logLevel: string;
}

export const CONSOLE_HELP = `kakehi console — see and change a running proxy in the browser

Usage: kakehi console [options]

Serves a web console over the command socket: overview, clusters, backends,
frontends, certificates, connectors and the live events; every edit collects
into one transaction, reviewed as the proxy's dry-run diff, applied with the
generation it was reviewed against. At first start it prints an editor token
and a read-only token once and keeps only their hashes in --token-file.

  -s, --socket PATH        command socket (default ${SOCKET_DEFAULT_HELP})
      --listen HOST:PORT   HTTP address (default ${DEFAULT_LISTEN}; port 0 picks one);
                           beyond loopback only with --tls-cert and --tls-key
      --token-file PATH    hashed tokens, mode 0600 (default $STATE_DIRECTORY/${TOKEN_FILE_NAME},
                           else ./${TOKEN_FILE_NAME}); delete it to get new tokens
      --tls-cert FILE      serve HTTPS with this certificate (PEM, chain after the leaf)
      --tls-key FILE       and this key (PEM)
      --source NAME        the source name of the console's changes (default ${DEFAULT_SOURCE})
      --log-level LEVEL    trace, debug, info, warn, error, fatal, silent (default $KAKEHI_LOG_LEVEL, else info)
  -h, --help               this text
`;

/** Loopback addresses, where plain HTTP never leaves the machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function defaultTokenFile(env: NodeJS.ProcessEnv): string {
  // systemd's StateDirectory= may list several directories; the first is ours.
  const stateDir = env.STATE_DIRECTORY?.split(':')[0];
  return stateDir ? join(stateDir, TOKEN_FILE_NAME) : TOKEN_FILE_NAME;
}

export function parseConsoleArgs(argv: string[], env: NodeJS.ProcessEnv): ConsoleOptions | 'help' {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (err) {
    throw new OptionsError((err as Error).message, 'usage');
  }
  if (values.help) return 'help';
  const listen = listenAddr('--listen', values.listen ?? DEFAULT_LISTEN, 'usage');
  if (listen === undefined) throw new OptionsError('--listen: the console needs an address', 'usage');
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new OptionsError('--tls-cert and --tls-key go together: give both or neither', 'usage');
  }
  const tls = certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined;
  if (tls === undefined && !isLoopback(listen.host)) {
    throw new OptionsError(
      `--listen ${values.listen}: plain HTTP beyond loopback would send tokens and cookies in clear; give --tls-cert and --tls-key, or listen on 127.0.0.1`,
      'usage',
    );
  }
  return {
    socketPath: values.socket ?? defaultSocketPath(env),
    host: listen.host,
    port: listen.port,
    tokenFile: values['token-file'] ?? defaultTokenFile(env),
    tls,
    source: sourceName('--source', values.source ?? DEFAULT_SOURCE, 'usage'),
    logLevel: logLevel('--log-level', values['log-level'] ?? env.KAKEHI_LOG_LEVEL ?? 'info', 'usage'),
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      socket: { type: 'string', short: 's' },
      listen: { type: 'string' },
      'token-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      source: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
