// Convergence and failure on a broker of its own (so it can be stopped): three
// kakehi instances, each with its own `kakehi pulsar`, end with identical state
// after 1,000 changes with the broker restarted mid-stream and one connector
// down for part of it; and with the broker down for 60 s while a producer keeps
// pushing, the connector's memory stays bounded and no update is lost.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  type OutgoingMessage,
  type Producer,
  PulsarClient,
  tokenAuth,
} from '../../connectors/pulsar/client/index.js';
import { changeMessage, objectKey } from '../../connectors/pulsar/format.js';
import { type Change, parseChanges } from '../../src/state/change.js';
import { type ConnectorProcess, eventually, withLogs } from '../helpers/connector-process.js';
import type { Kakehi } from '../helpers/kakehi-process.js';
import { INFINITE_RETENTION, trimTopic, uniqueTopic } from './helpers.js';
import { heldFrom, sample, startProxy, startRouteConnector } from './route-helpers.js';

interface BrokerHandle {
  start(): Promise<number>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
  env: Record<string, string>;
}

async function newBroker(): Promise<BrokerHandle> {
  const mod = (await import(new URL('../../../scripts/pulsar/broker.mjs', import.meta.url).href)) as {
    Broker: new (opts: { extraConf: string[] }) => BrokerHandle;
  };
  return new mod.Broker({ extraConf: INFINITE_RETENTION });
}

function one(raw: unknown): Change {
  const r = parseChanges([raw], 'changes');
  if ('issues' in r) throw new Error(JSON.stringify(r.issues));
  return r.changes[0]!;
}

/**
 * The i-th of a stream of route updates (puts, delete ops and tombstones over a
 * fixed set of keys), and the model of what the topic then describes.
 */
function streamMessage(i: number, model: Map<string, Change>): OutgoingMessage {
  const cluster = `c${i % 20}`;
  let change: Change;
  if (i < 20) change = one({ op: 'put_cluster', cluster: { id: `c${i}` } });
  else {
    switch (i % 10) {
      case 8:
        change = one({ op: 'delete_backend', cluster, id: `b${(i + 7) % 50}` });
        break;
      case 9: {
        const key = `frontend:*;h${(i + 3) % 100}.test;prefix:/;*`;
        model.delete(key);
        return { key, payload: '', nullValue: true };
      }
      case 6:
      case 7:
        change = one({ op: 'put_frontend', frontend: { hostname: `h${i % 100}.test`, cluster } });
        break;
      default:
        change = one({
          op: 'put_backend',
          backend: { cluster, id: `b${i % 50}`, address: `127.0.0.1:${10_000 + i}` },
        });
    }
  }
  const key = objectKey(change);
  if (change.op.startsWith('delete_')) model.delete(key);
  else model.set(key, change);
  return changeMessage(change);
}

/** The objects as comparable text: sorted keys at every level, the source left out. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([k, v]) => k !== 'source' && v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
const objectsOf = (held: string[]) => held.map((l) => canonical(JSON.parse(l))).sort();
const modelObjects = (model: Map<string, Change>) => [...model.values()].map(canonical).sort();

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('pulsar route connector: convergence and failures (dedicated broker)', () => {
  let broker: BrokerHandle;
  let client: PulsarClient;
  const cleanup: (() => Promise<unknown>)[] = [];
  const coords = () => ({ url: broker.env.PULSAR_URL as string, token: broker.env.PULSAR_TOKEN as string });

  before(async () => {
    broker = await newBroker();
    await broker.start();
    client = new PulsarClient({
      serviceUrl: coords().url,
      auth: tokenAuth(coords().token),
      backoffInitialMs: 100,
      backoffMaxMs: 1_000,
      operationTimeoutMs: 15_000,
    });
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await client?.close();
    await broker?.destroy();
  });

  async function instance(topic: string): Promise<{ kakehi: Kakehi; conn: ConnectorProcess }> {
    const kakehi = await startProxy();
    cleanup.push(() => kakehi.stop());
    const conn = await startRouteConnector(coords(), kakehi.socketPath, topic, [
      '--receiver-queue',
      '100',
      '--batch-max',
      '100',
    ]);
    cleanup.push(() => conn.stop());
    return { kakehi, conn };
  }

  async function sendAll(producer: Producer, messages: OutgoingMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 200)
      await Promise.all(messages.slice(i, i + 200).map((m) => producer.send(m)));
  }

  it('three instances converge to identical state after 1,000 changes, across a broker restart and a connector that was down', async () => {
    const topic = uniqueTopic('converge');
    const model = new Map<string, Change>();
    const messages = Array.from({ length: 1_000 }, (_, i) => streamMessage(i, model));
    const instances = [await instance(topic), await instance(topic), await instance(topic)];
    const [, , third] = instances as [unknown, unknown, { kakehi: Kakehi; conn: ConnectorProcess }];
    const producer = await client.createProducer({ topic, sendTimeoutMs: 180_000 });
    cleanup.push(() => producer.close());

    await sendAll(producer, messages.slice(0, 400));
    // The third connector goes away while changes (deletes among them) flow.
    await third.conn.stop();
    const middle = sendAll(producer, messages.slice(400, 700));
    await broker.stop();
    await broker.start();
    await middle;
    await sendAll(producer, messages.slice(700));
    // What the broker's retention check does every 120 s (the restart closed the
    // topic's first ledger): done now, so that a restarted connector always meets it.
    await trimTopic(topic, broker);
    const back = await startRouteConnector(coords(), third.kakehi.socketPath, topic);
    cleanup.push(() => back.stop());
    instances[2] = { kakehi: third.kakehi, conn: back };

    // Every object with the last value published for it, not only the right keys.
    const expected = modelObjects(model);
    for (const [n, { kakehi, conn }] of instances.entries()) {
      await withLogs(conn, () =>
        eventually(async () => assert.deepEqual(objectsOf(await heldFrom(kakehi.socketPath)), expected), {
          timeoutMs: 120_000,
          intervalMs: 500,
          what: `instance ${n + 1} to hold what the topic describes`,
        }),
      );
    }
    const states = await Promise.all(instances.map(({ kakehi }) => heldFrom(kakehi.socketPath)));
    assert.deepEqual(states[1], states[0]);
    assert.deepEqual(states[2], states[0]);
    const m = await instances[0]!.conn.metrics();
    assert.ok(
      (sample(m, 'kakehi_pulsar_reconnects_total{peer="broker"}') ?? 0) >= 1,
      'the broker restart was seen',
    );
  });

  it('with the broker down 60 s and a producer pushing, the connector stays bounded and loses no update', async () => {
    const topic = uniqueTopic('outage');
    const { kakehi, conn } = await instance(topic);
    const model = new Map<string, Change>();
    const producer = await client.createProducer({ topic, sendTimeoutMs: 0, maxPendingMessages: 1_000 });
    cleanup.push(() => producer.close());
    let i = 0;
    await sendAll(
      producer,
      Array.from({ length: 200 }, () => streamMessage(i++, model)),
    );
    await eventually(async () => assert.equal((await heldFrom(kakehi.socketPath)).length, model.size), {
      timeoutMs: 60_000,
      what: 'the first 200 changes',
    });
    const before = rssBytes(conn.proc.pid!);
    await broker.stop();
    // A control plane that keeps trying: a send refused with a full queue is tried again later.
    const stop = AbortSignal.timeout(60_000);
    const pending: Promise<unknown>[] = [];
    let peak = before;
    let full = 0;
    while (!stop.aborted) {
      if (producer.pendingMessages >= 1_000) full++;
      else pending.push(producer.send(streamMessage(i++, model)));
      peak = Math.max(peak, rssBytes(conn.proc.pid!));
      await new Promise((r) => setTimeout(r, 20));
    }
    await broker.start();
    await Promise.all(pending);
    const expected = modelObjects(model);
    await withLogs(conn, () =>
      eventually(async () => assert.deepEqual(objectsOf(await heldFrom(kakehi.socketPath)), expected), {
        timeoutMs: 120_000,
        intervalMs: 500,
        what: 'every update published during the outage',
      }),
    );
    // Bounded: the connector holds no backlog of its own while the broker is away.
    assert.ok(peak - before < 64 * 1024 * 1024, `RSS grew from ${before} to ${peak} bytes`);
    process.stderr.write(
      `outage: connector RSS ${Math.round(before / 1048576)} MiB before, peak ${Math.round(peak / 1048576)} MiB during 60 s down; ${i - 200} changes pushed, ${full} sends refused (queue full)\n`,
    );
  });
});
