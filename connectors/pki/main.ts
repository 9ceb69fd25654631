// `kakehi pki`: the process. Parses the settings, serves the HTTP face, starts the
// connector, reloads its settings on SIGHUP, and stops cleanly on SIGTERM/SIGINT.
// Exit codes: 0 stopped by a signal, 1 failure (HTTP address unusable), 2 wrong
// usage, 3 invalid settings file.

import { createLogger } from '../../src/log/logger.js';
import { serveFace } from '../shared/http-face.js';
import { settingsReloader, untilStopped } from '../shared/lifetime.js';
import { PkiConnector } from './connector.js';
import { pkiRoutes } from './http.js';
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
  const face = await serveFace(pkiRoutes(connector), opts.listen, log);
  if (face === null) return 1;
  const { server } = face;
  log.info(startFields(opts), 'pki connector starting');
  // SIGHUP re-reads the flags and settings file. A mistake is logged and changes
  // nothing; otherwise the running connector takes the new settings and keeps what
  // it knows (last good certificates included), then rescans and reconciles, so
  // the proxy loses only what the new settings no longer want. A SIGHUP during the
  // first scan is handled after it.
  const started = connector.start();
  let stopping = false;
  const reloadSettings = settingsReloader(
    log,
    () => parsePkiArgs(argv),
    (next) => unreloadable(connector.opts, next),
    (next) => {
      connector.reconfigure(next);
      log.info(startFields(next), 'settings reloaded');
    },
  );
  const reload = () => {
    if (!stopping) reloadSettings();
  };
  process.on('SIGHUP', () => void started.then(reload));
  await started;
  return untilStopped(log, server, connector, {
    onStop: () => {
      stopping = true;
    },
  });
}

function startFields(opts: PkiOptions): Record<string, unknown> {
  return {
    socket: opts.socketPath,
    directories: opts.directories,
    settle_ms: opts.settleMs,
    rescan_interval_ms: opts.rescanIntervalMs,
    watch: opts.watch,
    check_interval_ms: opts.checkIntervalMs,
    source: opts.source,
    expiry_warning_days: opts.expiryWarningDays,
  };
}

/**
 * The settings a reload cannot change, and why not: the socket and source name
 * say which proxy and which certificates this process owns (a new name would
 * orphan the old one's certificates), and the HTTP address is what scrapers use.
 */
function unreloadable(was: PkiOptions, now: PkiOptions): string | undefined {
  if (was.socketPath !== now.socketPath) return 'socket';
  if (was.source !== now.source) return 'source';
  if (JSON.stringify(was.listen) !== JSON.stringify(now.listen)) return 'listen';
  return undefined;
}
