// Shared pieces of the Prometheus connector tests: a command-socket fake (the
// shared FakeCommandServer) that answers `query_metrics` with canned families
// and anything else with {}, `promtool check metrics`,
// and the connector run as its own process.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Family } from '../../connectors/prometheus/render.js';
import { FakeCommandServer } from './fake-command-server.js';

export const PROMTOOL = '/usr/bin/promtool';
export const PROMETHEUS = '/usr/bin/prometheus';

/** Fails with a message naming the fix, rather than skipping: CI installs the package. */
export function requireBinary(path: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} not found: install Debian's prometheus package (apt-get install -y prometheus)`);
  }
}

export type MetricsAnswer = (n: number) => { families: Family[] } | 'hang' | { error: string };

export class FakeMetricsServer {
  queries = 0;
  delayMs = 0;
  answer: MetricsAnswer;
  readonly #server: FakeCommandServer;

  constructor(answer: MetricsAnswer) {
    this.answer = answer;
    this.#server = new FakeCommandServer((req, reply) => {
      if (req.type !== 'query_metrics') return reply.ok({});
      const a = this.answer(++this.queries);
      if (a === 'hang') return;
      setTimeout(() => {
        if ('error' in a) reply.error('KKH_TEST', a.error);
        else reply.ok({ generation: 1, families: a.families });
      }, this.delayMs);
    });
  }

  get dir(): string {
    return this.#server.dir;
  }

  get path(): string {
    return this.#server.path;
  }

  listen(): Promise<void> {
    return this.#server.listen();
  }

  stop(): Promise<void> {
    return this.#server.stop();
  }

  close(): Promise<void> {
    return this.#server.close();
  }
}

/** Runs `promtool check metrics` on the text; returns its exit code and all it printed. */
export function promtoolCheck(text: string): { status: number | null; output: string } {
  requireBinary(PROMTOOL);
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

const ENTRY = resolve(import.meta.dirname, '..', '..', 'connectors', 'prometheus', 'main.js');

/** `runPrometheusConnector` in a child process; resolves with the port it logged. */
export function spawnConnector(args: string[]): Promise<{
  port: number;
  stop: () => Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
  stderr: () => string;
}> {
  const script = `import { runPrometheusConnector } from ${JSON.stringify(ENTRY)};
process.exitCode = await runPrometheusConnector(process.argv.slice(1));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = () =>
    new Promise<number | null>((r) => {
      if (child.exitCode !== null) return r(child.exitCode);
      child.once('exit', (code) => r(code));
      child.kill('SIGTERM');
    });
  return new Promise((resolvePort, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`connector did not log "listening": ${buf}`)), 10_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      buf += c;
      for (const line of buf.split('\n')) {
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'listening' && typeof j.port === 'number') {
            clearTimeout(timer);
            resolvePort({ port: j.port, stop, kill: (sig) => child.kill(sig), stderr: () => buf });
          }
        } catch {}
      }
      if (buf.length > 1_000_000) buf = buf.slice(-100_000);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`connector exited ${code}: ${buf}`));
    });
  });
}

/** Polls `fn` until it returns a value or the deadline passes (then throws with the last state). */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last error: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const SAMPLE_FAMILIES: Family[] = [
  {
    name: 'kakehi_http_requests_total',
    help: 'HTTP requests answered, by cluster, backend and status code.',
    type: 'counter',
    samples: [
      { labels: { cluster: 'api', backend: 'api-0', code: '200' }, value: 5 },
      { labels: { cluster: 'api', backend: 'api-1', code: '200' }, value: 2 },
      { labels: { cluster: 'we"ird\\clu\nster', backend: 'b-0', code: '503' }, value: 1 },
    ],
  },
  {
    name: 'kakehi_http_request_duration_seconds',
    help: 'Time from request head to response end.',
    type: 'histogram',
    samples: [
      { labels: { cluster: 'api' }, bounds: [0.005, 0.05, 0.5], counts: [3, 2, 1, 1], sum: 1.234, count: 7 },
      {
        labels: { cluster: 'we"ird\\clu\nster' },
        bounds: [0.005, 0.05, 0.5],
        counts: [0, 0, 0, 1],
        sum: 2,
        count: 1,
      },
    ],
  },
  {
    name: 'kakehi_connections_active',
    help: 'Client connections open now.',
    type: 'gauge',
    samples: [{ labels: {}, value: 3 }],
  },
];
