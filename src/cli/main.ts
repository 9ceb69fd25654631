#!/usr/bin/env node
// The `kakehi` command: run the proxy, validate a configuration, print the
// configuration schema. Output for humans is plain text; logs are JSON.

// Every command's own code is imported when that command runs: a worker is
// this same entry point, and loading the configuration parser (yaml), ctl and
// the logger there cost each worker about 2 MB it never used (bench:memory).

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/load-config.js';
import { ERROR_CODES, formatIssue, KakehiError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { VERSION } from '../version.js';
import { parseArgs } from './args.js';
import { EXIT } from './exit-codes.js';

const MAIN_HELP = `kakehi — edge reverse proxy and load balancer

Usage: kakehi <command> [options]

Commands:
  run        run the proxy (with no -c: the embedded default on 127.0.0.1:8080)
  validate   check a configuration file and print every error
  ctl        talk to a running kakehi over its command socket (kakehi ctl --help)
  prometheus serve the proxy's metrics to Prometheus (kakehi prometheus --help)
  pki        serve the certificates found in directories (kakehi pki --help)
  pulsar     follow a Pulsar route topic; publish and export it (kakehi pulsar --help)
  console    see and change the proxy in a browser (kakehi console --help)
  schema     print the JSON Schema of the configuration file (for editors)
  hash-password  print the scrypt hash of a password, for basic_auth
  version    print the version

Run 'kakehi <command> --help' for a command's options.

Exit codes: 0 ok, 1 failure, 2 wrong usage, 3 invalid configuration,
4 the proxy is unreachable (ctl, and the connectors' one-shot commands).
`;

const HELP: Record<string, string> = {
  run: `Usage: kakehi run [-c FILE | FILE]

Runs the proxy in the foreground. Logs are JSON lines on stderr; access log
lines go where the configuration's access_log says (stdout by default).
SIGTERM or SIGINT drains in-flight requests (drain_timeout_ms) and exits 0.

Options:
  -c, --config FILE   configuration file (YAML); without it, the embedded
                      default listens on 127.0.0.1:8080
  -h, --help          this help
`,
  validate: `Usage: kakehi validate -c FILE | FILE

Checks a configuration file without running it, printing every error with its
place (e.g. frontends[3].hostname). Also checks, as the user running it, what
run needs from this machine: the directories of command_socket, access_log and
state_file, and command_socket_group. Exits 0 when valid, 3 when not.

Options:
  -c, --config FILE   configuration file (YAML)
  -q, --quiet         print nothing when valid
      --no-paths      check the file only, not this machine (for a file that
                      runs elsewhere, e.g. checked in CI)
  -h, --help          this help
`,
  schema: `Usage: kakehi schema

Prints the JSON Schema of the configuration file, for editors that check YAML
against a schema (e.g. '# yaml-language-server: $schema=kakehi.schema.json').
`,
  version: 'Usage: kakehi version\n\nPrints the version.\n',
};

function usage(message: string, command?: string): number {
  process.stderr.write(`kakehi: ${message}\n\n${command ? HELP[command] : MAIN_HELP}`);
  return EXIT.USAGE;
}

function reportConfigError(err: unknown): number {
  if (
    err instanceof KakehiError &&
    (err.code === 'KKH_CONFIG_INVALID' || err.code === 'KKH_CONFIG_UNREADABLE')
  ) {
    process.stderr.write(`kakehi: ${err.message}\n`);
    return EXIT.CONFIG;
  }
  throw err;
}

/**
 * Whatever stops `run` before it is ready ends as one fatal JSON log line naming
 * the key at fault (StartUpError) and the fix, and, for a person at a terminal,
 * the same sentence as plain text; a stack helps no operator here. Under a
 * supervisor stderr is a log stream, and a plain line in it breaks its parse.
 */
async function reportStartFailure(err: unknown, log: Logger): Promise<number> {
  const { StartUpError } = await import('../main/start-up-error.js');
  const message =
    err instanceof KakehiError
      ? err.message
      : `cannot start: ${err instanceof Error ? err.message : String(err)}`;
  const line = message.replace(/\s*\n\s*/g, '; ');
  log.fatal(
    {
      code: err instanceof KakehiError ? err.code : 'KKH_START_FAILED',
      ...(err instanceof StartUpError ? { key: err.key } : {}),
    },
    line,
  );
  log.flush();
  if (process.stderr.isTTY) process.stderr.write(`kakehi: ${line}\n`);
  return EXIT.FAILURE;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'ctl') return (await import('./ctl.js')).runCtl(rest);
  if (command === 'hash-password') return (await import('./hash-password.js')).runHashPassword(rest);
  if (command === 'prometheus')
    return (await import('../../connectors/prometheus/main.js')).runPrometheusConnector(rest);
  if (command === 'pki') return (await import('../../connectors/pki/main.js')).runPkiConnector(rest);
  if (command === 'pulsar') return (await import('../../connectors/pulsar/main.js')).runPulsarConnector(rest);
  if (command === 'console')
    return (await import('../../connectors/console/main.js')).runConsoleConnector(rest);
  if (command === '__worker') {
    // Forked by `kakehi run` (node:cluster): a data-plane worker, driven over IPC.
    // Imported here, not above: a worker loads the data plane and not main's code.
    (await import('../worker/worker-process.js')).runWorker();
    return -1;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(MAIN_HELP);
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (command === '--version' || (command === 'version' && rest.length === 0)) {
    process.stdout.write(`kakehi ${VERSION}\n`);
    return EXIT.OK;
  }
  if (!(command in HELP)) return usage(`unknown command "${command}"`);
  const parsed = parseArgs(rest, {
    config: { value: true, short: 'c' },
    help: { value: false, short: 'h' },
    ...(command === 'validate' ? { quiet: { value: false, short: 'q' }, 'no-paths': { value: false } } : {}),
  });
  if ('error' in parsed) return usage(parsed.error, command);
  if (parsed.flags.has('help')) {
    process.stdout.write(HELP[command]!);
    return EXIT.OK;
  }
  // `kakehi validate FILE` as well as `-c FILE` (what people type first); one file only.
  const takesFile = (command === 'run' || command === 'validate') && !parsed.flags.has('config');
  const [positionalFile, ...extra] = takesFile ? parsed.positional : [undefined, ...parsed.positional];
  if (extra.length > 0) return usage(`unexpected argument "${extra[0]}"`, command);
  const file = parsed.flags.get('config') ?? positionalFile;

  switch (command) {
    case 'schema':
      process.stdout.write(
        `${JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'kakehi configuration', ...(await import('../config/config-schema.js')).configSchema.json }, null, 2)}\n`,
      );
      return EXIT.OK;
    case 'validate': {
      if (typeof file !== 'string') return usage('validate needs a file: kakehi validate FILE', command);
      let config: Config;
      try {
        config = (await import('../config/load-config.js')).loadConfigFile(file);
      } catch (err) {
        return reportConfigError(err);
      }
      // What run would fail on that the file alone does not show: its paths on this machine.
      const unusable = parsed.flags.has('no-paths')
        ? []
        : (await import('../config/run-paths.js')).checkRunPaths(config.settings);
      if (unusable.length > 0) {
        process.stderr.write(
          `kakehi: ${file} cannot run here (checked as uid ${process.getuid?.() ?? '?'}):\n${unusable.map(formatIssue).join('\n')}\n`,
        );
        return EXIT.CONFIG;
      }
      if (!parsed.flags.has('quiet')) {
        const s = config.state;
        process.stdout.write(
          `${file} is valid: ${s.listeners.size} listeners, ${s.clusters.size} clusters, ${s.backends.size} backends, ${s.frontends.size} frontends, ${s.certificates.size} certificates\n`,
        );
      }
      return EXIT.OK;
    }
    case 'run': {
      let config: Config;
      try {
        config =
          typeof file === 'string'
            ? (await import('../config/load-config.js')).loadConfigFile(file)
            : (await import('../config/embedded-default.js')).embeddedDefault();
      } catch (err) {
        return reportConfigError(err);
      }
      const log = (await import('../log/logger.js')).createLogger(config.settings.logLevel);
      try {
        const { runMain } = await import('../main/run-main.js');
        await runMain(
          config,
          typeof file === 'string' ? resolve(file) : undefined,
          log,
          fileURLToPath(import.meta.url),
        );
        if (typeof file !== 'string') {
          const url = `http://${config.state.listeners.keys().next().value}/`;
          // A plain sentence for a person at a terminal; in a log pipeline, a line
          // like every other (a plain line among JSON breaks the shipper's parse).
          if (process.stderr.isTTY)
            process.stderr.write(`kakehi: running the embedded default; try ${url}\n`);
          else log.info({ url }, 'running the embedded default');
        }
        return -1; // keep running
      } catch (err) {
        return reportStartFailure(err, log);
      }
    }
    default:
      process.stdout.write(HELP[command]!);
      return EXIT.OK;
  }
}

// Node opens its inspector on 127.0.0.1:9229 at a SIGUSR1 when no handler is
// installed: an unauthenticated way to run code as the proxy's user. Every kakehi
// process (main, workers, connectors, ctl) installs one first; main and the
// workers add their own to reopen the access log.
process.on('SIGUSR1', () => {});

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `kakehi: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = EXIT.FAILURE;
  },
);

export { ERROR_CODES, formatIssue };
