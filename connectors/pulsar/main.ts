// `kakehi pulsar`: the route connector process, and its `publish` and `export`
// subcommands. Exit codes: 0 ok (or stopped by a signal), 1 failure (broker or
// HTTP address unusable, a partitioned topic, a publish the broker refused),
// 2 wrong usage, 3 invalid settings or changes file.

import { stringify } from 'yaml';
import { readChanges, UsageError } from '../../src/cli/ctl-commands.js';
import { issueLines } from '../../src/cli/ctl-output.js';
import { createLogger } from '../../src/log/logger.js';
import { parseChanges } from '../../src/state/change.js';
import { json, metricsRoute, serveFace, text } from '../shared/http-face.js';
import { settingsReloader, untilStopped } from '../shared/lifetime.js';
import {
  OptionsError,
  PULSAR_HELP,
  type PulsarOptions,
  parsePulsarArgs,
  parseWith,
  pulsarClient,
  RELOADABLE,
} from './options.js';
import { changeMessages, exportDesiredState, publishChanges, publishTombstones } from './publish.js';
import { RouteConnector } from './route-connector.js';

const PUBLISH_HELP = `kakehi pulsar publish — publish changes to a route topic

Usage: kakehi pulsar publish FILE [--transaction NAME] [--dry-run] [connection options]
       kakehi pulsar publish --delete KEY [--delete KEY ...] [connection options]

FILE is a changes file as \`kakehi ctl apply\` takes it (JSON or YAML, a "changes"
list). Every change is validated first with the proxy's own schemas; one mistake
refuses the whole file and sends nothing. Each change is one message keyed by its
object (cluster:app, backend:app/b1, …); with --transaction all of them are one
message under transaction:NAME, applied by every proxy all together or not at all.
--delete sends a tombstone (an empty message) for a key.

      --transaction NAME   one transaction message under key transaction:NAME
      --delete KEY         a tombstone for KEY (repeatable)
      --dry-run            print the messages instead of sending them
  -t, --topic TOPIC        the route topic
      --service-url URL    pulsar://HOST:6650 or pulsar+ssl://HOST:6651
      --token JWT | --token-file PATH | --tls-ca PATH    as for kakehi pulsar

Exit codes: 0 sent (every receipt came back), 1 the broker failed, 2 wrong usage,
3 invalid changes file.
`;

const EXPORT_HELP = `kakehi pulsar export — print a route topic's desired state as a changes file

Usage: kakehi pulsar export [--json] [connection options]

Reads the topic's compacted view from the start and prints every object it puts,
parents first, as a changes file that \`kakehi pulsar publish\` and
\`kakehi ctl apply\` take (YAML, or JSON with --json). Certificates come with their
keys, as they are on the topic. Skipped messages are named on stderr.

Exit codes: 0 ok, 1 the broker failed, 2 wrong usage, 3 invalid settings file.
`;

export async function runPulsarConnector(argv: string[]): Promise<number> {
  if (argv[0] === 'publish') return runPublish(argv.slice(1));
  if (argv[0] === 'export') return runExport(argv.slice(1));
  let opts: PulsarOptions | 'help';
  try {
    opts = parsePulsarArgs(argv);
  } catch (err) {
    return optionsFailure(err, PULSAR_HELP);
  }
  if (opts === 'help') {
    process.stdout.write(PULSAR_HELP);
    return 0;
  }
  const log = createLogger(opts.logLevel, 'kakehi-pulsar');
  const connector = new RouteConnector(opts, log);
  const face = await serveFace(
    {
      '/metrics': metricsRoute(connector.metrics.registry),
      '/healthz': () => {
        const h = connector.healthy;
        return text(h.ok ? 200 : 503, h.reason);
      },
      '/readyz': () =>
        connector.ready
          ? text(200, 'ready: the proxy holds what the topic describes')
          : text(503, 'not ready: bootstrapping from the compacted view'),
      '/status': () => json(200, connector.status()),
    },
    opts.listen,
    log,
  );
  if (face === null) return 1;
  const { server } = face;
  log.info(
    { topics: opts.topics, service_url: opts.serviceUrl, socket: opts.socketPath, source: opts.source },
    'pulsar connector starting',
  );
  const reload = settingsReloader(
    log,
    () => parsePulsarArgs(argv),
    (next) =>
      (Object.keys(next) as (keyof PulsarOptions)[]).find(
        (k) => !RELOADABLE.has(k) && JSON.stringify(next[k]) !== JSON.stringify(connector.opts[k]),
      ),
    (next) => {
      connector.reconfigure(next);
      log.info(
        { batch_max: next.batchMax, batch_ms: next.batchMs, resync_interval_ms: next.resyncIntervalMs },
        'settings reloaded',
      );
    },
  );
  process.on('SIGHUP', reload);
  return untilStopped(log, server, connector, { failed: connector.start() });
}

function optionsFailure(err: unknown, help: string): number {
  if (err instanceof OptionsError || err instanceof UsageError) {
    const usage = err instanceof UsageError || err.kind === 'usage';
    process.stderr.write(
      `kakehi pulsar: ${err.message}\n${usage ? `Run 'kakehi pulsar ${help === PULSAR_HELP ? '' : help === PUBLISH_HELP ? 'publish ' : 'export '}--help' for the options.\n` : ''}`,
    );
    return usage ? 2 : 3;
  }
  throw err;
}

// A command line gives up rather than retrying for ever.
const clientFor = (opts: PulsarOptions) =>
  pulsarClient(opts, { backoffMaxMs: 2_000, operationTimeoutMs: 30_000 });

async function runPublish(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseWith>;
  try {
    parsed = parseWith(
      argv,
      process.env,
      {
        transaction: { type: 'string' },
        delete: { type: 'string', multiple: true },
        'dry-run': { type: 'boolean' },
      },
      true,
    );
  } catch (err) {
    return optionsFailure(err, PUBLISH_HELP);
  }
  if (parsed === 'help') {
    process.stdout.write(PUBLISH_HELP);
    return 0;
  }
  const { opts, extra, positionals } = parsed;
  const deletes = (extra.delete as string[] | undefined) ?? [];
  const dryRun = extra['dry-run'] === true;
  const transaction = extra.transaction as string | undefined;
  if (opts.topics.length !== 1)
    return optionsFailure(new UsageError('publish sends to one --topic'), PUBLISH_HELP);
  const topic = opts.topics[0]!;
  if ((positionals.length === 1) === deletes.length > 0 || positionals.length > 1) {
    return optionsFailure(new UsageError('give one changes FILE, or --delete KEY'), PUBLISH_HELP);
  }
  // What --dry-run prints: one line per message, key then payload.
  let lines: string[];
  let changes: ReturnType<typeof parseChanges>;
  if (deletes.length > 0) {
    const bad = deletes.find(
      (k) => !/^(listener|cluster|backend|frontend|certificate|transaction):./.test(k),
    );
    if (bad !== undefined) {
      return optionsFailure(
        new UsageError(
          `--delete ${JSON.stringify(bad)}: expected KIND:KEY, e.g. backend:app/b1 or transaction:NAME`,
        ),
        PUBLISH_HELP,
      );
    }
    changes = { changes: [] };
    lines = deletes.map((key) => `${key}\t(tombstone)`);
  } else {
    try {
      changes = parseChanges(readChanges(positionals[0]!), 'changes');
    } catch (err) {
      return optionsFailure(err, PUBLISH_HELP);
    }
    if ('issues' in changes) {
      process.stderr.write(
        `kakehi pulsar: ${positionals[0]} is refused, nothing was sent:\n${issueLines(changes.issues)}`,
      );
      return 3;
    }
    if (changes.changes.length === 0)
      return optionsFailure(new UsageError(`${positionals[0]}: no changes`), PUBLISH_HELP);
    lines = changeMessages(changes.changes, transaction !== undefined ? { transaction } : {}).map(
      (m) => `${m.key}\t${m.payload}`,
    );
  }
  if (dryRun) {
    for (const l of lines) process.stdout.write(`${l}\n`);
    process.stdout.write(`${lines.length} messages to ${topic} (dry run: nothing sent)\n`);
    return 0;
  }
  const client = clientFor(opts);
  try {
    const ids =
      deletes.length > 0
        ? await publishTombstones(client, topic, deletes)
        : await publishChanges(
            client,
            topic,
            'changes' in changes ? changes.changes : [],
            transaction !== undefined ? { transaction } : {},
          );
    process.stdout.write(
      `published ${ids.length} messages to ${topic} (last ${ids.at(-1)?.toString() ?? '-'})\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`kakehi pulsar: publishing to ${topic} failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

async function runExport(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseWith>;
  try {
    parsed = parseWith(argv, process.env, { json: { type: 'boolean' } }, false);
  } catch (err) {
    return optionsFailure(err, EXPORT_HELP);
  }
  if (parsed === 'help') {
    process.stdout.write(EXPORT_HELP);
    return 0;
  }
  const { opts, extra } = parsed;
  if (opts.topics.length !== 1)
    return optionsFailure(new UsageError('export reads one --topic'), EXPORT_HELP);
  const client = clientFor(opts);
  try {
    const { changes, skipped, complete } = await exportDesiredState(client, opts.topics[0]!, {
      idleMs: opts.bootstrapIdleMs,
    });
    for (const s of skipped) process.stderr.write(`skipped ${s.id} ${s.key ?? '(no key)'}: ${s.reason}\n`);
    if (!complete)
      process.stderr.write(
        `warning: no message came for ${opts.bootstrapIdleMs} ms before the topic's last id: the newest messages may be missing\n`,
      );
    process.stdout.write(
      extra.json === true ? `${JSON.stringify({ changes }, null, 2)}\n` : stringify({ changes }),
    );
    return 0;
  } catch (err) {
    process.stderr.write(`kakehi pulsar: reading ${opts.topics[0]} failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
