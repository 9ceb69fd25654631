// CommandClient against a fake command server on a real Unix socket: answers
// matched by id (also out of order), processing frames, typed errors, the
// connection failing under pending requests, timeouts, bounds, events, reconnect.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type ClientEvent,
  CommandClient,
  CommandError,
  CommandTransportError,
  reconnectDelayMs,
} from '../../src/client/command-client.js';
import { FakeCommandServer, type FakeHandler } from '../helpers/fake-command-server.js';

const servers: FakeCommandServer[] = [];
const clients: CommandClient[] = [];
after(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await s.close();
});

async function setup(handler?: FakeHandler, options: Parameters<typeof CommandClient.connect>[1] = {}) {
  const server = await FakeCommandServer.start(handler);
  servers.push(server);
  const client = await CommandClient.connect(server.path, { timeoutMs: 5_000, ...options });
  clients.push(client);
  return { server, client };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}

async function take(it: AsyncIterator<ClientEvent>, n: number): Promise<ClientEvent[]> {
  const out: ClientEvent[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('CommandClient requests', () => {
  it('resolves a request with the result carrying its id, and sends type and body', async () => {
    const { server, client } = await setup((req, r) => r.ok({ echo: req.type, body: req.body }));
    const result = await client.request('list_backends', { cluster: 'api' });
    assert.deepEqual(result, { echo: 'list_backends', body: { cluster: 'api' } });
    assert.equal(server.requests[0]!.type, 'list_backends');
  });

  it('matches interleaved answers to their requests by id', async () => {
    const held: (() => void)[] = [];
    const { client } = await setup((req, r) => {
      held.push(() => r.ok({ type: req.type }));
      // Answer only once both are in, the second first.
      if (held.length === 2) {
        held[1]!();
        held[0]!();
      }
    });
    const [a, b] = await Promise.all([client.request('status'), client.request('list_clusters')]);
    assert.deepEqual(a, { type: 'status' });
    assert.deepEqual(b, { type: 'list_clusters' });
  });

  it('hands processing frames to onProcessing, in order, before the result', async () => {
    const { client } = await setup((_req, r) => {
      r.processing('replacing worker 1');
      r.processing('replacing worker 2');
      r.ok({ upgraded: 2 });
    });
    const seen: string[] = [];
    const result = await client.request('upgrade', {}, { onProcessing: (m) => seen.push(m) });
    assert.deepEqual(seen, ['replacing worker 1', 'replacing worker 2']);
    assert.deepEqual(result, { upgraded: 2 });
  });

  it('rejects with a CommandError carrying the code, message and issues the proxy sent', async () => {
    const { client } = await setup((_req, r) =>
      r.error('KKH_CHANGE_INVALID', 'one change is invalid', [
        { path: 'changes[0].backend.address', reason: 'port missing' },
      ]),
    );
    const err = await rejection(client.request('add_backend', { backend: {} }));
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, 'KKH_CHANGE_INVALID');
    assert.equal(err.message, 'one change is invalid');
    assert.deepEqual(err.issues, [{ path: 'changes[0].backend.address', reason: 'port missing' }]);
    assert.equal(err.requestType, 'add_backend');
    // The connection stays usable after an error.
    assert.equal(client.connected, true);
  });

  it('rejects every pending request clearly when the server closes mid-request', async () => {
    const { server, client } = await setup(() => {});
    const a = rejection(client.request('reload'));
    const b = rejection(client.request('status'));
    await server.received(2);
    server.dropConnections();
    for (const [p, type] of [
      [a, 'reload'],
      [b, 'status'],
    ] as const) {
      const err = await p;
      assert.ok(err instanceof CommandTransportError);
      assert.equal(err.reason, 'disconnected');
      assert.equal(err.recoverable, true);
      assert.match(err.message, new RegExp(`${type} \\(id \\d+\\): the proxy closed the connection`));
    }
    const after = await rejection(client.request('status'));
    assert.ok(after instanceof CommandTransportError && after.reason === 'closed');
  });

  it('times out one request, ignores its late answer, and keeps the connection usable', async () => {
    let first = true;
    const { client } = await setup((_req, r) => {
      if (first) {
        first = false;
        setTimeout(() => r.ok({ late: true }), 150);
      } else r.ok({ fresh: true });
    });
    const err = await rejection(client.request('status', {}, { timeoutMs: 50 }));
    assert.ok(err instanceof CommandTransportError && err.reason === 'timeout');
    assert.match(err.message, /no answer from the proxy in 50 ms/);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await client.request('status'), { fresh: true });
    assert.equal(client.pendingCount, 0);
  });

  it('refuses a request past maxPending without sending it', async () => {
    const { server, client } = await setup(() => {}, { maxPending: 2, timeoutMs: 1_000 });
    const pending = [rejection(client.request('status')), rejection(client.request('status'))];
    const err = await rejection(client.request('status'));
    assert.ok(err instanceof CommandTransportError && err.reason === 'overloaded');
    await server.received(2);
    assert.equal(server.requests.length, 2);
    await client.close();
    for (const e of await Promise.all(pending)) assert.ok(e instanceof CommandTransportError);
  });

  it('refuses a request over the frame limit instead of getting the connection closed', async () => {
    const { server, client } = await setup(undefined, { maxFrameBytes: 1024 });
    const err = await rejection(client.request('transaction', { changes: ['x'.repeat(2000)] }));
    assert.ok(err instanceof CommandTransportError && err.reason === 'overloaded');
    assert.deepEqual(await client.request('status'), {});
    assert.equal(server.requests.length, 1);
  });

  it('drops the connection on a response that is not the protocol, failing what is pending', async () => {
    // A raw socket, not the fake: the real CommandServer never writes a broken
    // response line, and sending one is the point of this test.
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-raw-'));
    const raw = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end('this is not json\n'));
    });
    await new Promise<void>((r) => raw.listen(join(dir, 'kakehi.sock'), () => r()));
    after(async () => {
      await new Promise<void>((r) => raw.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    });
    const client = await CommandClient.connect(join(dir, 'kakehi.sock'), { timeoutMs: 5_000 });
    clients.push(client);
    const err = await rejection(client.request('status'));
    assert.ok(err instanceof CommandTransportError && err.reason === 'protocol');
    assert.equal(err.recoverable, false);
  });

  it('drops the connection on a response over its frame limit', async () => {
    const { client } = await setup((_req, r) => r.ok({ pad: 'p'.repeat(4096) }), { maxFrameBytes: 1024 });
    const err = await rejection(client.request('get_state'));
    assert.ok(err instanceof CommandTransportError && err.reason === 'protocol');
    assert.match(err.message, /over the 1024-byte frame limit/);
  });

  it('rejects pending requests with reason closed on close()', async () => {
    const { server, client } = await setup(() => {});
    const p = rejection(client.request('status'));
    await server.received(1);
    await client.close();
    const err = await p;
    assert.ok(err instanceof CommandTransportError && err.reason === 'closed');
  });
});

describe('CommandClient connect', () => {
  it('fails with reason unreachable naming the path when there is no socket', async () => {
    const path = join(servers[0]?.dir ?? '/tmp', 'nobody-here.sock');
    const err = await rejection(CommandClient.connect(path, { timeoutMs: 1_000 }));
    assert.ok(err instanceof CommandTransportError && err.reason === 'unreachable');
    assert.ok(err.message.includes(path));
    assert.match(err.message, /no command socket/);
  });

  it('fails with reason unreachable when the path is not a listening socket', async () => {
    const server = await FakeCommandServer.start();
    servers.push(server);
    const file = join(server.dir, 'plain-file');
    writeFileSync(file, '');
    const err = await rejection(CommandClient.connect(file, { timeoutMs: 1_000 }));
    assert.ok(err instanceof CommandTransportError && err.reason === 'unreachable');
  });
});

describe('CommandClient events', () => {
  it('subscribes on first use and yields typed events, unknown types as other', async () => {
    const { server, client } = await setup((req, r) => {
      if (req.type !== 'subscribe_events') return r.ok({});
      r.ok({ subscribed: true });
      r.event({ type: 'change_applied', generation: 4 });
      r.event({ type: 'backend_down', cluster: 'api', backend: 'b1' });
      r.event({ type: 'certificate_expiring', fingerprint: 'ab' });
    });
    const it = client.events();
    const got = await take(it, 3);
    assert.deepEqual(got, [
      { type: 'change_applied', generation: 4 },
      { type: 'backend_down', cluster: 'api', backend: 'b1' },
      {
        type: 'other',
        name: 'certificate_expiring',
        event: { type: 'certificate_expiring', fingerprint: 'ab' },
      },
    ]);
    assert.equal(server.requests.filter((r) => r.type === 'subscribe_events').length, 1);
    // Requests still work alongside the subscription.
    assert.deepEqual(await client.request('status'), {});
    await it.return?.();
  });

  it('yields disconnected (no reconnect) and ends when the server closes, without reconnect', async () => {
    const { server, client } = await setup((req, r) => {
      if (req.type === 'subscribe_events') r.event({ type: 'backend_up', cluster: 'a', backend: 'b' });
    });
    const it = client.events();
    assert.deepEqual(await take(it, 1), [{ type: 'backend_up', cluster: 'a', backend: 'b' }]);
    server.dropConnections();
    const rest = await take(it, 5);
    assert.deepEqual(rest, [
      { type: 'disconnected', reason: 'the proxy closed the connection', willReconnect: false },
    ]);
  });

  it('counts events dropped past maxBufferedEvents, keeping the newest', async () => {
    const { server, client } = await setup(
      (req, r) => {
        if (req.type !== 'subscribe_events') return;
        for (let g = 1; g <= 10; g++) r.event({ type: 'change_applied', generation: g });
        r.ok({ subscribed: true });
      },
      { maxBufferedEvents: 3 },
    );
    const it = client.events();
    await server.received(1);
    await new Promise((r) => setTimeout(r, 100));
    const got = await take(it, 4);
    assert.deepEqual(got, [
      { type: 'events_dropped', count: 7 },
      { type: 'change_applied', generation: 8 },
      { type: 'change_applied', generation: 9 },
      { type: 'change_applied', generation: 10 },
    ]);
    await it.return?.();
  });

  it('ends the iterator with the CommandError when the proxy refuses the subscription', async () => {
    const { client } = await setup((_req, r) => r.error('KKH_REQUEST_UNKNOWN_TYPE', 'no events here'));
    const it = client.events();
    const err = await rejection(it.next());
    assert.ok(err instanceof CommandError && err.code === 'KKH_REQUEST_UNKNOWN_TYPE');
  });
});

describe('CommandClient reconnect', () => {
  it('waits exponentially longer between attempts, capped, less up to the jitter share', () => {
    const r = { initialDelayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0.5, maxAttempts: 10 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => reconnectDelayMs(n, r, 0)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
    assert.equal(reconnectDelayMs(3, r, 1), 200);
    assert.equal(reconnectDelayMs(3, r, 0.5), 300);
    assert.equal(reconnectDelayMs(1, { ...r, jitter: 1 }, 1), 0);
  });

  it('wakes every concurrent next() call on the same iterator', async () => {
    const { server, client } = await setup((req, r) => {
      if (req.type !== 'subscribe_events') return;
      setTimeout(() => {
        r.event({ type: 'backend_up', n: 1 });
        r.event({ type: 'backend_up', n: 2 });
      }, 30);
    });
    const it = client.events();
    const [a, b] = await Promise.all([it.next(), it.next()]);
    assert.deepEqual(
      [a.value, b.value],
      [
        { type: 'backend_up', n: 1 },
        { type: 'backend_up', n: 2 },
      ],
    );
    assert.equal(server.requests.length, 1);
    await it.return?.();
  });

  it('reconnects after a dropped connection, resubscribes, and serves requests again', async () => {
    const { server, client } = await setup(
      (req, r) => {
        if (req.type === 'subscribe_events') {
          r.ok({ subscribed: true });
          r.event({ type: 'change_applied', generation: server.requests.length });
        } else r.ok({ n: server.requests.length });
      },
      { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } },
    );
    const it = client.events();
    assert.deepEqual(await take(it, 1), [{ type: 'change_applied', generation: 1 }]);
    server.dropConnections();
    const got = await take(it, 3);
    assert.deepEqual(got, [
      { type: 'disconnected', reason: 'the proxy closed the connection', willReconnect: true },
      { type: 'reconnected', attempts: 1 },
      { type: 'change_applied', generation: 2 },
    ]);
    assert.equal(server.requests.filter((r) => r.type === 'subscribe_events').length, 2);
    assert.deepEqual(await client.request('status'), { n: 3 });
    await it.return?.();
  });

  it('keeps retrying with backoff while the proxy is down, and reconnects when it is back', async () => {
    const { server, client } = await setup((_req, r) => r.ok({ back: true }), {
      reconnect: { initialDelayMs: 20, maxDelayMs: 40, jitter: 0.5 },
      random: () => 0.5,
    });
    const it = client.events();
    await server.received(1); // the subscription
    await server.stop();
    const [down] = await take(it, 1);
    assert.deepEqual(down, {
      type: 'disconnected',
      reason: 'the proxy closed the connection',
      willReconnect: true,
    });
    // While down, requests fail at once and say why.
    const err = await rejection(client.request('status'));
    assert.ok(err instanceof CommandTransportError && err.reason === 'disconnected' && err.recoverable);
    await new Promise((r) => setTimeout(r, 150)); // several attempts fail meanwhile
    await server.listen();
    const [up] = await take(it, 1);
    assert.equal(up?.type, 'reconnected');
    assert.ok(up?.type === 'reconnected' && up.attempts > 1, `attempts ${JSON.stringify(up)}`);
    assert.deepEqual(await client.request('status'), { back: true });
    await it.return?.();
  });

  it('gives up after maxAttempts and ends the iterator', async () => {
    const { server, client } = await setup(undefined, {
      reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 2 },
    });
    const it = client.events();
    await server.received(1);
    await server.stop();
    const got = await take(it, 5);
    assert.deepEqual(
      got.map((e) => e.type),
      ['disconnected', 'disconnected'],
    );
    assert.deepEqual(got[1], {
      type: 'disconnected',
      reason: 'gave up after 2 reconnect attempts',
      willReconnect: false,
    });
    const err = await rejection(client.request('status'));
    assert.ok(err instanceof CommandTransportError && err.reason === 'closed');
  });
});
