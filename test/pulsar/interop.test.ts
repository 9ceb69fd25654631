// Interop with an independent client, both ways: the official Python client
// (pulsar-client wheel, C++ inside) produces batched and compressed messages
// for us, and reads what we produce batched and compressed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { PulsarClient } from '../../connectors/pulsar/client/index.js';
import { env, newClient, text, uniqueTopic } from './helpers.js';

const run = promisify(execFile);
// dist/test/pulsar → the source script
const script = fileURLToPath(new URL('../../../test/pulsar/interop.py', import.meta.url));
const python = process.env.PYTHON ?? 'python3';

async function py(...args: string[]): Promise<string> {
  const { stdout } = await run(python, [script, args[0] as string, env.url, env.token, ...args.slice(1)], {
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

describe('interop with the Python (C++) client', () => {
  let client: PulsarClient;
  before(() => {
    client = newClient();
  });
  after(async () => {
    await client.close();
  });

  for (const codec of ['NONE', 'LZ4', 'ZLib', 'ZSTD', 'SNAPPY']) {
    it(`reads Python's batched ${codec} messages, keys, properties and tombstone`, async () => {
      const topic = uniqueTopic(`py2ts-${codec.toLowerCase()}`);
      await py('produce', topic, codec, '25');
      const reader = await client.createReader({ topic });
      for (let i = 0; i < 25; i++) {
        const m = await reader.readNext(AbortSignal.timeout(30_000));
        assert.equal(text(m.payload), `py${i}:${'z'.repeat(200)}`);
        assert.equal(m.key, `k${i}`);
        assert.deepEqual(m.properties, { i: String(i) });
        assert.ok(m.id.batchIndex >= 0, 'arrived in a batch');
        assert.equal(m.isTombstone, false);
      }
      const tomb = await reader.readNext(AbortSignal.timeout(30_000));
      assert.equal(tomb.key, 'tomb');
      assert.equal(tomb.payload.length, 0);
      assert.equal(tomb.isTombstone, true);
      await reader.close();
    });
  }

  for (const compression of ['none', 'lz4', 'zlib', 'snappy'] as const) {
    it(`Python reads our batched ${compression} messages with keys and properties`, async () => {
      const topic = uniqueTopic(`ts2py-${compression}`);
      const producer = await client.createProducer({
        topic,
        compression,
        batching: { enabled: true, maxMessages: 8, maxDelayMs: 20 },
      });
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          producer.send({ payload: `ts${i}:${'q'.repeat(150)}`, key: `k${i}`, properties: { n: String(i) } }),
        ),
      );
      await producer.close();
      const lines = (await py('consume', topic, '30')).trim().split('\n');
      assert.equal(lines.length, 30);
      lines.forEach((line, i) => {
        const got = JSON.parse(line) as { data: string; key: string; props: Record<string, string> };
        assert.deepEqual(got, { data: `ts${i}:${'q'.repeat(150)}`, key: `k${i}`, props: { n: String(i) } });
      });
    });
  }
});
