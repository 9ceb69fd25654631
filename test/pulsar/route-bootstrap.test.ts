// The bootstrap's end, against the fake broker (fake-topic.ts): what a real
// broker does only now and then (a batch as the last entry, a reader reconnecting
// mid-read, a first read slow after a broker restart), made to happen every time.
// The view counts as read only up to the end asked for at the start; a view read
// short of it never deletes what the proxy holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PulsarClient } from '../../connectors/pulsar/client/index.js';
import { changeMessage } from '../../connectors/pulsar/format.js';
import { readView } from '../../connectors/pulsar/view-reader.js';
import { parseChanges } from '../../src/state/change.js';
import { eventually, withLogs } from '../helpers/connector-process.js';
import { type FakeMessage, FakeTopic } from './fake-topic.js';
import { heldFrom, startProxy, startRouteConnector } from './route-helpers.js';

const TOPIC = 'persistent://public/default/routes';
const fast = { backoffInitialMs: 20, backoffMaxMs: 100, operationTimeoutMs: 5_000, connectTimeoutMs: 5_000 };

function message(raw: unknown): FakeMessage {
  const r = parseChanges([raw], 'changes');
  if ('issues' in r) throw new Error(JSON.stringify(r.issues));
  return changeMessage(r.changes[0]!);
}
const cluster = (id: string) => message({ op: 'put_cluster', cluster: { id } });
const backend = (id: string, port: number) =>
  message({ op: 'put_backend', backend: { cluster: 'c0', id, address: `127.0.0.1:${port}` } });

async function readAll(topic: FakeTopic, receiverQueue = 100): Promise<{ end: string; keys: string[] }> {
  const client = new PulsarClient({ serviceUrl: topic.url, ...fast });
  const keys: string[] = [];
  try {
    const read = await readView(client, TOPIC, (m) => keys.push(m.key ?? ''), {
      idleMs: 10_000,
      receiverQueue,
      signal: new AbortController().signal,
    });
    return { end: read.end, keys };
  } finally {
    await client.close();
  }
}

describe('route bootstrap: read to the end asked for (fake broker)', () => {
  it('reads every message of the batch at the last id before it counts the view as read', async () => {
    const topic = await FakeTopic.start();
    const batch = [backend('b0', 10_000), backend('b1', 10_001), backend('b2', 10_002)];
    topic.entries.push([cluster('c0')], batch);
    const { end, keys } = await readAll(topic);
    assert.deepEqual(keys, ['cluster:c0', ...batch.map((m) => m.key)]);
    assert.equal(end, 'complete');
    await topic.close();
  });

  it('a reader that reconnects mid-read resumes after the last message it handed out: each message once, in order', async () => {
    const topic = await FakeTopic.start();
    for (let i = 0; i < 6; i++) topic.entries.push([cluster(`c${i}`)]);
    // Two permits at a time: the third entry goes out once the read is under way
    // (after the last id was asked), and the connection drops right after it.
    topic.dropAfter = 3;
    const { end, keys } = await readAll(topic, 2);
    assert.deepEqual(
      keys,
      Array.from({ length: 6 }, (_, i) => `cluster:c${i}`),
    );
    assert.equal(end, 'complete');
    assert.equal(topic.starts.length, 2, 'subscribed again after the drop');
    const resumedAt = topic.starts[1]?.entryId ?? -1n;
    assert.ok(BigInt.asIntN(64, resumedAt) >= 0n, 'resumed from a message id, not from the earliest');
    await topic.close();
  });

  it('a bootstrap whose first read stays silent past --bootstrap-idle-ms deletes nothing the proxy holds, and reads the view again', async () => {
    const topic = await FakeTopic.start();
    topic.entries.push([cluster('c0')], [cluster('c1')], [backend('b0', 10_000)]);
    const kakehi = await startProxy();
    const broker = { url: topic.url, token: 'unused-by-the-fake' };
    const idle = ['--bootstrap-idle-ms', '300'];
    try {
      const first = await startRouteConnector(broker, kakehi.socketPath, TOPIC, idle);
      await withLogs(first, () =>
        eventually(async () => assert.equal((await heldFrom(kakehi.socketPath)).length, 3), {
          timeoutMs: 20_000,
          what: 'the first connector to put the three objects',
        }),
      );
      await first.stop();

      // The restarted connector's reader gets nothing at first: a broker slow after its restart.
      topic.hold = true;
      const second = await startRouteConnector(broker, kakehi.socketPath, TOPIC, idle);
      try {
        const line = await withLogs(second, () =>
          eventually(
            () => {
              const l = second.logs.find((x) => x.msg === 'bootstrapped from the compacted view; following');
              assert.ok(l, 'bootstrapped');
              return l;
            },
            { timeoutMs: 20_000, what: 'the second bootstrap' },
          ),
        );
        assert.equal(line['objects'], 0, 'it read nothing');
        assert.equal((await heldFrom(kakehi.socketPath)).length, 3, 'nothing deleted');
        assert.deepEqual(line['incomplete'], [TOPIC]);
        assert.equal(line['deletes_withheld'], 3);
        const status = async () => JSON.parse((await second.get('/status')).text) as Record<string, unknown>;
        assert.equal((await status())['view_complete'], false);

        // Once the broker delivers, the next resync reads the view to its end.
        topic.release();
        await withLogs(second, () =>
          eventually(async () => assert.equal((await status())['view_complete'], true), {
            timeoutMs: 30_000,
            what: 'a resync that reads the view to its end',
          }),
        );
        assert.equal((await heldFrom(kakehi.socketPath)).length, 3);
      } finally {
        await second.stop();
      }
    } finally {
      await kakehi.stop();
      await topic.close();
    }
  });
});
