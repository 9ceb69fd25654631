// Failure tests on a broker of their own (so the shared one stays up): a broker
// restart mid-stream, and producing while the broker is down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MessageId, PulsarClient, tokenAuth } from '../../connectors/pulsar/client/index.js';
import { text, uniqueTopic } from './helpers.js';

interface BrokerHandle {
  start(): Promise<number>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
  env: Record<string, string>;
}

async function newBroker(extraConf: string[]): Promise<BrokerHandle> {
  // dist/test/pulsar → repository root
  const mod = (await import(new URL('../../../scripts/pulsar/broker.mjs', import.meta.url).href)) as {
    Broker: new (opts: { extraConf: string[] }) => BrokerHandle;
  };
  return new mod.Broker({ extraConf });
}

describe('broker failures (dedicated broker)', () => {
  let broker: BrokerHandle;
  let client: PulsarClient;
  before(async () => {
    broker = await newBroker(['brokerDeduplicationEnabled=true']);
    await broker.start();
    client = new PulsarClient({
      serviceUrl: broker.env.PULSAR_URL as string,
      auth: tokenAuth(broker.env.PULSAR_TOKEN as string),
      backoffInitialMs: 100,
      backoffMaxMs: 1_000,
      operationTimeoutMs: 15_000,
    });
  });
  after(async () => {
    await client?.close();
    await broker?.destroy();
  });

  it('a broker restart mid-stream loses nothing: pending sends are resent in order, once; consumer and reader resume', async () => {
    const topic = uniqueTopic('restart');
    const producer = await client.createProducer({ topic, sendTimeoutMs: 180_000 });
    const consumer = await client.subscribe({ topic, subscription: 's', initialPosition: 'earliest' });
    for (let i = 0; i < 30; i++) await producer.send({ payload: `m${i}` });
    for (let i = 0; i < 15; i++) {
      const m = await consumer.receive(AbortSignal.timeout(30_000));
      assert.equal(text(m.payload), `m${i}`);
      consumer.acknowledge(m);
    }
    // A non-durable reader (the route connector's path) mid-stream too.
    const follower = await client.createReader({ topic, receiverQueueSize: 5 });
    for (let i = 0; i < 20; i++)
      assert.equal(text((await follower.readNext(AbortSignal.timeout(30_000))).payload), `m${i}`);
    const events = client.events();
    await broker.stop();
    const whileDown = Array.from({ length: 10 }, (_, i) => producer.send({ payload: `m${30 + i}` }));
    assert.equal(producer.pendingMessages, 10);
    await broker.start();
    const ids = await Promise.all(whileDown);
    for (let i = 1; i < ids.length; i++)
      assert.ok((ids[i] as MessageId).compare(ids[i - 1] as MessageId) > 0);

    // At-least-once: every message from m15 on arrives, first occurrences in order. m0..m14 may come
    // again: the broker persists acks asynchronously, so a restart can lose some (never a message).
    const firstSeen: number[] = [];
    while (firstSeen.filter((n) => n >= 15).length < 25) {
      const m = await consumer.receive(AbortSignal.timeout(60_000));
      const n = Number(text(m.payload).slice(1));
      if (!firstSeen.includes(n)) firstSeen.push(n);
      consumer.acknowledge(m);
    }
    assert.deepEqual(
      firstSeen.filter((n) => n >= 15),
      Array.from({ length: 25 }, (_, i) => 15 + i),
    );
    const redelivered = firstSeen.filter((n) => n < 15);
    assert.deepEqual(
      redelivered,
      [...redelivered].sort((a, b) => a - b),
      'redelivered acked messages come in order',
    );

    // The reader resumes after the last message it handed out: no gap, no duplicate.
    for (let i = 20; i < 40; i++) {
      assert.equal(text((await follower.readNext(AbortSignal.timeout(60_000))).payload), `m${i}`);
    }
    await follower.close();

    // The topic holds every message exactly once, with strictly increasing sequence ids.
    const reader = await client.createReader({ topic, startMessageId: MessageId.earliest });
    const seqs: bigint[] = [];
    const payloads: string[] = [];
    for (let i = 0; i < 40; i++) {
      const m = await reader.readNext(AbortSignal.timeout(30_000));
      payloads.push(text(m.payload));
      seqs.push(m.sequenceId);
    }
    assert.deepEqual(
      payloads,
      Array.from({ length: 40 }, (_, i) => `m${i}`),
    );
    for (let i = 1; i < seqs.length; i++) assert.ok((seqs[i] as bigint) > (seqs[i - 1] as bigint));
    const last = await reader.getLastMessageId();
    assert.ok(last.equals((ids[9] as MessageId).entry()), `nothing after m39: last ${last}`);

    const seen = [];
    for (let ev = await events.next(); !ev.done; ev = await events.next()) {
      seen.push(ev.value.type);
      if (ev.value.type === 'reconnected' && seen.filter((t) => t === 'reconnected').length === 2) break;
    }
    assert.ok(seen.includes('disconnected') && seen.includes('reconnecting'), seen.join(','));
    await events.return?.();
    await reader.close();
    await producer.close();
    await consumer.close();
  });

  it('producing while the broker is down: pending bytes and count stay bounded, errors are immediate and clear', async () => {
    const topic = uniqueTopic('down');
    const producer = await client.createProducer({
      topic,
      maxPendingMessages: 50,
      maxPendingBytes: 20_000,
      sendTimeoutMs: 2_000,
    });
    await broker.stop();
    const payload = new Uint8Array(1_000);
    const all: { p: Promise<MessageId>; state: 'pending' | 'ok' | 'err'; err?: Error }[] = [];
    for (let i = 0; i < 5_000; i++) {
      const entry = {
        p: producer.send({ payload }),
        state: 'pending' as 'pending' | 'ok' | 'err',
        err: undefined as Error | undefined,
      };
      entry.p.then(
        () => {
          entry.state = 'ok';
        },
        (e: Error) => {
          entry.state = 'err';
          entry.err = e;
        },
      );
      all.push(entry);
      assert.ok(producer.pendingBytes <= 20_000, `pending bytes ${producer.pendingBytes}`);
      assert.ok(producer.pendingMessages <= 50, `pending messages ${producer.pendingMessages}`);
    }
    // Refusals are immediate: settled before the next macrotask.
    await new Promise((r) => setImmediate(r));
    const accepted = all.filter((e) => e.state === 'pending').map((e) => e.p);
    const rejected = all.filter((e) => e.state === 'err').map((e) => e.err as Error);
    assert.equal(accepted.length, 20, 'the byte cap admits 20 messages of 1000 bytes');
    assert.equal(rejected.length, 4_980);
    for (const e of rejected) {
      assert.equal((e as Error & { code: string }).code, 'PULSAR_QUEUE_FULL');
      assert.match(e.message, /20000 bytes pending \(max 20000\); broker unreachable/);
    }
    const outcomes = await Promise.allSettled(accepted);
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      const err = (o as PromiseRejectedResult).reason as Error & { code: string };
      assert.equal(err.code, 'PULSAR_SEND_TIMEOUT');
      assert.match(err.message, /not confirmed within 2000 ms \(broker unreachable\)/);
    }
    assert.equal(producer.pendingMessages, 0);
    assert.equal(producer.pendingBytes, 0);

    // A new producer cannot even be created: the error names the refused address.
    await assert.rejects(
      client.createProducer({ topic: uniqueTopic('down2') }),
      (err: Error & { code: string }) => {
        assert.equal(err.code, 'PULSAR_CONNECT_FAILED');
        assert.match(err.message, /ECONNREFUSED/);
        return true;
      },
    );
    await producer.close();
  });
});
