// How a connector process ends: SIGTERM or SIGINT closes its HTTP face and the
// connector, then the process exits 0 (1 if closing failed); `failed` ends it
// early with 1 (a setting it cannot run with).

import type { Server } from 'node:http';
import type { Logger } from '../../src/log/logger.js';

export function untilStopped(
  log: Logger,
  server: Server | undefined,
  connector: { close(): Promise<void> },
  opts: { onStop?: () => void; failed?: Promise<unknown> } = {},
): Promise<number> {
  return new Promise<number>((resolve) => {
    const end = (code: number) => {
      server?.closeAllConnections();
      server?.close();
      connector.close().then(
        () => resolve(code),
        () => resolve(1),
      );
    };
    const stop = (signal: string) => {
      opts.onStop?.();
      log.info({ signal }, 'stopping');
      end(0);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    opts.failed?.catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'stopping');
      end(1);
    });
  });
}

/**
 * What a SIGHUP does: read the settings again; a mistake, or a change of a
 * setting that needs a restart (`fixed` names it), is logged and changes nothing;
 * otherwise the running connector takes them.
 */
export function settingsReloader<T extends { logLevel: string }>(
  log: Logger,
  parse: () => T | 'help',
  fixed: (next: T) => string | undefined,
  apply: (next: T) => void,
): () => void {
  return () => {
    let next: T | 'help';
    try {
      next = parse();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'settings reload refused; the running settings stay');
      return;
    }
    if (next === 'help') return;
    const setting = fixed(next);
    if (setting !== undefined) {
      log.error(
        { setting },
        `settings reload refused: ${setting} cannot change on reload; restart the connector`,
      );
      return;
    }
    log.level = next.logLevel;
    apply(next);
  };
}
