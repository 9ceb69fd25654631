// Protocol corner cases against an in-process fake broker (real sockets). The
// real-broker tests are the proof of interop; these pin behaviour a real broker
// does not produce on demand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCommand, encodePayloadCommand } from '../../connectors/pulsar/client/frame.js';
import { type ClientEvent, PulsarClient } from '../../connectors/pulsar/client/index.js';
import { CommandType } from '../../connectors/pulsar/client/pulsar-api.js';
import { FakeBroker } from './fake-broker.js';
import { text, waitFor } from './helpers.js';

function messageFrame(consumerId: bigint, entryId: bigint, body: string): Uint8Array {
  return encodePayloadCommand(
    {
      type: CommandType.MESSAGE,
      message: { consumer_id: consumerId, message_id: { ledgerId: 1n, entryId } },
    },
    { producer_name: 'fake', sequence_id: entryId, publish_time: 1n },
    new TextEncoder().encode(body),
  );
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

const fast = { backoffInitialMs: 20, backoffMaxMs: 100, operationTimeoutMs: 5_000, connectTimeoutMs: 5_000 };

describe('protocol corner cases (fake broker)', () => {
  it('keeps a MESSAGE that arrives in the same read as the SUCCESS for SUBSCRIBE', async () => {
    const broker = await FakeBroker.start((f, sock) => {
      const s = f.command.subscribe;
      if (!s) return false;
      sock.write(
        concat(
          encodeCommand({ type: CommandType.SUCCESS, success: { request_id: s.request_id } }),
          messageFrame(s.consumer_id, 0n, 'same read'),
        ),
      );
      return true;
    });
    const client = new PulsarClient({ serviceUrl: broker.url, ...fast });
    const c = await client.subscribe({ topic: 't', subscription: 's' });
    assert.equal(text((await c.receive(AbortSignal.timeout(5_000))).payload), 'same read');
    await client.close();
    await broker.close();
  });

  it('follows a lookup redirect to another broker, and stops after maxLookupRedirects', async () => {
    const target = await FakeBroker.start();
    const front = await FakeBroker.start();
    front.lookupTarget = () => ({ url: target.url, redirect: true });
    const client = new PulsarClient({ serviceUrl: front.url, ...fast });
    await client.subscribe({ topic: 't', subscription: 's' });
    assert.equal(target.count(CommandType.SUBSCRIBE), 1, 'subscribed on the redirected-to broker');
    assert.equal(front.count(CommandType.SUBSCRIBE), 0);
    await client.close();

    const loop = await FakeBroker.start();
    loop.lookupTarget = () => ({ url: loop.url, redirect: true });
    const c2 = new PulsarClient({ serviceUrl: loop.url, maxLookupRedirects: 3, ...fast });
    await assert.rejects(c2.subscribe({ topic: 't', subscription: 's' }), {
      code: 'PULSAR_TOO_MANY_REDIRECTS',
    });
    assert.equal(loop.count(CommandType.LOOKUP), 4, 'the first lookup plus 3 redirects');
    await c2.close();
    for (const b of [target, front, loop]) await b.close();
  });

  it('answers the broker PING, and drops a connection whose own PING goes unanswered, then reconnects', async () => {
    const broker = await FakeBroker.start();
    const client = new PulsarClient({ serviceUrl: broker.url, keepAliveIntervalMs: 100, ...fast });
    const events: ClientEvent[] = [];
    const stream = client.events();
    const collecting = (async () => {
      for await (const ev of stream) events.push(ev);
    })();
    await client.subscribe({ topic: 't', subscription: 's' });
    for (const s of broker.sockets) s.write(encodeCommand({ type: CommandType.PING, ping: {} }));
    await waitFor(
      'PONG from the client',
      () => (broker.count(CommandType.PONG) > 0 ? true : undefined),
      5_000,
    );
    await waitFor('client PING', () => (broker.count(CommandType.PING) > 0 ? true : undefined), 5_000);
    broker.answerPing = false;
    const dropped = await waitFor(
      'keepalive disconnect',
      () => events.find((e) => e.type === 'disconnected' && /keepalive/.test(e.error.message)),
      10_000,
    );
    assert.equal(
      dropped.type === 'disconnected' && (dropped.error as Error & { code?: string }).code,
      'PULSAR_TIMEOUT',
    );
    broker.answerPing = true;
    await waitFor(
      'resubscribed',
      () => (broker.count(CommandType.SUBSCRIBE) >= 2 ? true : undefined),
      10_000,
    );
    await waitFor('reconnected event', () => events.find((e) => e.type === 'reconnected'), 10_000);
    await client.close();
    await collecting;
    await broker.close();
  });

  it('never acks a message whose checksum fails: it reconnects and takes the redelivery', async () => {
    let subscribes = 0;
    const broker = await FakeBroker.start((f, sock) => {
      const s = f.command.subscribe;
      if (!s) return false;
      subscribes++;
      sock.write(encodeCommand({ type: CommandType.SUCCESS, success: { request_id: s.request_id } }));
      const frame = messageFrame(s.consumer_id, 7n, 'payload');
      if (subscribes === 1) frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0x01; // corrupt the first delivery
      sock.write(frame);
      return true;
    });
    const client = new PulsarClient({ serviceUrl: broker.url, ...fast });
    const c = await client.subscribe({ topic: 't', subscription: 's' });
    const m = await c.receive(AbortSignal.timeout(5_000));
    assert.equal(text(m.payload), 'payload');
    assert.equal(subscribes, 2, 'resubscribed after the corrupt frame');
    assert.equal(broker.count(CommandType.ACK), 0, 'nothing acked');
    c.acknowledge(m);
    await waitFor('ack', () => (broker.count(CommandType.ACK) === 1 ? true : undefined), 5_000);
    await client.close();
    await broker.close();
  });
});
