// `kakehi prometheus`: a separate process that asks the proxy for `query_metrics`
// over the command socket and serves it as Prometheus text. Scrapes share one
// query (single flight), are cached briefly and bounded by a timeout; when the
// proxy can't answer, /metrics still answers 200 with the connector's own metrics,
// kakehi_proxy_up 0 among them, and they say why.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CommandClient, CommandError, CommandTransportError } from '../../src/client/command-client.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { untilStopped } from '../shared/lifetime.js';
import { defaultSocketPath } from '../shared/settings.js';
import { BackendBudget, renderFamilies, validResult } from './render.js';

export const DEFAULT_LISTEN = '127.0.0.1:9464';
export const DEFAULT_CACHE_MS = 1_000;
export const DEFAULT_TIMEOUT_MS = 3_000;
export const DEFAULT_MAX_BACKEND_SERIES = 1_000;
// Scrapers are trusted but slow or stuck clients must not pin sockets forever.
const HTTP_REQUEST_TIMEOUT_MS = 10_000;
const HTTP_KEEPALIVE_MS = 5_000;
const MAX_HTTP_CONNECTIONS = 64;

export const PROMETHEUS_HELP = `kakehi prometheus — serve the proxy's metrics to Prometheus

Usage: kakehi prometheus [options]

  -s, --socket PATH            command socket (default $KAKEHI_SOCKET, else $RUNTIME_DIRECTORY/kakehi.sock,
                               else /run/kakehi/kakehi.sock, else ./kakehi.sock)
      --listen HOST:PORT       HTTP address (default ${DEFAULT_LISTEN}; port 0 picks one)
      --cache-ms N             reuse a query's answer for N ms (default ${DEFAULT_CACHE_MS})
      --timeout-ms N           give up on a query after N ms (default ${DEFAULT_TIMEOUT_MS})
      --per-backend            keep the backend label (off: summed per cluster)
      --max-backend-series N   backends with their own label; the rest are "other" (default ${DEFAULT_MAX_BACKEND_SERIES})
  -h, --help                   this text

Endpoints: /metrics, /connector-metrics, /healthz, /readyz
`;

export interface ConnectorOptions {
  socketPath: string;
  host: string;
  port: number;
  cacheMs: number;
  timeoutMs: number;
  perBackend: boolean;
  maxBackendSeries: number;
}

type Outcome = { ok: true; text: string } | { ok: false; reason: string; message: string };

/** The connector itself, separate from argv parsing so tests can drive it in-process. */
export class PrometheusConnector {
  readonly opts: ConnectorOptions;
  readonly registry = new Registry();
  readonly #log: Logger;
  readonly #up: Gauge;
  readonly #proxyUp: Gauge;
  readonly #errors: Counter;
  readonly #dropped: Counter;
  readonly #querySeconds: Histogram;
  readonly #budget: BackendBudget;
  #client: CommandClient | undefined;
  #connecting: Promise<CommandClient> | undefined;
  #inflight: Promise<Outcome> | undefined;
  #cached: { at: number; outcome: Outcome } | undefined;
  #server: Server | undefined;
  #closed = false;

  constructor(opts: ConnectorOptions, log: Logger) {
    this.opts = opts;
    this.#log = log;
    this.#budget = new BackendBudget(opts.maxBackendSeries);
    const registers = [this.registry];
    this.#up = new Gauge({
      name: 'kakehi_connector_up',
      help: 'Whether the last query_metrics to the proxy succeeded (1) or not (0).',
      registers,
    });
    this.#proxyUp = new Gauge({
      name: 'kakehi_proxy_up',
      help: "Whether the proxy answered the last query_metrics (1) or not (0); Prometheus's up is about this exporter.",
      registers,
    });
    this.#errors = new Counter({
      name: 'kakehi_connector_scrape_errors_total',
      help: 'Failed query_metrics requests, by reason (unreachable, timeout, refused, invalid).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['unreachable', 'timeout', 'refused', 'invalid']) this.#errors.inc({ reason }, 0);
    this.#dropped = new Counter({
      name: 'kakehi_connector_series_dropped_total',
      help: 'Per-backend series folded into backend="other" because of --max-backend-series.',
      registers,
    });
    this.#querySeconds = new Histogram({
      name: 'kakehi_connector_query_seconds',
      help: 'Time to get an answer (or an error) to query_metrics from the proxy.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#up.set(0);
    this.#proxyUp.set(0);
  }

  get ready(): boolean {
    return this.#cached?.outcome.ok === true;
  }

  async listen(): Promise<number> {
    const server = createServer(
      { requestTimeout: HTTP_REQUEST_TIMEOUT_MS, headersTimeout: HTTP_REQUEST_TIMEOUT_MS },
      (req, res) => this.#handle(req, res),
    );
    server.keepAliveTimeout = HTTP_KEEPALIVE_MS;
    server.maxConnections = MAX_HTTP_CONNECTIONS;
    server.on('clientError', (_err, socket) => socket.destroy());
    server.on('connection', (socket) => {
      socket.setTimeout(HTTP_REQUEST_TIMEOUT_MS, () => socket.destroy());
      socket.on('error', () => {});
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#log.error({ err }, 'http server error'));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    this.#log.info({ port, host: this.opts.host, command_socket: this.opts.socketPath }, 'listening');
    return port;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const server = this.#server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    await this.#client?.close();
  }

  /** Prometheus text for /metrics, shared by concurrent callers and cached for cacheMs. */
  scrape(): Promise<Outcome> {
    const c = this.#cached;
    if (c && Date.now() - c.at < this.opts.cacheMs) return Promise.resolve(c.outcome);
    if (this.#inflight) return this.#inflight;
    const p = this.#query().then((outcome) => {
      this.#cached = { at: Date.now(), outcome };
      this.#inflight = undefined;
      return outcome;
    });
    this.#inflight = p;
    return p;
  }

  async #query(): Promise<Outcome> {
    const end = this.#querySeconds.startTimer();
    let timer: NodeJS.Timeout | undefined;
    // One deadline for connect and request together: a scrape never waits longer.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueryTimeout()), this.opts.timeoutMs);
    });
    deadline.catch(() => {});
    try {
      const result = await Promise.race([
        this.#connected().then((client) =>
          client.request('query_metrics', {}, { timeoutMs: this.opts.timeoutMs }),
        ),
        deadline,
      ]);
      // Typed as this proxy answers; still checked, since the exporter may face another version.
      if (!validResult(result))
        return this.#fail('invalid', 'query_metrics answered without a families list');
      const rendered = await renderFamilies(result, {
        perBackend: this.opts.perBackend,
        budget: this.#budget,
      });
      if (rendered.droppedSeries > 0) this.#dropped.inc(rendered.droppedSeries);
      if (rendered.skippedFamilies.length > 0) {
        this.#log.warn({ families: rendered.skippedFamilies }, 'skipped malformed metric families');
      }
      this.#up.set(1);
      this.#proxyUp.set(1);
      return { ok: true, text: rendered.text };
    } catch (err) {
      if (err instanceof QueryTimeout)
        return this.#fail('timeout', `no answer within ${this.opts.timeoutMs} ms`);
      if (err instanceof CommandTransportError && err.reason === 'closed') {
        // The client stopped reconnecting (the proxy said goodbye): dial afresh next time.
        const c = this.#client;
        this.#client = undefined;
        void c?.close();
      }
      if (err instanceof CommandError) return this.#fail('refused', `${err.code}: ${err.message}`);
      if (err instanceof CommandTransportError && err.reason === 'timeout') {
        return this.#fail('timeout', err.message);
      }
      return this.#fail('unreachable', err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
      end();
    }
  }

  #fail(reason: string, message: string): Outcome {
    this.#errors.inc({ reason });
    this.#up.set(0);
    this.#proxyUp.set(0);
    this.#log.warn({ reason, message }, 'query_metrics failed');
    return { ok: false, reason, message };
  }

  // The first connect may fail (proxy not started yet); later ones are the
  // client's own reconnect loop, so we only dial again if it gave up.
  #connected(): Promise<CommandClient> {
    if (this.#client) return Promise.resolve(this.#client);
    if (this.#closed) return Promise.reject(new Error('connector closing'));
    this.#connecting ??= CommandClient.connect(this.opts.socketPath, {
      reconnect: { initialDelayMs: 50, maxDelayMs: 2_000 },
      timeoutMs: this.opts.timeoutMs,
    })
      .then((client) => {
        if (this.#closed) void client.close();
        else this.#client = client;
        return client;
      })
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', () => {});
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    try {
      switch (path) {
        case '/healthz':
          return send(res, 200, 'ok\n');
        case '/readyz':
          return this.ready ? send(res, 200, 'ready\n') : send(res, 503, 'not ready: last query failed\n');
        case '/connector-metrics':
          return send(res, 200, await this.registry.metrics(), this.registry.contentType);
        case '/metrics': {
          // The exporter answered: 200 even with the proxy away, so that Prometheus's
          // own `up` means "the exporter is scraped" and kakehi_proxy_up 0 says the rest.
          const outcome = await this.scrape();
          const own = await this.registry.metrics();
          const body = outcome.ok
            ? `${outcome.text}\n${own}`
            : `# proxy ${outcome.reason}: ${oneLine(outcome.message)}\n${own}`;
          return send(res, 200, body, this.registry.contentType);
        }
        default:
          return send(res, 404, 'not found; try /metrics\n');
      }
    } catch (err) {
      this.#log.error({ err }, 'request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    }
  }
}

class QueryTimeout extends Error {}

// The reason rides as an exposition comment: one line, and no way to end the comment early.
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 500);

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function parseConnectorArgs(argv: string[]): ConnectorOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      socket: { type: 'string', short: 's' },
      listen: { type: 'string' },
      'cache-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'max-backend-series': { type: 'string' },
      'per-backend': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const listen = values.listen ?? DEFAULT_LISTEN;
  const m = /^(.+):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen ${JSON.stringify(listen)}: expected HOST:PORT`);
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
  return {
    socketPath: values.socket ?? defaultSocketPath(process.env),
    host,
    port: int('--listen port', m[2] as string, 0, 65_535),
    cacheMs: int('--cache-ms', values['cache-ms'], 0, 3_600_000, DEFAULT_CACHE_MS),
    timeoutMs: int('--timeout-ms', values['timeout-ms'], 1, 600_000, DEFAULT_TIMEOUT_MS),
    maxBackendSeries: int(
      '--max-backend-series',
      values['max-backend-series'],
      0,
      1_000_000,
      DEFAULT_MAX_BACKEND_SERIES,
    ),
    perBackend: values['per-backend'] ?? false,
  };
}

function int(what: string, s: string | undefined, min: number, max: number, dflt?: number): number {
  if (s === undefined) return dflt as number;
  const n = /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`${what} ${JSON.stringify(s)}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

export async function runPrometheusConnector(argv: string[]): Promise<number> {
  let opts: ConnectorOptions | 'help';
  try {
    opts = parseConnectorArgs(argv);
  } catch (err) {
    process.stderr.write(`kakehi prometheus: ${(err as Error).message}\n\n${PROMETHEUS_HELP}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(PROMETHEUS_HELP);
    return 0;
  }
  const log = createLogger(process.env.KAKEHI_LOG_LEVEL ?? 'info', 'kakehi-prometheus');
  const connector = new PrometheusConnector(opts, log);
  try {
    await connector.listen();
  } catch (err) {
    log.error({ err }, 'cannot listen');
    return 1;
  }
  // Warm the cache so /readyz is meaningful before the first scrape.
  void connector.scrape();
  // Node's default for SIGHUP ends the process; a reload sent to every kakehi
  // unit must not stop the exporter. Its settings are flags only: say so.
  process.on('SIGHUP', () =>
    log.info('SIGHUP: nothing to reload (settings are flags; restart to change them)'),
  );
  return untilStopped(log, undefined, connector);
}
