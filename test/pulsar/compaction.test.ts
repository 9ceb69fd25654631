import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type Message,
  MessageId,
  type PulsarClient,
  type Reader,
} from '../../connectors/pulsar/client/index.js';
import { admin, newClient, text, uniqueTopic, waitFor } from './helpers.js';

/** Reads until the reader has passed the topic's last message id. */
async function readToEnd(reader: Reader): Promise<Message[]> {
  const last = await reader.getLastMessageId();
  const out: Message[] = [];
  if (last.entryId === (1n << 64n) - 1n) return out; // empty topic
  for (;;) {
    const m = await reader.readNext(AbortSignal.timeout(30_000));
    out.push(m);
    if (
      m.id.entry().compare(last.entry()) >= 0 &&
      (m.id.batchIndex < 0 || m.id.batchIndex === m.id.batchSize - 1)
    ) {
      return out;
    }
  }
}

describe('compacted topic against a real broker', () => {
  let client: PulsarClient;
  before(() => {
    client = newClient();
  });
  after(async () => {
    await client.close();
  });

  for (const batching of [false, true]) {
    it(`read_compacted sees the latest value per key and tombstones delete (batching ${batching})`, async () => {
      const topic = uniqueTopic(`compact-${batching ? 'b' : 'n'}`);
      const path = `/${topic.replace('persistent://', 'persistent/')}`;
      const producer = await client.createProducer({
        topic,
        batching: { enabled: batching, maxMessages: 3, maxDelayMs: 1000 },
      });
      const sends = [
        producer.send({ key: 'a', payload: 'a1' }),
        producer.send({ key: 'b', payload: 'b1' }),
        producer.send({ key: 'c', payload: 'c1' }),
        producer.send({ key: 'a', payload: 'a2' }),
        producer.send({ key: 'b', payload: '', nullValue: true }),
        producer.send({ key: 'd', payload: 'd1' }),
      ];
      await Promise.all(sends);
      await admin('PUT', `${path}/compaction`);
      await waitFor('compaction to finish', async () => {
        const s = JSON.parse(await admin('GET', `${path}/compaction`)) as {
          status: string;
          lastError?: string;
        };
        if (s.status === 'ERROR') throw new Error(`compaction failed: ${s.lastError}`);
        return s.status === 'SUCCESS' ? true : undefined;
      });
      // After the compaction horizon, new writes are read raw: a later tombstone still deletes.
      await producer.send({ key: 'c', payload: '', nullValue: true });
      await producer.send({ key: 'e', payload: 'e1' });
      await producer.flush();

      const reader = await client.createReader({
        topic,
        startMessageId: MessageId.earliest,
        readCompacted: true,
      });
      const state = new Map<string, string>();
      const seen: string[] = [];
      for (const m of await readToEnd(reader)) {
        seen.push(`${m.key}=${text(m.payload)}${m.isTombstone ? '(x)' : ''}`);
        if (m.isTombstone) state.delete(m.key as string);
        else state.set(m.key as string, text(m.payload));
      }
      assert.deepEqual(Object.fromEntries(state), { a: 'a2', d: 'd1', e: 'e1' }, seen.join(' '));
      // Compaction dropped a1, b1 and b's tombstone: neither is ever surfaced.
      assert.ok(!seen.includes('a=a1') && !seen.includes('b=b1'), seen.join(' '));

      // Without read_compacted the full history is visible.
      const raw = await client.createReader({ topic, startMessageId: MessageId.earliest });
      const all = (await readToEnd(raw)).map((m) => text(m.payload));
      assert.deepEqual(all, ['a1', 'b1', 'c1', 'a2', '', 'd1', '', 'e1']);
      await reader.close();
      await raw.close();
      await producer.close();
    });
  }
});
