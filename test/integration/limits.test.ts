// Limits under real overload against a real kakehi: a listener's max_connections
// with connections held open, a backend's max_connections and its queue, a
// frontend's rate limit under a burst, the request body size limit, and hot
// changes of them (socket and SIGHUP) that drop no request in flight.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Family, ScalarSample } from '../../src/metrics/registry.js';
import { rawBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { ctl, ctlRow } from '../helpers/ctl-table.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

/**
 * A backend that holds every request whose path starts with /hold until the
 * test lets it go, and answers the others at once; it counts requests seen and
 * the most it held at once.
 */
async function holdingBackend() {
  const held: { req: IncomingMessage; res: ServerResponse }[] = [];
  const seen: string[] = [];
  /** Requests whose connection closed before their body ended. */
  const cut: string[] = [];
  let concurrent = 0;
  let most = 0;
  const waiters: (() => void)[] = [];
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    notify();
    concurrent++;
    most = Math.max(most, concurrent);
    res.on('close', () => {
      concurrent--;
      notify();
    });
    req.resume();
    req.on('close', () => {
      if (!req.complete) {
        cut.push(req.url ?? '');
        notify();
      }
    });
    req.on('end', () => {
      if (req.url?.startsWith('/hold')) {
        held.push({ req, res });
        notify();
      } else res.end(`answered ${req.url}`);
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const whenTrue = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      const test = () => (check() ? resolve() : waiters.push(test));
      test();
    });
  return {
    address: `127.0.0.1:${port}`,
    seen,
    cut,
    /** Resolves once `url` has been seen (its head arrived). */
    saw: (url: string) => whenTrue(() => seen.includes(url)),
    /** Resolves once `url`'s connection closed inside its body. */
    wasCut: (url: string) => whenTrue(() => cut.includes(url)),
    held,
    get most() {
      return most;
    },
    /** Resolves once `n` requests are held. */
    holding: (n: number) => whenTrue(() => held.length >= n),
    /** Answers the request held longest. */
    releaseOne() {
      const h = held.shift();
      h?.res.end(`finished ${h.req.url}`);
    },
    releaseAll() {
      for (const h of held.splice(0)) h.res.end(`finished ${h.req.url}`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const h of held.splice(0)) h.res.destroy();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A client connection sending one request and collecting what comes back. */
function openRequest(port: number, path: string, extra = '') {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let error: string | undefined;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: limits.test\r\n${extra}\r\n`));
  // Not events.once: it would reject on the reset a refused connection may see.
  const closed = new Promise<{ text: string; error: string | undefined }>((resolve) =>
    socket.on('close', () => resolve({ text, error })),
  );
  const answered = new Promise<string>((resolve) => {
    const check = () => {
      if (/\r\n\r\n/.test(text) && statusCodes(text).length > 0) {
        const m = /Content-Length: (\d+)/i.exec(text);
        const bodyStart = text.indexOf('\r\n\r\n') + 4;
        if (m === null || text.length - bodyStart >= Number(m[1])) {
          socket.off('data', check);
          resolve(text);
        }
      }
    };
    socket.on('data', check);
  });
  return { socket, closed, answered, text: () => text };
}

async function metricTotal(socketPath: string, name: string): Promise<number> {
  const r = (await ok(socketPath, 'query_metrics')) as unknown as { families: Family[] };
  const f = r.families.find((x) => x.name === name);
  return ((f?.samples ?? []) as ScalarSample[]).reduce((a, s) => a + s.value, 0);
}

function oneRoute(backend: string, over: { listener?: object; cluster?: object; frontend?: object } = {}) {
  return {
    listeners: [{ address: '127.0.0.1:0', ...over.listener }],
    clusters: [{ id: 'c', ...over.cluster, backends: [{ id: 'b', address: backend }] }],
    frontends: [{ hostname: '*', cluster: 'c', ...over.frontend }],
    access_log: 'off',
  };
}

describe('limits', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('listener max_connections 15 with 20 clients: the backend never sees more than 15, the 5 over it are closed unserved, and a new client is served once one leaves', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi(oneRoute(backend.address, { listener: { max_connections: 15 } }));
    cleanup.push(() => kakehi.stop());

    const first = Array.from({ length: 15 }, (_, i) => openRequest(kakehi.port, `/hold/${i}`));
    await backend.holding(15);
    const over = Array.from({ length: 5 }, (_, i) => openRequest(kakehi.port, `/hold/over-${i}`));
    const refused = await Promise.all(over.map((c) => c.closed));
    for (const r of refused) assert.equal(r.text, '', 'a connection over the limit gets no byte');
    assert.equal(backend.seen.length, 15);
    assert.equal(backend.most, 15);
    assert.equal(await metricTotal(kakehi.socketPath, 'kakehi_listener_connections_refused_total'), 5);

    // One client is answered and leaves; kakehi's close of it can't be seen from
    // here, so a new client tries until it is served (each refusal is immediate).
    backend.releaseOne();
    assert.deepEqual(statusCodes(await first[0]!.answered), [200]);
    first[0]!.socket.destroy();
    let next: Awaited<ReturnType<typeof httpGet>> | undefined;
    await until(async () => {
      next = await httpGet(kakehi.port, '/after').catch(() => undefined);
      return next !== undefined;
    });
    assert.equal(next?.status, 200);
    assert.equal(next?.body, 'answered /after');
    assert.equal(backend.most, 15);

    backend.releaseAll();
    const answers = await Promise.all(first.slice(1).map((c) => c.answered));
    assert.deepEqual(
      answers.map((t) => statusCodes(t)[0]),
      Array(14).fill(200),
    );
    assert.equal(backend.seen.length, 16, '15 held, then the one let in');
  });

  it('a tcp listener at max_connections closes a new connection unserved, and its backend never sees it', async () => {
    let connections = 0;
    const echo = await rawBackend((s) => {
      connections++;
      s.on('data', (c: Buffer) => s.write(c));
    });
    cleanup.push(() => echo.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'tcp', cluster: 'c', max_connections: 1 }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: echo.address }] }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const first = connect(kakehi.port, '127.0.0.1');
    first.write('hello');
    await once(first, 'data');
    const second = await rawExchange(kakehi.port, 'anyone there?').catch((e: Error) => ({
      text: '',
      closed: true,
      error: e.message,
    }));
    assert.equal(second.text, '');
    assert.equal(second.closed, true);
    assert.equal(connections, 1);
    assert.equal(await metricTotal(kakehi.socketPath, 'kakehi_listener_connections_refused_total'), 1);
    first.destroy();
  });

  it('backend max_connections 1 with a queue of 1: the 2nd request waits and is served, the 3rd gets 503 at once', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi(
      oneRoute(backend.address, { cluster: { queue_size: 1, queue_timeout_ms: 60_000 } }),
    );
    cleanup.push(() => kakehi.stop());
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        {
          op: 'put_backend',
          backend: { cluster: 'c', id: 'b', address: backend.address, max_connections: 1 },
        },
      ],
    });

    const a = openRequest(kakehi.port, '/hold/a');
    await backend.holding(1);
    const b = openRequest(kakehi.port, '/hold/b');
    // b waits in the queue (ctl backends shows it): then c finds the queue full.
    await until(async () => {
      const r = await ok(kakehi.socketPath, 'query_backends');
      return (r['backends'] as { queued: number }[])[0]?.queued === 1;
    });
    const c = await rawExchange(kakehi.port, 'GET /hold/c HTTP/1.1\r\nHost: limits.test\r\n\r\n', {
      doneWhen: (t) => t.includes('</html>'),
    });
    assert.deepEqual(statusCodes(c.text), [503]);
    assert.match(c.text, /at its max_connections \(1\) and its queue of 1 is full/);
    // What an operator sees: the limit and the queue, by backend and by cluster.
    const shown = await ctl(kakehi.socketPath, 'backends');
    assert.equal(shown.code, 0, shown.stderr);
    const row = ctlRow(shown.stdout, 'b');
    assert.equal(row['MAX_CONNECTIONS'], '1');
    assert.equal(row['QUEUED'], '1');
    const clusters = ctlRow((await ctl(kakehi.socketPath, 'clusters')).stdout, 'c', 0);
    assert.equal(clusters['QUEUE_SIZE'], '1');
    assert.equal(clusters['QUEUED'], '1');
    assert.deepEqual(backend.seen, ['/hold/a']);

    backend.releaseAll();
    assert.deepEqual(statusCodes(await a.answered), [200]);
    await backend.holding(1);
    assert.deepEqual(backend.seen, ['/hold/a', '/hold/b']);
    backend.releaseAll();
    assert.deepEqual(statusCodes(await b.answered), [200]);
    assert.equal(backend.most, 1);
    const refused = (await ok(kakehi.socketPath, 'query_metrics')) as unknown as { families: Family[] };
    const q = refused.families.find((f) => f.name === 'kakehi_backend_queue_refused_total');
    assert.deepEqual(
      ((q?.samples ?? []) as ScalarSample[]).map((s) => [s.labels, s.value]),
      [[{ cluster: 'c', backend: 'b', reason: 'queue_full' }, 1]],
    );
  });

  it('a request waiting past queue_timeout_ms gets 503 and never reaches the backend', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      ...oneRoute(backend.address, { cluster: { queue_size: 4, queue_timeout_ms: 200 } }),
      clusters: [
        {
          id: 'c',
          queue_size: 4,
          queue_timeout_ms: 200,
          backends: [{ id: 'b', address: backend.address, max_connections: 1 }],
        },
      ],
    });
    cleanup.push(() => kakehi.stop());
    const a = openRequest(kakehi.port, '/hold/a');
    await backend.holding(1);
    const b = await httpGet(kakehi.port, '/b');
    assert.equal(b.status, 503);
    assert.match(b.body, /stayed at its max_connections \(1\)/);
    assert.deepEqual(backend.seen, ['/hold/a']);
    backend.releaseAll();
    assert.deepEqual(statusCodes(await a.answered), [200]);
  });

  it('a burst over the rate gets 429 with Retry-After; another key is unaffected; the backend sees only what was admitted', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi(
      oneRoute(backend.address, {
        frontend: { rate_limit: { requests_per_second: 1, burst: 3, key: 'header:x-api-key' } },
      }),
    );
    cleanup.push(() => kakehi.stop());
    const burst = await Promise.all(
      Array.from({ length: 8 }, (_, i) => httpGet(kakehi.port, `/r${i}`, { 'x-api-key': 'k1' })),
    );
    const admitted = burst.filter((r) => r.status === 200);
    const limited = burst.filter((r) => r.status === 429);
    assert.equal(admitted.length + limited.length, 8);
    assert.ok(admitted.length >= 3, 'the burst is admitted');
    assert.ok(limited.length >= 1, 'past the burst, 429');
    for (const r of limited) assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    assert.equal(backend.seen.length, admitted.length);

    const other = await httpGet(kakehi.port, '/other', { 'x-api-key': 'k2' });
    assert.equal(other.status, 200);
    assert.ok(
      (await metricTotal(kakehi.socketPath, 'kakehi_rate_limited_total')) >= 1,
      'kakehi_rate_limited_total counts the 429s',
    );
  });

  it('a body over max_request_body_bytes gets 413, by Content-Length and chunked, and the backend never sees it', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      ...oneRoute(backend.address, { listener: { max_request_body_bytes: 100 } }),
      frontends: [
        { hostname: 'big.test', cluster: 'c', max_request_body_bytes: 1000 },
        { hostname: '*', cluster: 'c' },
      ],
    });
    cleanup.push(() => kakehi.stop());
    const post = (host: string, headers: string, body: string) =>
      rawExchange(kakehi.port, `POST /up HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n${body}`, {
        doneWhen: (t) => t.includes('</html>') || t.includes('answered'),
      });

    const byLength = await post('a.test', 'Content-Length: 101\r\n', 'x'.repeat(101));
    assert.deepEqual(statusCodes(byLength.text), [413]);
    assert.match(byLength.text, /Connection: close/);
    const chunk = (n: number) => `${n.toString(16)}\r\n${'y'.repeat(n)}\r\n`;
    const chunked = await post(
      'a.test',
      'Transfer-Encoding: chunked\r\n',
      `${chunk(80)}${chunk(80)}0\r\n\r\n`,
    );
    assert.deepEqual(statusCodes(chunked.text), [413]);
    assert.deepEqual(backend.seen, []);

    // At the limit, and under a frontend's own larger limit: forwarded.
    const atLimit = await post('a.test', 'Content-Length: 100\r\n', 'x'.repeat(100));
    assert.deepEqual(statusCodes(atLimit.text), [200]);
    const bigRoute = await post('big.test', 'Transfer-Encoding: chunked\r\n', `${chunk(500)}0\r\n\r\n`);
    assert.deepEqual(statusCodes(bigRoute.text), [200]);
    assert.deepEqual(backend.seen, ['/up', '/up']);
  });

  it('a chunked body passing the limit after its head went to the backend: 413 to the client, the backend exchange cut', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi(
      oneRoute(backend.address, { listener: { max_request_body_bytes: 100 } }),
    );
    cleanup.push(() => kakehi.stop());
    const chunk = (n: number) => `${n.toString(16)}\r\n${'z'.repeat(n)}\r\n`;
    const client = connect(kakehi.port, '127.0.0.1');
    let text = '';
    client.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.on('error', () => {});
    client.write(
      `POST /slow-body HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(60)}`,
    );
    await backend.saw('/slow-body');
    client.write(chunk(60));
    await closed;
    assert.deepEqual(statusCodes(text), [413]);
    assert.match(text, /larger than 100 bytes/);
    await backend.wasCut('/slow-body');
    assert.equal(await metricTotal(kakehi.socketPath, 'kakehi_request_body_too_large_total'), 1);
  });

  it('hot changes apply without dropping a request in flight: a higher backend max_connections lets the queued request in, a lower listener limit keeps open connections', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      ...oneRoute(backend.address, { listener: { max_connections: 10 } }),
      clusters: [{ id: 'c', backends: [{ id: 'b', address: backend.address, max_connections: 1 }] }],
    });
    cleanup.push(() => kakehi.stop());
    const a = openRequest(kakehi.port, '/hold/a');
    await backend.holding(1);
    const b = openRequest(kakehi.port, '/hold/b');
    await until(async () => {
      const r = await ok(kakehi.socketPath, 'query_backends');
      return (r['backends'] as { queued: number }[])[0]?.queued === 1;
    });
    const listener = { address: `127.0.0.1:0`, max_connections: 1 };
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        {
          op: 'put_backend',
          backend: { cluster: 'c', id: 'b', address: backend.address, max_connections: 2 },
        },
        { op: 'put_listener', listener },
      ],
    });
    // The queued request went to the backend while a is still held.
    await backend.holding(2);
    assert.deepEqual(backend.seen, ['/hold/a', '/hold/b']);
    // Two connections are open, over the new listener limit of 1: a third is refused, the two carry on.
    const third = await openRequest(kakehi.port, '/hold/c').closed;
    assert.equal(third.text, '');
    backend.releaseAll();
    assert.deepEqual(statusCodes(await a.answered), [200]);
    assert.deepEqual(statusCodes(await b.answered), [200]);
  });

  it('limits from the config file hold across a SIGHUP reload, and a reload that changes one applies it', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const config = (rps: number) =>
      oneRoute(backend.address, {
        listener: { max_connections: 1 },
        frontend: { rate_limit: { requests_per_second: rps, burst: rps } },
      });
    const kakehi = await startKakehi(config(1));
    cleanup.push(() => kakehi.stop());
    let reloads = 0;
    const reload = async (rps: number) => {
      writeFileSync(
        kakehi.configPath,
        stringify({ workers: 1, command_socket: kakehi.socketPath, ...config(rps) }),
      );
      kakehi.proc.kill('SIGHUP');
      reloads++;
      await kakehi.waitLog(
        () => kakehi.logs.filter((l) => l.msg === 'SIGHUP reload applied').length >= reloads,
      );
    };
    // a takes the one token and the one connection.
    const a = openRequest(kakehi.port, '/hold/a');
    await backend.holding(1);
    await reload(1);
    const over = await openRequest(kakehi.port, '/over').closed;
    assert.equal(over.text, '', 'after the reload a second connection is still over max_connections 1');
    backend.releaseAll();
    assert.deepEqual(statusCodes(await a.answered), [200]);
    a.socket.destroy();
    // Once a's connection is gone, the next request from this address finds its bucket still empty.
    const statusOf = () =>
      httpGet(kakehi.port, '/b').then(
        (r) => r.status,
        () => 0,
      );
    await until(async () => (await statusOf()) === 429);
    assert.deepEqual(backend.seen, ['/hold/a']);
    await reload(1000);
    assert.equal(await statusOf(), 200);
  });

  it('limits hold in the workers that replace the old ones on ctl upgrade', async () => {
    const backend = await holdingBackend();
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi(
      oneRoute(backend.address, {
        listener: { max_connections: 1 },
        frontend: { rate_limit: { requests_per_second: 1, burst: 1, key: 'header:x-api-key' } },
      }),
    );
    cleanup.push(() => kakehi.stop());
    const before = kakehi.workerPids();
    const r = await ok(kakehi.socketPath, 'upgrade');
    assert.equal(r['replaced'], 1);
    const a = openRequest(kakehi.port, '/hold/a');
    await backend.holding(1);
    assert.ok(!before.includes(kakehi.workerPids().at(-1)!), 'a new worker serves');
    const over = await openRequest(kakehi.port, '/over').closed;
    assert.equal(over.text, '', 'the new worker holds the listener to max_connections 1');
    backend.releaseAll();
    assert.deepEqual(statusCodes(await a.answered), [200]);
    a.socket.destroy();
    let first: Awaited<ReturnType<typeof httpGet>> | undefined;
    await until(async () => {
      first = await httpGet(kakehi.port, '/k', { 'x-api-key': 'k' }).catch(() => undefined);
      return first !== undefined;
    });
    assert.equal(first?.status, 200);
    assert.equal((await httpGet(kakehi.port, '/k', { 'x-api-key': 'k' })).status, 429);
  });
});

/** Polls a condition that only a query can tell (a socket command), without sleeping between tries longer than a turn. */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition never held');
}
