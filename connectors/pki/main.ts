// `kakehi pki`: the process. Parses the settings, serves the HTTP face, starts the
// connector, and stops cleanly on SIGTERM/SIGINT. Exit codes: 0 stopped by a
// signal, 1 failure (HTTP address unusable), 2 wrong usage, 3 invalid settings file.

import type { Server } from 'node:http';
import { createLogger } from '../../src/log/logger.js';
import { PkiConnector } from './connector.js';
import { serveHttp } from './http.js';
import { OptionsError, PKI_HELP, type PkiOptions, parsePkiArgs } from './options.js';

export async function runPkiConnector(argv: string[]): Promise<number> {
  if (argv[0] === 'status') return (await import('./status-command.js')).runPkiStatus(argv.slice(1));
  let opts: PkiOptions | 'help';
  try {
    opts = parsePkiArgs(argv);
  } catch (err) {
    if (err instanceof OptionsError) {
      process.stderr.write(`kakehi pki: ${err.message}\n${err.kind === 'usage' ? `\n${PKI_HELP}` : ''}`);
      return err.kind === 'usage' ? 2 : 3;
    }
    throw err;
  }
  if (opts === 'help') {
    process.stdout.write(PKI_HELP);
    return 0;
  }
  const log = createLogger(opts.logLevel, 'kakehi-pki');
  const connector = new PkiConnector(opts, log);
  let server: Server | undefined;
  if (opts.listen) {
    try {
      const s = await serveHttp(connector, opts.listen.host, opts.listen.port, log);
      server = s.server;
      log.info({ host: opts.listen.host, port: s.port }, 'listening');
    } catch (err) {
      log.error({ err: (err as Error).message, listen: opts.listen }, 'cannot listen');
      return 1;
    }
  }
  log.info(
    {
      socket: opts.socketPath,
      directories: opts.directories,
      settle_ms: opts.settleMs,
      rescan_interval_ms: opts.rescanIntervalMs,
      watch: opts.watch,
      check_interval_ms: opts.checkIntervalMs,
      source: opts.source,
      expiry_warning_days: opts.expiryWarningDays,
    },
    'pki connector starting',
  );
  await connector.start();
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      server?.closeAllConnections();
      server?.close();
      connector.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
