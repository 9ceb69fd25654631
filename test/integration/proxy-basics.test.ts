import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type Backend, echoBackend, rawBackend } from '../helpers/backends.js';
import { httpGet } from '../helpers/http.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

interface Echo {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyBytes: number;
}

describe('proxying', () => {
  let echo: Backend;
  let special: Backend;
  let kakehi: Kakehi;

  before(async () => {
    echo = await echoBackend('echo', (req, res, body) => {
      if (req.url === '/head-test') {
        res.writeHead(200, { 'content-length': '11', 'x-head': 'yes' });
        res.end(req.method === 'HEAD' ? undefined : 'hello world');
        return true;
      }
      if (req.url === '/no-content') {
        res.writeHead(204);
        res.end();
        return true;
      }
      if (req.url === '/not-modified') {
        res.writeHead(304, { etag: '"x"' });
        res.end();
        return true;
      }
      if (req.url === '/binary') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(body);
        return true;
      }
      if (req.url === '/hop') {
        res.writeHead(200, {
          connection: 'x-private',
          'x-private': 'secret',
          'keep-alive': 'timeout=5',
          'content-length': '2',
        });
        res.end('ok');
        return true;
      }
      return undefined;
    });
    // Answers with a chunked body and a trailer, written by hand so the bytes are known.
    special = await rawBackend((socket, received) => {
      socket.on('data', () => {
        if (!received().includes('\r\n\r\n')) return;
        socket.write(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n',
        );
      });
    });
    kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [
        { id: 'echo', backends: [{ id: 'e1', address: echo.address }] },
        { id: 'special', backends: [{ id: 's1', address: special.address }] },
      ],
      frontends: [
        { hostname: 'special.test', cluster: 'special' },
        { hostname: '*', cluster: 'echo', tags: { team: 'core' } },
      ],
    });
  });

  after(async () => {
    await kakehi.stop();
    await echo.close();
    await special.close();
  });

  it('forwards the request with X-Forwarded-*, Forwarded and a generated X-Request-Id', async () => {
    const res = await httpGet(kakehi.port, '/path?q=1', { host: 'app.test' });
    assert.equal(res.status, 200);
    const e = JSON.parse(res.body) as Echo;
    assert.equal(e.url, '/path?q=1');
    assert.equal(e.headers['host'], 'app.test');
    assert.equal(e.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(e.headers['x-forwarded-proto'], 'http');
    assert.equal(e.headers['x-forwarded-port'], String(kakehi.port));
    assert.equal(e.headers['x-forwarded-host'], 'app.test');
    assert.equal(e.headers['forwarded'], 'for=127.0.0.1;proto=http;host=app.test');
    assert.match(e.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
  });

  it('appends to X-Forwarded-For and Forwarded, replaces spoofed X-Forwarded-Proto, keeps a valid X-Request-Id', async () => {
    const res = await httpGet(kakehi.port, '/', {
      host: 'app.test',
      'x-forwarded-for': '203.0.113.9',
      forwarded: 'for=203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-request-id': 'req-abc.123',
    });
    const e = JSON.parse(res.body) as Echo;
    assert.equal(e.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(e.headers['forwarded'], 'for=203.0.113.9, for=127.0.0.1;proto=http;host=app.test');
    assert.equal(e.headers['x-forwarded-proto'], 'http');
    assert.equal(e.headers['x-request-id'], 'req-abc.123');
  });

  it('strips hop-by-hop headers, including those named in Connection, both ways', async () => {
    const res = await rawExchange(
      kakehi.port,
      'GET /hop HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: x\r\n\r\n',
      { doneWhen: (t) => t.endsWith('ok') },
    );
    const seen = echo.seen.at(-1)!;
    assert.equal(seen.url, '/hop');
    for (const h of ['x-secret', 'keep-alive', 'te', 'proxy-connection'])
      assert.equal(seen.headers[h], undefined, h);
    assert.match(res.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(res.text, /x-private|keep-alive/i);
  });

  it('answers HEAD with the head only, and 204 and 304 without a body, on one kept-alive connection', async () => {
    const res = await rawExchange(
      kakehi.port,
      'HEAD /head-test HTTP/1.1\r\nHost: a\r\n\r\nGET /no-content HTTP/1.1\r\nHost: a\r\n\r\nGET /not-modified HTTP/1.1\r\nHost: a\r\n\r\nGET /head-test HTTP/1.1\r\nHost: a\r\n\r\n',
      { doneWhen: (t) => t.endsWith('hello world') },
    );
    assert.deepEqual(statusCodes(res.text), [200, 204, 304, 200]);
    assert.equal(res.text.split('hello world').length, 2, 'only the GET carries the body');
    assert.equal(res.closed, false);
  });

  it('answers pipelined requests in order', async () => {
    const reqs = Array.from({ length: 5 }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
    const res = await rawExchange(kakehi.port, reqs, {
      doneWhen: (t) => (t.match(/"url":"\/p\d"/g) ?? []).length === 5,
    });
    const urls = [...res.text.matchAll(/"url":"(\/p\d)"/g)].map((m) => m[1]);
    assert.deepEqual(urls, ['/p0', '/p1', '/p2', '/p3', '/p4']);
  });

  it('reuses one backend connection for sequential requests', async () => {
    const before = new Set<unknown>();
    echo.server.on('connection', (s) => before.add(s));
    const res = await rawExchange(
      kakehi.port,
      Array.from({ length: 4 }, () => 'GET /reuse HTTP/1.1\r\nHost: a\r\n\r\n').join(''),
      { doneWhen: (t) => statusCodes(t).length === 4 },
    );
    assert.deepEqual(statusCodes(res.text), [200, 200, 200, 200]);
    assert.ok(before.size <= 1, `backend saw ${before.size} new connections`);
  });

  it('carries binary bodies byte for byte both ways, small ones joined to their head and larger ones not', async () => {
    const small = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const large = randomBytes(20_000);
    for (const sent of [small, large]) {
      const got = await postBytes(kakehi.port, '/binary', sent);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(sent), `a ${sent.length}-byte body came back changed`);
    }
  });

  it('streams a chunked response with its trailer unchanged to an HTTP/1.1 client', async () => {
    const res = await rawExchange(kakehi.port, 'GET / HTTP/1.1\r\nHost: special.test\r\n\r\n', {
      doneWhen: (t) => t.endsWith('\r\n0\r\nX-Sum: 42\r\n\r\n'),
    });
    assert.match(res.text, /Transfer-Encoding: chunked/);
    assert.ok(res.text.endsWith('5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n'));
  });

  it('de-chunks a chunked response for an HTTP/1.0 client and closes', async () => {
    const res = await rawExchange(kakehi.port, 'GET / HTTP/1.0\r\nHost: special.test\r\n\r\n');
    assert.equal(res.closed, true);
    assert.doesNotMatch(res.text, /Transfer-Encoding/i);
    assert.match(res.text, /Connection: close/);
    assert.ok(res.text.endsWith('\r\n\r\nhello world'), JSON.stringify(res.text));
  });

  it('relays 100 Continue and then the body for Expect: 100-continue', async () => {
    const res = await rawExchange(
      kakehi.port,
      'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
      { doneWhen: (t) => t.includes('100 Continue') },
    );
    assert.match(res.text, /^HTTP\/1\.1 100 Continue\r\n/);
  });

  it('writes one access log line per request with the documented fields', async () => {
    await httpGet(kakehi.port, '/logged', { host: 'log.test', 'x-request-id': 'log-1' });
    const line = await kakehi.waitAccessLine((l) => l['request_id'] === 'log-1');
    assert.equal(line['method'], 'GET');
    assert.equal(line['host'], 'log.test');
    assert.equal(line['path'], '/logged');
    assert.equal(line['status'], 200);
    assert.equal(line['cluster'], 'echo');
    assert.equal(line['backend'], 'e1');
    assert.deepEqual(line['tags'], { team: 'core' });
    for (const k of ['time', 'client', 'bytes_in', 'bytes_out', 'duration_ms', 'backend_ms'])
      assert.ok(k in line, k);
  });
});

/** POSTs `body` and reads the answer's body as bytes. */
function postBytes(port: number, path: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-length': body.length },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}
