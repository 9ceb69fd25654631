import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { MessageId, type PulsarClient } from '../../connectors/pulsar/client/index.js';
import { newClient, text, uniqueTopic, waitFor } from './helpers.js';

describe('pulsar client against a real broker: produce and consume', () => {
  let client: PulsarClient;
  before(() => {
    client = newClient();
  });
  after(async () => {
    await client.close();
  });

  it('round-trips keyed messages with properties, in order, through an exclusive durable subscription', async () => {
    const topic = uniqueTopic('roundtrip');
    const consumer = await client.subscribe({ topic, subscription: 'sub', initialPosition: 'earliest' });
    const producer = await client.createProducer({ topic });
    const ids = [];
    for (let i = 0; i < 20; i++) {
      ids.push(await producer.send({ payload: `m${i}`, key: `k${i % 3}`, properties: { i: String(i) } }));
    }
    for (let i = 0; i < 20; i++) {
      const m = await consumer.receive(AbortSignal.timeout(30_000));
      assert.equal(text(m.payload), `m${i}`);
      assert.equal(m.key, `k${i % 3}`);
      assert.deepEqual(m.properties, { i: String(i) });
      assert.ok(m.id.equals(ids[i] as MessageId), `id ${m.id} vs ${ids[i]}`);
      assert.equal(m.producerName, producer.producerName);
      consumer.acknowledge(m);
    }
    await producer.close();
    await consumer.close();
  });

  it('leaves no abort listener behind on a signal passed to every receive', async () => {
    const topic = uniqueTopic('listeners');
    const reader = await client.createReader({ topic });
    const producer = await client.createProducer({ topic });
    const life = new AbortController();
    for (let i = 0; i < 30; i++) {
      const next = reader.readNext(life.signal);
      await producer.send({ payload: `m${i}` });
      assert.equal(text((await next).payload), `m${i}`);
    }
    assert.equal(getEventListeners(life.signal, 'abort').length, 0);
    await producer.close();
    await reader.close();
  });

  it('delivers batched and compressed messages (lz4, zlib, snappy) one by one', async () => {
    for (const compression of ['lz4', 'zlib', 'snappy'] as const) {
      const topic = uniqueTopic(`batch-${compression}`);
      const consumer = await client.subscribe({ topic, subscription: 's', initialPosition: 'earliest' });
      const producer = await client.createProducer({
        topic,
        compression,
        batching: { enabled: true, maxMessages: 50, maxDelayMs: 50 },
      });
      const body = 'x'.repeat(300);
      const sends = Array.from({ length: 120 }, (_, i) =>
        producer.send({ payload: `${i}:${body}`, key: `k${i}` }),
      );
      const ids = await Promise.all(sends);
      assert.ok(
        ids.some((id) => id.batchIndex > 0),
        'messages were batched',
      );
      for (let i = 0; i < 120; i++) {
        const m = await consumer.receive(AbortSignal.timeout(30_000));
        assert.equal(text(m.payload), `${i}:${body}`);
        assert.equal(m.key, `k${i}`);
        consumer.acknowledge(m);
      }
      await producer.close();
      await consumer.close();
    }
  });

  it('bounds the receive queue by receiverQueueSize (flow permits)', async () => {
    const topic = uniqueTopic('flow');
    const producer = await client.createProducer({ topic });
    for (let i = 0; i < 50; i++) await producer.send({ payload: `m${i}` });
    const consumer = await client.subscribe({
      topic,
      subscription: 's',
      initialPosition: 'earliest',
      receiverQueueSize: 10,
    });
    const first = await consumer.receive(AbortSignal.timeout(30_000));
    assert.equal(text(first.payload), 'm0');
    // Let the broker deliver all it may; it cannot exceed the permits granted.
    const last = await consumer.getLastMessageId();
    assert.ok(last.compare(first.id) > 0);
    assert.ok(consumer.queuedMessages <= 10, `queued ${consumer.queuedMessages}`);
    for (let i = 1; i < 50; i++) {
      assert.ok(consumer.queuedMessages <= 10, `queued ${consumer.queuedMessages}`);
      assert.equal(text((await consumer.receive(AbortSignal.timeout(30_000))).payload), `m${i}`);
    }
    await producer.close();
    await consumer.close();
  });

  it('redelivers unacked messages to a durable subscription; individual and cumulative acks persist', async () => {
    const topic = uniqueTopic('acks');
    const producer = await client.createProducer({ topic });
    for (let i = 0; i < 10; i++) await producer.send({ payload: `m${i}` });
    let c = await client.subscribe({ topic, subscription: 'durable', initialPosition: 'earliest' });
    const got = [];
    for (let i = 0; i < 10; i++) got.push(await c.receive(AbortSignal.timeout(30_000)));
    c.acknowledgeCumulative(got[4]!); // m0..m4
    c.acknowledge(got[6]!); // m6
    await c.close();
    c = await client.subscribe({ topic, subscription: 'durable', initialPosition: 'earliest' });
    const again = [];
    for (let i = 0; i < 4; i++) again.push(text((await c.receive(AbortSignal.timeout(30_000))).payload));
    assert.deepEqual(again, ['m5', 'm7', 'm8', 'm9']);
    await c.close();
    await producer.close();
  });

  it('seeks back to a message id and to earliest; reports the last message id', async () => {
    const topic = uniqueTopic('seek');
    const producer = await client.createProducer({ topic });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await producer.send({ payload: `m${i}` }));
    const c = await client.subscribe({ topic, subscription: 's', initialPosition: 'earliest' });
    for (let i = 0; i < 5; i++) c.acknowledge(await c.receive(AbortSignal.timeout(30_000)));
    const last = await c.getLastMessageId();
    assert.ok(last.equals(ids[4] as MessageId), `last ${last} vs ${ids[4]}`);
    await c.seek(ids[2] as MessageId);
    assert.equal(text((await c.receive(AbortSignal.timeout(30_000))).payload), 'm2');
    await c.seek(MessageId.earliest);
    assert.equal(text((await c.receive(AbortSignal.timeout(30_000))).payload), 'm0');
    await c.close();
    await producer.close();
  });

  it('reader starts at earliest, latest, or after a given message id', async () => {
    const topic = uniqueTopic('reader');
    const producer = await client.createProducer({ topic });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await producer.send({ payload: `m${i}` }));
    const r1 = await client.createReader({ topic, startMessageId: MessageId.earliest });
    assert.equal(text((await r1.readNext(AbortSignal.timeout(30_000))).payload), 'm0');
    const r2 = await client.createReader({ topic, startMessageId: ids[1] as MessageId });
    assert.equal(text((await r2.readNext(AbortSignal.timeout(30_000))).payload), 'm2');
    const r3 = await client.createReader({
      topic,
      startMessageId: ids[1] as MessageId,
      startMessageIdInclusive: true,
    });
    assert.equal(text((await r3.readNext(AbortSignal.timeout(30_000))).payload), 'm1');
    const r4 = await client.createReader({ topic, startMessageId: MessageId.latest });
    await producer.send({ payload: 'after' });
    assert.equal(text((await r4.readNext(AbortSignal.timeout(30_000))).payload), 'after');
    for (const r of [r1, r2, r3, r4]) await r.close();
    await producer.close();
  });

  it('failover subscription: one consumer is active; when it closes the other takes over', async () => {
    const topic = uniqueTopic('failover');
    const producer = await client.createProducer({ topic });
    const opts = {
      topic,
      subscription: 'fo',
      subscriptionType: 'failover' as const,
      initialPosition: 'earliest' as const,
    };
    const a = await client.subscribe({ ...opts, consumerName: 'a' });
    const b = await client.subscribe({ ...opts, consumerName: 'b' });
    // The broker settles the active consumer after its failover delay and tells both (ACTIVE_CONSUMER_CHANGE).
    const [active, standby] = await waitFor('one active consumer', () =>
      a.isActive === true && b.isActive === false
        ? [a, b]
        : b.isActive === true && a.isActive === false
          ? [b, a]
          : undefined,
    );
    await producer.send({ payload: 'one' });
    const m1 = await active.receive(AbortSignal.timeout(30_000));
    assert.equal(text(m1.payload), 'one');
    active.acknowledge(m1);
    await active.close();
    await waitFor('standby to become active', () => (standby.isActive === true ? true : undefined));
    await producer.send({ payload: 'two' });
    assert.equal(text((await standby.receive(AbortSignal.timeout(30_000))).payload), 'two');
    await standby.close();
    await producer.close();
  });

  it('partitioned metadata: lists partitions and refuses a producer on the partitioned parent', async () => {
    const { admin } = await import('./helpers.js');
    const topic = uniqueTopic('parts');
    await admin('PUT', `/${topic.replace('persistent://', 'persistent/')}/partitions`, 3);
    const parts = await client.getPartitions(topic);
    assert.deepEqual(
      parts,
      [0, 1, 2].map((i) => `${topic}-partition-${i}`),
    );
    await assert.rejects(client.createProducer({ topic }), { code: 'PULSAR_UNSUPPORTED' });
    const p = await client.createProducer({ topic: parts[1] as string });
    const c = await client.subscribe({
      topic: parts[1] as string,
      subscription: 's',
      initialPosition: 'earliest',
    });
    await p.send({ payload: 'p1' });
    assert.equal(text((await c.receive(AbortSignal.timeout(30_000))).payload), 'p1');
    await p.close();
    await c.close();
  });
});
