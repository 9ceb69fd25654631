// The Pulsar route connector, measured against a real broker and a real kakehi:
//   1. bootstrap: a compacted topic of 10,000 keys, from `kakehi pulsar` started
//      to /readyz answering 200 (the proxy holds all of it);
//   2. publish-to-live: one change sent by a producer until the proxy's
//      change_applied event for it, 1,000 times one after another (p50, p99).
// Run with `npm run bench:pulsar` (starts its own broker, unless PULSAR_URL,
// PULSAR_TOKEN and PULSAR_ADMIN_URL name one).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { PulsarClient, tokenAuth } from '../connectors/pulsar/client/index.js';
import { changeMessage } from '../connectors/pulsar/format.js';
import { CommandClient } from '../src/client/command-client.js';
import { type Change, parseChanges } from '../src/state/change.js';

const KEYS = Number(process.env.KEYS ?? 10_000);
const LATENCY_RUNS = Number(process.env.RUNS ?? 1_000);
// The connector's --batch-ms (its default is 20): how long a lone change waits for company.
const BATCH_MS = process.env.BATCH_MS;
const CLI = resolve(import.meta.dirname, '..', 'src', 'cli', 'main.js');

interface BrokerLike {
  env: Record<string, string>;
  start(): Promise<number>;
  destroy(): Promise<void>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function change(raw: unknown): Change {
  const r = parseChanges([raw], 'changes');
  if ('issues' in r) throw new Error(JSON.stringify(r.issues));
  return r.changes[0]!;
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main(): Promise<void> {
  let broker: BrokerLike | undefined;
  let env: Record<string, string>;
  if (process.env.PULSAR_URL && process.env.PULSAR_TOKEN && process.env.PULSAR_ADMIN_URL) {
    env = process.env as Record<string, string>;
  } else {
    const mod = (await import(
      resolve(import.meta.dirname, '..', '..', 'scripts', 'pulsar', 'broker.mjs')
    )) as {
      Broker: new () => BrokerLike;
    };
    broker = new mod.Broker();
    await broker.start();
    env = broker.env;
  }
  const url = env.PULSAR_URL!;
  const token = env.PULSAR_TOKEN!;
  const admin = env.PULSAR_ADMIN_URL!;
  const client = new PulsarClient({ serviceUrl: url, auth: tokenAuth(token) });
  const topic = `persistent://public/default/bench-routes-${Date.now()}`;
  const dir = mkdtempSync(join(tmpdir(), 'kakehi-pulsar-bench-'));
  const sock = join(dir, 'k.sock');
  writeFileSync(
    join(dir, 'c.yaml'),
    stringify({
      workers: 1,
      command_socket: sock,
      access_log: 'off',
      log_level: 'warn',
      listeners: [{ address: '127.0.0.1:0' }],
    }),
  );
  const kakehi = spawn(process.execPath, [CLI, 'run', '-c', join(dir, 'c.yaml')], { stdio: 'ignore' });
  let connector: ReturnType<typeof spawn> | undefined;
  try {
    // 100 clusters, then backends: KEYS keys in all, each published twice so compaction has work.
    const producer = await client.createProducer({ topic, batching: { enabled: true } });
    const keys: Change[] = [];
    for (let c = 0; c < 100; c++) keys.push(change({ op: 'put_cluster', cluster: { id: `c${c}` } }));
    for (let i = keys.length; i < KEYS; i++) {
      keys.push(
        change({
          op: 'put_backend',
          backend: { cluster: `c${i % 100}`, id: `b${i}`, address: `127.0.0.1:${1_024 + (i % 60_000)}` },
        }),
      );
    }
    for (const round of [0, 1]) {
      for (let i = 0; i < keys.length; i += 500) {
        await Promise.all(
          keys.slice(i, i + 500).map((k) => {
            const m = changeMessage(k);
            return producer.send(
              round === 0 ? { ...m, payload: m.payload.replace('127.0.0.1', '127.0.0.2') } : m,
            );
          }),
        );
      }
    }
    await producer.close();
    const path = topic.replace('persistent://', '/persistent/');
    const headers = { authorization: `Bearer ${token}` };
    await fetch(`${admin}/admin/v2${path}/compaction`, { method: 'PUT', headers });
    await until(
      'compaction',
      async () =>
        (await (await fetch(`${admin}/admin/v2${path}/compaction`, { headers })).text()).includes('SUCCESS'),
      120_000,
    );
    const proxy = CommandClient.open(sock);
    await proxy.whenConnected(AbortSignal.timeout(30_000));

    const listen = `127.0.0.1:${19_000 + Math.floor(Math.random() * 1_000)}`;
    const started = performance.now();
    connector = spawn(
      process.execPath,
      [
        CLI,
        'pulsar',
        '--service-url',
        url,
        '--token',
        token,
        '--topic',
        topic,
        '-s',
        sock,
        '--listen',
        listen,
        '--log-level',
        'warn',
      ],
      { stdio: 'inherit' },
    );
    await until('ready', async () => (await fetch(`http://${listen}/readyz`)).status === 200, 120_000);
    const bootstrapMs = performance.now() - started;

    const events = proxy.events();
    const latencies: number[] = [];
    const live = await client.createProducer({ topic });
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const c = change({
        op: 'put_backend',
        backend: { cluster: 'c0', id: 'moving', address: `127.0.0.1:${2_000 + i}` },
      });
      const t0 = performance.now();
      await live.send(changeMessage(c));
      for (;;) {
        const ev = await events.next();
        if (ev.done) throw new Error('event stream ended');
        if (ev.value.type === 'change_applied' && ev.value['source'] === 'pulsar') break;
      }
      latencies.push(performance.now() - t0);
    }
    await live.close();
    latencies.sort((a, b) => a - b);
    const report = {
      keys: KEYS,
      batch_ms: BATCH_MS ?? 'default (20)',
      bootstrap_to_ready_ms: Math.round(bootstrapMs),
      publish_to_live_ms: {
        runs: LATENCY_RUNS,
        p50: Number(percentile(latencies, 50).toFixed(2)),
        p99: Number(percentile(latencies, 99).toFixed(2)),
        max: Number(latencies.at(-1)!.toFixed(2)),
      },
    };
    console.log(JSON.stringify(report, null, 2));
    await events.return?.();
    await proxy.close();
  } finally {
    connector?.kill('SIGTERM');
    kakehi.kill('SIGTERM');
    await client.close();
    await broker?.destroy();
  }
}

await main();
