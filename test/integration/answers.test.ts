// Every answer kakehi writes on its own behalf, through a real process and real
// sockets: 400, 403, 404, 301/308, 408, 431, 502, 503, 504, and the close of a
// client whose backend cut its response. Each carries its request id (header
// and page), operator pages override per listener and per cluster, HEAD gets
// no body, and the connection stays open where it safely can.

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Backend, closedPort, echoBackend, rawBackend } from '../helpers/backends.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

function parseAnswer(text: string): Answer {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete head in:\n${text}`);
  const [start, ...lines] = text.slice(0, end).split('\r\n');
  const headers = new Map<string, string>();
  for (const l of lines) {
    const c = l.indexOf(':');
    headers.set(l.slice(0, c).toLowerCase(), l.slice(c + 1).trim());
  }
  return {
    status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(start ?? '')?.[1]),
    headers,
    body: text.slice(end + 4),
  };
}

/** Asserts the answer names one request id, the same in X-Request-Id and in its page. */
function requestIdOf(a: Answer): string {
  const id = a.headers.get('x-request-id');
  assert.ok(id !== undefined && id.length > 0, 'X-Request-Id is missing');
  assert.ok(a.body.includes(id), `page does not carry ${id}:\n${a.body}`);
  return id;
}

let kakehi: Kakehi;
let override: number; // listener with its own pages and short limits
let plain: number; // listener with the built-in pages
const backends: Backend[] = [];
let ok: Backend;
const accepts = { flaky: [0, 0, 0], flakyPost: [0, 0, 0] };

async function raw(onConnection: (s: Socket) => void): Promise<Backend> {
  const b = await rawBackend((s) => onConnection(s));
  backends.push(b);
  return b;
}

async function acceptThenClose(counts: number[], i: number): Promise<Backend> {
  return raw((s) => {
    counts[i]!++;
    s.destroy();
  });
}

before(async () => {
  ok = await echoBackend('ok');
  backends.push(ok);
  const reset = await raw((s) => s.once('data', () => s.resetAndDestroy()));
  const garbage = await raw((s) => s.once('data', () => s.end('HELLO WORLD\r\n\r\n')));
  const noAccept = await raw((s) =>
    s.once('data', () =>
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    ),
  );
  const silent = await raw(() => {});
  const truncated = await raw((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
      s.end();
    }),
  );
  const flaky = await Promise.all([0, 1, 2].map((i) => acceptThenClose(accepts.flaky, i)));
  const flakyPost = await Promise.all([0, 1, 2].map((i) => acceptThenClose(accepts.flakyPost, i)));
  const refused = await Promise.all([closedPort(), closedPort(), closedPort()]);
  // Two port-0 listeners would share one key; the second gets a free port of its own.
  const plainPort = await closedPort();

  const one = (id: string, b: Backend) => [{ id: `${id}-1`, address: b.address }];
  kakehi = await startKakehi({
    listeners: [
      {
        address: '127.0.0.1:0',
        request_head_timeout_ms: 300,
        max_header_bytes: 1024,
        answers: { '404': 'L404 %REQUEST_ID', '503': 'L503 %REQUEST_ID' },
      },
      { address: `127.0.0.1:${plainPort}` },
    ],
    clusters: [
      { id: 'ok', backends: one('ok', ok) },
      { id: 'empty' },
      { id: 'empty-own-page', answers: { '503': 'C503 %REQUEST_ID' } },
      {
        id: 'zero',
        load_balancing: 'random',
        backends: [
          { id: 'z1', address: ok.address, weight: 0 },
          { id: 'z2', address: ok.address, weight: 0 },
        ],
      },
      { id: 'reset', backends: one('reset', reset) },
      { id: 'garbage', backends: one('garbage', garbage) },
      { id: 'no-accept', backends: one('no-accept', noAccept) },
      { id: 'silent', backend_timeout_ms: 300, backends: one('silent', silent) },
      { id: 'truncated', backends: one('truncated', truncated) },
      {
        id: 'flaky',
        connect_attempts: 2,
        backends: flaky.map((b, i) => ({ id: `f${i}`, address: b.address })),
      },
      {
        id: 'flaky-post',
        connect_attempts: 2,
        backends: flakyPost.map((b, i) => ({ id: `p${i}`, address: b.address })),
      },
      {
        id: 'refused',
        connect_attempts: 2,
        backends: refused.map((port, i) => ({ id: `r${i}`, address: `127.0.0.1:${port}` })),
      },
    ],
    frontends: [
      { hostname: 'ok.test', cluster: 'ok' },
      { hostname: 'deny.test', deny: true },
      { hostname: 'redir.test', redirect: { to: 'https://new.test{path}', status: 308 } },
      { hostname: 'redir301.test', redirect: { to: 'https://{host}/moved{path}' } },
      ...[
        'empty',
        'empty-own-page',
        'zero',
        'reset',
        'garbage',
        'no-accept',
        'silent',
        'truncated',
        'flaky',
        'flaky-post',
        'refused',
      ].map((c) => ({ hostname: `${c}.test`, cluster: c })),
    ],
  });
  [override, plain] = kakehi.ports as [number, number];
});

after(async () => {
  await kakehi?.stop();
  await Promise.all(backends.map((b) => b.close()));
});

/** One request with Connection: close; resolves when kakehi closes. */
async function ask(
  port: number,
  host: string,
  opts: { method?: string; path?: string; extra?: string } = {},
) {
  const r = await rawExchange(
    port,
    `${opts.method ?? 'GET'} ${opts.path ?? '/'} HTTP/1.1\r\nHost: ${host}\r\n${opts.extra ?? ''}Connection: close\r\n\r\n`,
  );
  assert.equal(r.closed, true, `kakehi did not close after Connection: close:\n${r.text}`);
  assert.equal(statusCodes(r.text).length, 1, r.text);
  return parseAnswer(r.text);
}

describe('routing answers', () => {
  test('answers 404 with the built-in page carrying the request id when no frontend matches', async () => {
    const a = await ask(plain, 'nothing.test');
    assert.equal(a.status, 404);
    requestIdOf(a);
    assert.match(a.body, /<h1>404 Not Found<\/h1>/);
    assert.equal(a.headers.get('content-length'), String(Buffer.byteLength(a.body)));
    assert.equal(ok.seen.length, 0);
  });

  test('answers 403 for a deny frontend and forwards nothing', async () => {
    const before = ok.seen.length;
    const a = await ask(plain, 'deny.test');
    assert.equal(a.status, 403);
    requestIdOf(a);
    assert.equal(ok.seen.length, before);
  });

  test('answers 308 with Location built from {path} (path and query)', async () => {
    const a = await ask(plain, 'redir.test', { path: '/a/b?c=1' });
    assert.equal(a.status, 308);
    assert.equal(a.headers.get('location'), 'https://new.test/a/b?c=1');
    requestIdOf(a);
  });

  test('answers 301 by default with Location built from {host} and {path}', async () => {
    const a = await ask(plain, 'redir301.test', { path: '/x?y=2' });
    assert.equal(a.status, 301);
    assert.equal(a.headers.get('location'), 'https://redir301.test/moved/x?y=2');
    requestIdOf(a);
  });

  test('answers 400 with the request id in header and page for a malformed head', async () => {
    const r = await rawExchange(plain, 'GET / HTTP/1.1\r\nHost: ok.test\r\nHost: ok.test\r\n\r\n');
    assert.equal(r.closed, true);
    const a = parseAnswer(r.text);
    assert.equal(a.status, 400);
    requestIdOf(a);
  });

  test('keeps a valid incoming X-Request-Id in its answer', async () => {
    const a = await ask(plain, 'nothing.test', { extra: 'X-Request-Id: trace-42.abc\r\n' });
    assert.equal(a.status, 404);
    assert.equal(requestIdOf(a), 'trace-42.abc');
  });

  test('replaces an invalid incoming X-Request-Id with its own', async () => {
    const a = await ask(plain, 'nothing.test', { extra: 'X-Request-Id: <script>\r\n' });
    assert.equal(a.status, 404);
    assert.notEqual(requestIdOf(a), '<script>');
    assert.ok(!a.body.includes('<script>'));
  });
});

describe('client limits', () => {
  test('answers 408 and closes when the request head does not arrive within request_head_timeout_ms', async () => {
    const r = await rawExchange(override, 'GET / HTTP/1.1\r\nHost: ok.test\r\n');
    assert.equal(r.closed, true, 'kakehi must close the slow connection');
    const a = parseAnswer(r.text);
    assert.equal(a.status, 408);
    assert.equal(a.headers.get('connection'), 'close');
    requestIdOf(a);
  });

  test('answers 431 and closes for a complete head above max_header_bytes', async () => {
    const r = await rawExchange(
      override,
      `GET / HTTP/1.1\r\nHost: ok.test\r\nX-Big: ${'x'.repeat(2000)}\r\n\r\n`,
    );
    assert.equal(r.closed, true);
    const a = parseAnswer(r.text);
    assert.equal(a.status, 431);
    requestIdOf(a);
  });

  test('answers 431 and closes once an unfinished head passes max_header_bytes', async () => {
    const r = await rawExchange(override, `GET / HTTP/1.1\r\nHost: ok.test\r\nX-Big: ${'x'.repeat(2000)}`);
    assert.equal(r.closed, true);
    const a = parseAnswer(r.text);
    assert.equal(a.status, 431);
    requestIdOf(a);
  });
});

describe('backend failures', () => {
  test('answers 502 when the backend resets the connection before answering', async () => {
    const a = await ask(plain, 'reset.test');
    assert.equal(a.status, 502);
    requestIdOf(a);
  });

  test('answers 502 when the backend sends a garbage status line', async () => {
    const a = await ask(plain, 'garbage.test');
    assert.equal(a.status, 502);
    requestIdOf(a);
  });

  test('answers 502 when a backend accepts a WebSocket upgrade without Sec-WebSocket-Accept', async () => {
    const r = await rawExchange(
      plain,
      'GET /ws HTTP/1.1\r\nHost: no-accept.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      { doneWhen: (t) => t.includes('\r\n\r\n') && statusCodes(t).length > 0 },
    );
    assert.deepEqual(statusCodes(r.text), [502], r.text);
    assert.doesNotMatch(r.text, /HTTP\/1\.1 101/, 'the 101 must not reach the client');
    requestIdOf(parseAnswer(r.text));
  });

  test('answers 504 when the backend does not answer within backend_timeout_ms', async () => {
    const a = await ask(plain, 'silent.test');
    assert.equal(a.status, 504);
    requestIdOf(a);
  });

  test('answers 503 for a cluster with no backends', async () => {
    const a = await ask(plain, 'empty.test');
    assert.equal(a.status, 503);
    requestIdOf(a);
  });

  test('answers 503 when every backend of the cluster is unavailable (weight 0)', async () => {
    const before = ok.seen.length;
    const a = await ask(plain, 'zero.test');
    assert.equal(a.status, 503);
    requestIdOf(a);
    assert.equal(ok.seen.length, before);
  });

  test('answers 502 when every backend refuses the connection', async () => {
    const a = await ask(plain, 'refused.test');
    assert.equal(a.status, 502);
    requestIdOf(a);
  });

  test('retries a replayable GET on another backend, connect_attempts times in all, then answers 502', async () => {
    const a = await ask(plain, 'flaky.test');
    assert.equal(a.status, 502);
    const total = accepts.flaky.reduce((x, y) => x + y, 0);
    assert.equal(total, 2, `accepts per backend: ${accepts.flaky}`);
    assert.ok(
      accepts.flaky.every((n) => n <= 1),
      `each attempt goes to another backend: ${accepts.flaky}`,
    );
  });

  test('does not replay a POST with a body after its backend closed: one attempt, then 502', async () => {
    const r = await rawExchange(
      plain,
      'POST / HTTP/1.1\r\nHost: flaky-post.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    assert.equal(r.closed, true);
    assert.deepEqual(statusCodes(r.text), [502], r.text);
    assert.equal(
      accepts.flakyPost.reduce((x, y) => x + y, 0),
      1,
      `accepts per backend: ${accepts.flakyPost}`,
    );
  });

  test('closes the client connection when the backend sends 3 of 100 announced bytes and closes', async () => {
    // Keep-alive request: only kakehi closing the connection ends the read early.
    const r = await rawExchange(plain, 'GET / HTTP/1.1\r\nHost: truncated.test\r\n\r\n', {
      timeoutMs: 5_000,
    });
    assert.equal(r.closed, true, `the client was left hanging with:\n${r.text}`);
    const a = parseAnswer(r.text);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('content-length'), '100');
    assert.equal(a.body, 'abc');
  });
});

describe('operator pages', () => {
  test('serves the listener page for 404 with %REQUEST_ID substituted', async () => {
    const a = await ask(override, 'nothing.test');
    assert.equal(a.status, 404);
    const id = requestIdOf(a);
    assert.equal(a.body, `L404 ${id}`);
  });

  test('serves the listener page for 503 when the cluster has none', async () => {
    const a = await ask(override, 'empty.test');
    assert.equal(a.status, 503);
    assert.equal(a.body, `L503 ${requestIdOf(a)}`);
  });

  test('serves the cluster page over the listener page', async () => {
    const a = await ask(override, 'empty-own-page.test');
    assert.equal(a.status, 503);
    assert.equal(a.body, `C503 ${requestIdOf(a)}`);
  });

  test('serves the cluster page on a listener without pages of its own', async () => {
    const a = await ask(plain, 'empty-own-page.test');
    assert.equal(a.status, 503);
    assert.equal(a.body, `C503 ${requestIdOf(a)}`);
  });

  test('keeps the built-in page for statuses the listener does not override', async () => {
    const a = await ask(override, 'deny.test');
    assert.equal(a.status, 403);
    assert.match(a.body, /<h1>403 Forbidden<\/h1>/);
  });
});

describe('connection handling', () => {
  test('answers HEAD with the head only (Content-Length of the page, no body), then serves the next request', async () => {
    const r = await rawExchange(
      plain,
      'HEAD / HTTP/1.1\r\nHost: nothing.test\r\n\r\nGET /after-head HTTP/1.1\r\nHost: ok.test\r\nConnection: close\r\n\r\n',
    );
    assert.equal(r.closed, true);
    assert.deepEqual(statusCodes(r.text), [404, 200], r.text);
    const first = r.text.slice(0, r.text.indexOf('\r\n\r\n') + 4);
    assert.match(first, /\r\nContent-Length: [1-9]\d*\r\n/);
    // The next bytes after the HEAD answer's head are the second status line.
    assert.ok(r.text.slice(first.length).startsWith('HTTP/1.1 200 '), r.text);
    assert.equal(ok.seen.at(-1)?.url, '/after-head');
  });

  test('keeps the connection open after a 404 and serves the next request on it', async () => {
    const r = await rawExchange(
      plain,
      'GET /missing HTTP/1.1\r\nHost: nothing.test\r\n\r\nGET /after-404 HTTP/1.1\r\nHost: ok.test\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statusCodes(r.text), [404, 200], r.text);
    assert.ok(!r.text.slice(0, r.text.indexOf('\r\n\r\n')).includes('Connection: close'));
    assert.equal(ok.seen.at(-1)?.url, '/after-404');
  });

  test('closes the connection after a 400 and serves nothing after it', async () => {
    const before = ok.seen.length;
    const r = await rawExchange(
      plain,
      'GET / HTTP/1.1\r\nHost: ok.test\r\nX Bad: 1\r\n\r\nGET /after-400 HTTP/1.1\r\nHost: ok.test\r\n\r\n',
    );
    assert.equal(r.closed, true);
    assert.deepEqual(statusCodes(r.text), [400], r.text);
    assert.equal(ok.seen.length, before);
  });
});
