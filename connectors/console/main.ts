// `kakehi console`: the web console as a connector process. It speaks only the
// command protocol, through the same client as `kakehi ctl`, so a console crash
// never touches traffic. Tokens are made (and printed once) at first start.

import { readFileSync } from 'node:fs';
import { EXIT } from '../../src/cli/exit-codes.js';
import { CommandClient } from '../../src/client/command-client.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { untilStopped } from '../shared/lifetime.js';
import { ConsoleServer } from './console-server.js';
import { EventRelay } from './event-relay.js';
import { CONSOLE_HELP, type ConsoleOptions, OptionsError, parseConsoleArgs } from './options.js';
import { loadStaticFiles, staticDir } from './static-files.js';
import { TokenFile } from './token-file.js';

/** The running console, apart from argv, so tests and the CLI start it alike. */
export class ConsoleConnector {
  readonly client: CommandClient;
  readonly relay: EventRelay;
  readonly server: ConsoleServer;

  private constructor(client: CommandClient, relay: EventRelay, server: ConsoleServer) {
    this.client = client;
    this.relay = relay;
    this.server = server;
  }

  static async start(
    opts: ConsoleOptions,
    log: Logger,
  ): Promise<{ connector: ConsoleConnector; port: number; created?: Record<string, string> }> {
    const { file: tokens, created } = await TokenFile.open(opts.tokenFile);
    const files = loadStaticFiles(staticDir(import.meta.dirname));
    const tls = opts.tls
      ? { cert: readFileSync(opts.tls.certFile, 'utf8'), key: readFileSync(opts.tls.keyFile, 'utf8') }
      : undefined;
    // Started before (or without) the proxy: the client dials until it answers.
    const client = CommandClient.open(opts.socketPath, {
      reconnect: { initialDelayMs: 100, maxDelayMs: 5_000 },
    });
    const relay = new EventRelay(client, log);
    const server = new ConsoleServer({
      client,
      relay,
      tokens,
      files,
      log,
      source: opts.source,
      host: opts.host,
      tls,
    });
    const connector = new ConsoleConnector(client, relay, server);
    try {
      const port = await server.listen(opts.port);
      return { connector, port, ...(created ? { created } : {}) };
    } catch (err) {
      await connector.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.relay.stop();
    await this.server.close();
    await this.client.close();
  }
}

export async function runConsoleConnector(argv: string[]): Promise<number> {
  let opts: ConsoleOptions | 'help';
  try {
    opts = parseConsoleArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof OptionsError)) throw err;
    process.stderr.write(`kakehi console: ${err.message}\n\n${CONSOLE_HELP}`);
    return EXIT.USAGE;
  }
  if (opts === 'help') {
    process.stdout.write(CONSOLE_HELP);
    return EXIT.OK;
  }
  const log = createLogger(opts.logLevel, 'kakehi-console');
  let started: Awaited<ReturnType<typeof ConsoleConnector.start>>;
  try {
    started = await ConsoleConnector.start(opts, log);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot start the console');
    return EXIT.FAILURE;
  }
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${started.port}/`;
  if (started.created) {
    // The only time the tokens exist in clear: on the operator's terminal (or journal).
    process.stdout.write(
      `kakehi console: new tokens (shown once; ${opts.tokenFile} keeps only their hashes)\n` +
        `  editor:    ${started.created.editor}\n  read-only: ${started.created.viewer}\n`,
    );
  }
  log.info(
    {
      url,
      port: started.port,
      command_socket: opts.socketPath,
      token_file: opts.tokenFile,
      tokens_created: started.created !== undefined,
    },
    'listening',
  );
  process.on('SIGHUP', () =>
    log.info('SIGHUP: nothing to reload (settings are flags; restart to change them)'),
  );
  return untilStopped(log, undefined, started.connector);
}
