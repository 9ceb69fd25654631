// Apply latency of the control plane: request sent on the command socket to
// acknowledgement by every worker, for one change and for a 1,000-change
// transaction, with 10,000 frontends loaded and 2 workers. Run with
// `npm run build && node dist/bench/apply-latency.js`.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

const FRONTENDS = 10_000;
const SINGLE_RUNS = 500;
const BATCH_RUNS = 10;
const BATCH = 1_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

class Conn {
  private buf = '';
  private waiting = new Map<number, (f: { status: string; result?: unknown; error?: unknown }) => void>();
  private id = 0;
  constructor(private readonly s: Socket) {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString();
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const f = JSON.parse(this.buf.slice(0, nl)) as { id: number; status: string };
        this.buf = this.buf.slice(nl + 1);
        if (f.status === 'ok' || f.status === 'error') this.waiting.get(f.id)?.(f);
      }
    });
  }
  send(type: string, body: object): Promise<{ status: string; result?: unknown; error?: unknown }> {
    const id = ++this.id;
    return new Promise((res) => {
      this.waiting.set(id, res);
      this.s.write(`${JSON.stringify({ ...body, id, type })}\n`);
    });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kakehi-apply-'));
  const sock = join(dir, 'k.sock');
  const config = {
    workers: 2,
    command_socket: sock,
    access_log: 'off',
    log_level: 'warn',
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [{ id: 'app', backends: [{ id: 'b0', address: '127.0.0.1:9' }] }],
    frontends: Array.from({ length: FRONTENDS }, (_, i) => ({
      hostname: `host-${i}.example.com`,
      cluster: 'app',
    })),
  };
  writeFileSync(join(dir, 'c.yaml'), stringify(config));
  const cli = resolve(import.meta.dirname, '..', 'src', 'cli', 'main.js');
  const proc = spawn(process.execPath, [cli, 'run', '-c', join(dir, 'c.yaml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const t0 = performance.now();
  for (;;) {
    const up = await new Promise<boolean>((r) => {
      const s = connect(sock);
      s.on('connect', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (up) break;
    if (performance.now() - t0 > 60_000) throw new Error('kakehi did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(
    `kakehi with ${FRONTENDS} frontends and 2 workers ready in ${Math.round(performance.now() - t0)} ms`,
  );
  const s = connect(sock);
  await new Promise((r) => s.once('connect', r));
  const c = new Conn(s);
  const single: number[] = [];
  const live: number[] = [];
  for (let i = 0; i < SINGLE_RUNS; i++) {
    const body =
      i % 2 === 0
        ? { backend: { cluster: 'app', id: 'churn', address: `127.0.0.1:${10_000 + i}` } }
        : { cluster: 'app', backend: 'churn' };
    const t = performance.now();
    const f = await c.send(i % 2 === 0 ? 'add_backend' : 'remove_backend', body);
    single.push(performance.now() - t);
    if (f.status !== 'ok') throw new Error(JSON.stringify(f));
    live.push((f.result as { live_ms: number }).live_ms);
  }
  const batch: number[] = [];
  for (let r = 0; r < BATCH_RUNS; r++) {
    const changes = Array.from({ length: BATCH }, (_, i) =>
      r % 2 === 0
        ? { op: 'put_frontend', frontend: { hostname: `batch-${i}.example.com`, cluster: 'app' } }
        : { op: 'delete_frontend', frontend: { hostname: `batch-${i}.example.com` } },
    );
    const t = performance.now();
    const f = await c.send('transaction', { changes });
    batch.push(performance.now() - t);
    if (f.status !== 'ok') throw new Error(JSON.stringify(f).slice(0, 500));
  }
  s.destroy();
  proc.kill('SIGTERM');
  single.sort((a, b) => a - b);
  live.sort((a, b) => a - b);
  batch.sort((a, b) => a - b);
  const fmt = (x: number) => x.toFixed(2);
  console.table([
    {
      what: `one change (${SINGLE_RUNS} runs), round trip`,
      p50_ms: fmt(percentile(single, 50)),
      p99_ms: fmt(percentile(single, 99)),
      max_ms: fmt(single.at(-1)!),
    },
    {
      what: 'one change, live_ms reported by main',
      p50_ms: fmt(percentile(live, 50)),
      p99_ms: fmt(percentile(live, 99)),
      max_ms: fmt(live.at(-1)!),
    },
    {
      what: `${BATCH}-change transaction (${BATCH_RUNS} runs)`,
      p50_ms: fmt(percentile(batch, 50)),
      p99_ms: fmt(percentile(batch, 99)),
      max_ms: fmt(batch.at(-1)!),
    },
  ]);
}

await main();
