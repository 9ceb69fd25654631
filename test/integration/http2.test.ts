// HTTP/2 at the edge through a real kakehi, real certificates, real HTTP/1.1
// backends on 127.0.0.1 and real clients (curl's HTTP/2 and node:http2): ALPN,
// the same routing, answers, rules and limits as HTTP/1.1 (each stream goes
// through the one exchange), bodies and trailers both ways, multiplexing with a
// slow stream, the access log and metrics, h2c, h2load, and GOAWAY on drain.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Family, ScalarSample } from '../../src/metrics/registry.js';
import {
  type Backend,
  closedPort,
  echoBackend,
  type GatedBackend,
  gatedBackend,
  rawBackend,
} from '../helpers/backends.js';
import { issueCert, makeCa, type TestCa, type TestCert } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { ctl } from '../helpers/ctl-table.js';
import { alpnOf, curl, h2Connect, h2Request } from '../helpers/h2-client.js';
import { httpGet } from '../helpers/http.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange } from '../helpers/raw-client.js';
import { httpsGet } from '../helpers/tls-client.js';

const run = promisify(execFile);
const H2LOAD = '/usr/bin/h2load';
const MIB = 1024 * 1024;
/** The bodies that cross the proxy both ways: 5 MiB, random so a dropped or moved byte shows. */
const BIG = randomBytes(5 * MIB);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BIG_SHA = sha(BIG);

/** A backend for bodies: hashes what it receives, and serves BIG with or without Content-Length. */
async function bulkBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/download')) {
      if (req.url.endsWith('chunked')) res.writeHead(200, { 'content-type': 'application/octet-stream' });
      else res.writeHead(200, { 'content-length': BIG.length });
      // Pieces of uneven size, so chunk and frame boundaries never line up.
      for (let at = 0; at < BIG.length; at += 100_003) res.write(BIG.subarray(at, at + 100_003));
      res.end();
      return;
    }
    const h = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      bytes += c.length;
    });
    req.on('end', () => {
      const out = JSON.stringify({
        sha: h.digest('hex'),
        bytes,
        contentLength: req.headers['content-length'],
        transferEncoding: req.headers['transfer-encoding'],
        trailers: req.trailers,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const a = server.address();
  return {
    port: typeof a === 'object' && a !== null ? a.port : 0,
    close: () =>
      new Promise((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}

/** Writes the certificate and key where a config's certificate_file and key_file can name them. */
function certFiles(ca: TestCa, cert: TestCert, name: string): { certificate_file: string; key_file: string } {
  const dir = join(ca.dir, 'cfg');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.crt`), cert.fullchainPem);
  writeFileSync(join(dir, `${name}.key`), cert.keyPem);
  return { certificate_file: join(dir, `${name}.crt`), key_file: join(dir, `${name}.key`) };
}

/** The sum of a counter's samples whose labels include `labels`. */
async function counter(socketPath: string, name: string, labels: Record<string, string>): Promise<number> {
  const r = (await ok(socketPath, 'query_metrics')) as unknown as { families: Family[] };
  const f = r.families.find((x) => x.name === name);
  assert.ok(f, `family ${name} is present`);
  return (f.samples as ScalarSample[])
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** An answer page with its request id taken out, to compare the same answer over two protocols. */
const page = (body: string, requestId: unknown) => body.replaceAll(String(requestId), '<id>');

interface Echoed {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
}

describe('HTTP/2', () => {
  let ca: TestCa;
  let app: Backend;
  let api: Backend;
  let slow: GatedBackend;
  let bulk: { port: number; close(): Promise<void> };
  /** Sends a response head and 3 bytes of its body, then closes: a response cut short. */
  let cut: Backend;
  let kakehi: Kakehi;
  let tls: number;
  let tlsH1Only: number;
  let strict: number;
  let h2c: number;
  let plain: number;
  const sessions: ClientHttp2Session[] = [];
  /** A session to the default HTTPS listener, its SNI a name of the certificate; closed after the tests. */
  const connectTls = async () => {
    const s = await h2Connect(`https://127.0.0.1:${tls}`, { servername: 'app.h2.test', ca: ca.certPem });
    sessions.push(s);
    return s;
  };
  /** curl on `host` resolved to 127.0.0.1:port. */
  const curlAt = (scheme: 'http' | 'https', host: string, port: number, path: string, args: string[] = []) =>
    curl([...args, '--resolve', `${host}:${port}:127.0.0.1`, `${scheme}://${host}:${port}${path}`]);
  const get = (
    s: ClientHttp2Session,
    host: string,
    path: string,
    extra: Record<string, string | string[]> = {},
  ) => h2Request(s, { ':method': 'GET', ':authority': host, ':path': path, ...extra });

  before(async () => {
    ca = makeCa({ keyType: 'ec' });
    const cert = issueCert(ca, ['*.h2.test'], { keyType: 'ec' });
    const files = certFiles(ca, cert, 'h2');
    app = await echoBackend('app', (req, res) => {
      if (req.url === '/nocontent') {
        res.writeHead(204);
        res.end();
        return true;
      }
      if (req.url === '/response-headers') {
        res.writeHead(200, {
          'x-backend-says': 'hi',
          'set-cookie': ['a=1', 'b=2'],
          'content-type': 'text/plain',
          'content-length': 2,
        });
        res.end('ok');
        return true;
      }
      return undefined;
    });
    api = await echoBackend('api');
    slow = await gatedBackend('slow', { answer: (res) => res.end('slow one done') });
    bulk = await bulkBackend();
    cut = await rawBackend((socket, received) =>
      socket.on('data', () => {
        if (!received().includes('\r\n\r\n')) return;
        const framing = received().startsWith('GET /chunked')
          ? 'transfer-encoding: chunked'
          : 'content-length: 100000';
        const body = framing.startsWith('transfer') ? '3\r\nabc\r\n' : 'abc';
        socket.end(`HTTP/1.1 200 OK\r\n${framing}\r\n\r\n${body}`);
      }),
    );
    const made = spawnSync(process.execPath, [CLI, 'hash-password', '--cost', '10'], {
      input: 'open sesame\n',
      encoding: 'utf8',
    });
    assert.equal(made.status, 0, made.stderr);
    const TLS = '127.0.0.1:0';
    const TLS_H1 = `127.0.0.1:${await closedPort()}`;
    const STRICT = `127.0.0.1:${await closedPort()}`;
    kakehi = await startKakehi({
      listeners: [
        { address: TLS, protocol: 'https' },
        { address: TLS_H1, protocol: 'https', alpn: ['http/1.1'] },
        { address: STRICT, protocol: 'https', strict_sni: true },
        { address: `127.0.0.1:${await closedPort()}`, h2c: true },
        { address: `127.0.0.1:${await closedPort()}` },
      ],
      clusters: [
        { id: 'app', backends: [{ id: 'a', address: app.address }], hsts: { max_age: 600 } },
        { id: 'api', backends: [{ id: 'a', address: api.address }] },
        // Long enough that only a test's release answers it.
        { id: 'slow', backends: [{ id: 's', address: slow.address }], backend_timeout_ms: 120_000 },
        { id: 'bulk', backends: [{ id: 'b', address: `127.0.0.1:${bulk.port}` }] },
        { id: 'cut', backends: [{ id: 'c', address: cut.address }] },
      ],
      frontends: [
        { hostname: 'app.h2.test', cluster: 'app' },
        { hostname: 'app.h2.test', path: '/api/', cluster: 'api' },
        { hostname: 'api.h2.test', cluster: 'api' },
        { hostname: 'slow.h2.test', cluster: 'slow' },
        { hostname: 'bulk.h2.test', cluster: 'bulk' },
        { hostname: 'cut.h2.test', cluster: 'cut' },
        { hostname: 'redirect.h2.test', redirect: { status: 308, to: 'https://app.h2.test{path}' } },
        {
          hostname: 'auth.h2.test',
          cluster: 'app',
          basic_auth: { realm: 'h2', users: [{ name: 'ann', password_hash: made.stdout.trim() }] },
        },
        { hostname: 'deny.h2.test', cluster: 'app', ip_deny: ['127.0.0.1/32'] },
        { hostname: 'rl.h2.test', cluster: 'app', rate_limit: { requests_per_second: 1, burst: 2 } },
        { hostname: 'small.h2.test', cluster: 'bulk', max_request_body_bytes: 1000 },
        { hostname: 'other.test', cluster: 'app' },
      ],
      certificates: [
        { listener: TLS, ...files, default: true },
        { listener: TLS_H1, ...files },
        { listener: STRICT, ...files },
      ],
    });
    [tls, tlsH1Only, strict, h2c, plain] = kakehi.ports as [number, number, number, number, number];
  });

  after(async () => {
    for (const s of sessions) s.destroy();
    await kakehi?.stop();
    await Promise.all([app?.close(), api?.close(), slow?.close(), bulk?.close(), cut?.close()]);
  });

  describe('ALPN', () => {
    it('an https listener offers h2 by default: curl and node:http2 speak HTTP/2', async () => {
      const c = await curlAt('https', 'app.h2.test', tls, '/alpn', ['--http2']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.httpVersion, '2');
      assert.equal(c.status, 200);
      assert.equal((JSON.parse(c.body.toString()) as Echoed).url, '/alpn');
      const s = await connectTls();
      assert.equal(s.alpnProtocol, 'h2');
      assert.equal((await get(s, 'app.h2.test', '/alpn-node')).status, 200);
    });

    it('alpn: ["http/1.1"] turns HTTP/2 off: the handshake picks http/1.1 and curl --http2 speaks 1.1', async () => {
      assert.equal(await alpnOf(tlsH1Only, 'app.h2.test', ['h2', 'http/1.1']), 'http/1.1');
      const c = await curlAt('https', 'app.h2.test', tlsH1Only, '/h1-only', ['--http2']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.httpVersion, '1.1');
      assert.equal(c.status, 200);
    });

    it('an HTTP/1.1 client still works on the default listener', async () => {
      assert.equal(await alpnOf(tls, 'app.h2.test', ['http/1.1']), 'http/1.1');
      assert.equal(await alpnOf(tls, 'app.h2.test', ['h2', 'http/1.1']), 'h2');
      const r = await httpsGet(tls, '/h1', { host: 'app.h2.test' });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as Echoed).url, '/h1');
      const c = await curlAt('https', 'app.h2.test', tls, '/h1-curl', ['--http1.1']);
      assert.equal(c.httpVersion, '1.1');
      assert.equal(c.status, 200);
    });
  });

  describe('the same routing and answers', () => {
    it('routes by host and path to two clusters', async () => {
      const s = await connectTls();
      const [a, byPath, byHost] = await Promise.all([
        get(s, 'app.h2.test', '/x'),
        get(s, 'app.h2.test', '/api/y'),
        get(s, 'api.h2.test', '/z'),
      ]);
      assert.deepEqual(
        [a, byPath, byHost].map((r) => [r.status, (JSON.parse(r.text) as Echoed).backend]),
        [
          [200, 'app'],
          [200, 'api'],
          [200, 'api'],
        ],
      );
    });

    it('a 404 answer has the same status and page over h2 as over HTTP/1.1', async () => {
      const s = await connectTls();
      const h2 = await get(s, 'nowhere.h2.test', '/missing');
      const h1 = await httpsGet(tls, '/missing', { host: 'nowhere.h2.test', servername: 'app.h2.test' });
      assert.equal(h2.status, 404);
      assert.equal(h1.status, 404);
      assert.ok(h2.headers['x-request-id'], 'the h2 answer carries its request id');
      assert.equal(h2.headers['content-type'], h1.headers['content-type']);
      assert.equal(page(h2.text, h2.headers['x-request-id']), page(h1.body, h1.headers['x-request-id']));
    });

    it('a redirect frontend answers over h2 without reaching a backend', async () => {
      const s = await connectTls();
      const before = app.seen.length;
      const r = await get(s, 'redirect.h2.test', '/moved?x=1');
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, 'https://app.h2.test/moved?x=1');
      assert.equal(app.seen.length, before);
    });

    it('the backend sees Host from :authority, X-Forwarded-Proto https, cookie crumbs joined and the request fields', async () => {
      // curl sends each -H cookie as its own field: two crumbs on the wire.
      const c = await curlAt('https', 'app.h2.test', tls, '/seen?q=1', [
        '--http2',
        '-H',
        'cookie: a=1',
        '-H',
        'cookie: b=2',
        '-H',
        'x-client-says: hello',
      ]);
      assert.equal(c.httpVersion, '2');
      const e = JSON.parse(c.body.toString()) as Echoed;
      assert.equal(e.url, '/seen?q=1');
      // curl's :authority carries the URL's port, and Host is exactly it.
      assert.equal(e.headers.host, `app.h2.test:${tls}`);
      assert.equal(e.headers['x-forwarded-proto'], 'https');
      assert.equal(e.headers.cookie, 'a=1; b=2');
      assert.equal(e.headers['x-client-says'], 'hello');
      const seen = app.seen.find((x) => x.url === '/seen?q=1');
      assert.ok(seen);
      assert.equal(
        seen.rawHeaders.filter((_, i) => i % 2 === 0 && /^cookie$/i.test(seen.rawHeaders[i]!)).length,
        1,
      );
    });

    it('response fields reach the client; HEAD and 204 come without a body', async () => {
      const s = await connectTls();
      const r = await get(s, 'app.h2.test', '/response-headers');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-backend-says'], 'hi');
      // Two Set-Cookie fields stay two: they cannot be joined (RFC 9110 §5.3).
      assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
      assert.equal(r.text, 'ok');
      assert.equal(r.headers.connection, undefined);
      assert.equal(r.headers['keep-alive'], undefined);

      const head = await h2Request(s, { ':method': 'HEAD', ':authority': 'app.h2.test', ':path': '/head' });
      assert.equal(head.status, 200);
      assert.ok(Number(head.headers['content-length']) > 0, 'HEAD keeps the length of the GET answer');
      assert.equal(head.body.length, 0);
      assert.equal(app.seen.at(-1)?.method, 'HEAD');

      const none = await get(s, 'app.h2.test', '/nocontent');
      assert.equal(none.status, 204);
      assert.equal(none.body.length, 0);
    });

    it('a 5 MiB upload crosses whole, with content-length and without (chunked to the backend)', async () => {
      const s = await connectTls();
      const post = { ':method': 'POST', ':authority': 'bulk.h2.test', ':path': '/upload' };
      const withLength = await h2Request(s, { ...post, 'content-length': String(BIG.length) }, { body: BIG });
      const without = await h2Request(s, post, { body: BIG });
      assert.equal(withLength.status, 200);
      assert.equal(without.status, 200);
      const l = JSON.parse(withLength.text) as Record<string, unknown>;
      const c = JSON.parse(without.text) as Record<string, unknown>;
      assert.deepEqual(
        [l.sha, l.bytes, l.contentLength, l.transferEncoding],
        [BIG_SHA, BIG.length, String(BIG.length), undefined],
      );
      assert.deepEqual(
        [c.sha, c.bytes, c.contentLength, c.transferEncoding],
        [BIG_SHA, BIG.length, undefined, 'chunked'],
      );
    });

    it('a 5 MiB download crosses whole, from a backend with content-length and one chunking', async () => {
      const s = await connectTls();
      const cl = await get(s, 'bulk.h2.test', '/download');
      const chunked = await get(s, 'bulk.h2.test', '/download-chunked');
      assert.equal(cl.status, 200);
      assert.equal(cl.headers['content-length'], String(BIG.length));
      assert.equal(sha(cl.body), BIG_SHA);
      assert.equal(chunked.status, 200);
      assert.equal(chunked.headers['transfer-encoding'], undefined);
      assert.equal(sha(chunked.body), BIG_SHA);
      // And through curl's HTTP/2 stack.
      const c = await curlAt('https', 'bulk.h2.test', tls, '/download-chunked', ['--http2']);
      assert.equal(c.httpVersion, '2');
      assert.equal(sha(c.body), BIG_SHA);
    });

    it('a response the backend cuts short is reset with INTERNAL_ERROR, never ended as if complete', async () => {
      const s = await connectTls();
      for (const path of ['/chunked', '/length']) {
        const err = await get(s, 'cut.h2.test', path).then(
          (r) => new Error(`answered ${r.status} with ${r.body.length} bytes, as if complete`),
          (e: Error) => e,
        );
        assert.match(err.message, /NGHTTP2_INTERNAL_ERROR/, `${path}: ${err.message}`);
        const c = await curlAt('https', 'cut.h2.test', tls, path, ['--http2']);
        assert.equal(c.code, 92, c.stderr);
        assert.match(c.stderr, /not closed cleanly: INTERNAL_ERROR/);
      }
      assert.equal((await get(s, 'app.h2.test', '/after-cut')).status, 200);
    });

    it('Expect: 100-continue gets its 100 before the client sends the body', {
      timeout: 60_000,
    }, async () => {
      const s = await connectTls();
      const stream = s.request(
        { ':method': 'POST', ':authority': 'bulk.h2.test', ':path': '/upload', expect: '100-continue' },
        { endStream: false },
      );
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      const [status] = await Promise.all([
        new Promise((resolve, reject) => {
          stream.on('response', (h) => resolve(h[':status']));
          stream.on('error', reject);
        }),
        once(stream, 'continue').then(() => stream.end('hello')),
      ]);
      await once(stream, 'end');
      assert.equal(status, 200);
      const got = JSON.parse(Buffer.concat(chunks).toString()) as { sha: string; bytes: number };
      assert.deepEqual([got.sha, got.bytes], [sha(Buffer.from('hello')), 5]);
    });

    it('request trailers sent without content-length reach the backend as chunked trailers', async () => {
      const s = await connectTls();
      const body = BIG.subarray(0, 300_000);
      const r = await h2Request(
        s,
        { ':method': 'POST', ':authority': 'bulk.h2.test', ':path': '/upload' },
        { body, trailers: { 'x-checksum': sha(body), 'x-done': 'yes' } },
      );
      assert.equal(r.status, 200);
      const got = JSON.parse(r.text) as {
        sha: string;
        transferEncoding: string;
        trailers: Record<string, string>;
      };
      assert.equal(got.sha, sha(body));
      assert.equal(got.transferEncoding, 'chunked');
      assert.deepEqual(got.trailers, { 'x-checksum': sha(body), 'x-done': 'yes' });
    });
  });

  describe('malformed requests', () => {
    it('a host field naming another origin than :authority: RST_STREAM PROTOCOL_ERROR, counted, nothing forwarded, the connection serves on', async () => {
      const refused = () =>
        counter(kakehi.socketPath, 'kakehi_http2_refused_total', { reason: 'malformed_request' });
      const before = await refused();
      const s = await connectTls();
      const err = await get(s, 'app.h2.test', '/smuggled', { host: 'evil.h2.test' }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(err, 'the stream is reset, not answered');
      assert.match(err.message, /PROTOCOL_ERROR/);
      assert.equal(
        app.seen.some((x) => x.url === '/smuggled'),
        false,
      );
      assert.equal((await refused()) - before, 1);
      assert.equal((await get(s, 'app.h2.test', '/after-malformed')).status, 200);
    });
  });

  describe('frontend rules apply to h2 streams', () => {
    it('basic_auth: 401 with WWW-Authenticate without credentials, 200 with them', async () => {
      const s = await connectTls();
      const none = await get(s, 'auth.h2.test', '/secret');
      assert.equal(none.status, 401);
      assert.match(String(none.headers['www-authenticate']), /^Basic realm="h2"/);
      const good = await get(s, 'auth.h2.test', '/secret', {
        authorization: `Basic ${Buffer.from('ann:open sesame').toString('base64')}`,
      });
      assert.equal(good.status, 200);
      assert.equal((JSON.parse(good.text) as Echoed).url, '/secret');
    });

    it('ip_deny 127.0.0.1/32: 403, nothing forwarded', async () => {
      const s = await connectTls();
      const r = await get(s, 'deny.h2.test', '/denied');
      assert.equal(r.status, 403);
      assert.equal(
        app.seen.some((x) => x.url === '/denied'),
        false,
      );
    });

    it('rate_limit: a burst over it on one connection gets 429 with Retry-After', async () => {
      const s = await connectTls();
      const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => get(s, 'rl.h2.test', `/rl${i}`)));
      const limited = burst.filter((r) => r.status === 429);
      assert.equal(burst.filter((r) => r.status === 200).length + limited.length, 8);
      assert.ok(limited.length >= 1, `past the burst, 429 (got ${burst.map((r) => r.status).join(' ')})`);
      for (const r of limited) assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    });

    it('max_request_body_bytes: 413 for a body over it, with content-length or without', async () => {
      const s = await connectTls();
      const post = { ':method': 'POST', ':authority': 'small.h2.test', ':path': '/upload' };
      const body = BIG.subarray(0, 100_000);
      const declared = await h2Request(s, { ...post, 'content-length': String(body.length) }, { body });
      assert.equal(declared.status, 413);
      const streamed = await h2Request(s, post, { body });
      assert.equal(streamed.status, 413);
      assert.equal((await h2Request(s, post, { body: body.subarray(0, 1000) })).status, 200);
    });

    it('strict_sni: an :authority the certificate does not name gets 421; one it names is served', async () => {
      const s = await h2Connect(`https://127.0.0.1:${strict}`, { servername: 'app.h2.test', ca: ca.certPem });
      sessions.push(s);
      const mis = await get(s, 'other.test', '/x');
      assert.equal(mis.status, 421);
      assert.equal(
        app.seen.some((x) => x.headers.host === 'other.test'),
        false,
      );
      assert.equal((await get(s, 'app.h2.test', '/x')).status, 200);
    });

    it('hsts on a cluster: Strict-Transport-Security on its h2 responses', async () => {
      const s = await connectTls();
      const r = await get(s, 'app.h2.test', '/hsts');
      assert.equal(r.status, 200);
      assert.match(String(r.headers['strict-transport-security']), /^max-age=600\b/);
      const other = await get(s, 'api.h2.test', '/hsts');
      assert.equal(other.headers['strict-transport-security'], undefined);
    });
  });

  describe('multiplexing', () => {
    it('50 concurrent streams on one connection are each answered with their own response', async () => {
      const s = await connectTls();
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => get(s, 'app.h2.test', `/m/${i}`)));
      assert.deepEqual(
        all.map((r) => [r.status, (JSON.parse(r.text) as Echoed).url]),
        all.map((_, i) => [200, `/m/${i}`]),
      );
    });

    it('a stream whose backend holds its answer does not stall the others on the connection', async () => {
      const s = await connectTls();
      const held = get(s, 'slow.h2.test', '/held');
      await slow.holding;
      const others = await Promise.all(
        Array.from({ length: 20 }, (_, i) => get(s, 'app.h2.test', `/while/${i}`)),
      );
      assert.deepEqual(
        others.map((r) => r.status),
        others.map(() => 200),
      );
      slow.release();
      const r = await held;
      assert.equal(r.status, 200);
      assert.equal(r.text, 'slow one done');
    });
  });

  describe('access log and metrics', () => {
    it('an h2 request logs "protocol":"h2" and counts in kakehi_http_requests_by_protocol_total{protocol="h2"}', async () => {
      const h2Before = await counter(kakehi.socketPath, 'kakehi_http_requests_by_protocol_total', {
        protocol: 'h2',
      });
      const h1Before = await counter(kakehi.socketPath, 'kakehi_http_requests_by_protocol_total', {
        protocol: 'http/1.1',
      });
      const s = await connectTls();
      for (let i = 0; i < 3; i++) assert.equal((await get(s, 'app.h2.test', `/logged-h2/${i}`)).status, 200);
      assert.equal((await httpsGet(tls, '/logged-h1', { host: 'app.h2.test' })).status, 200);
      const line = await kakehi.waitAccessLine((l) => l.path === '/logged-h2/2');
      assert.equal(line.protocol, 'h2');
      assert.equal(line.host, 'app.h2.test');
      assert.equal(line.status, 200);
      const h1Line = await kakehi.waitAccessLine((l) => l.path === '/logged-h1');
      assert.notEqual(h1Line.protocol, 'h2');
      assert.equal(
        (await counter(kakehi.socketPath, 'kakehi_http_requests_by_protocol_total', { protocol: 'h2' })) -
          h2Before,
        3,
      );
      assert.equal(
        (await counter(kakehi.socketPath, 'kakehi_http_requests_by_protocol_total', {
          protocol: 'http/1.1',
        })) - h1Before,
        1,
      );
    });
  });

  describe('h2c', () => {
    it('a plain listener with h2c: true serves HTTP/2 with prior knowledge', async () => {
      const c = await curlAt('http', 'app.h2.test', h2c, '/clear', ['--http2-prior-knowledge']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.httpVersion, '2');
      assert.equal(c.status, 200);
      const e = JSON.parse(c.body.toString()) as Echoed;
      assert.equal(e.url, '/clear');
      assert.equal(e.headers['x-forwarded-proto'], 'http');
      // node:http2 over h2c too, and HTTP/1.1 still works on that listener.
      const s = await h2Connect(`http://127.0.0.1:${h2c}`);
      sessions.push(s);
      const n = await get(s, 'app.h2.test', '/clear-node');
      assert.equal(n.status, 200);
      assert.equal((JSON.parse(n.text) as Echoed).url, '/clear-node');
      assert.equal((await httpGet(h2c, '/clear-h1', { host: 'app.h2.test' })).status, 200);
    });

    it('a plain listener without h2c answers the preface as an HTTP/1.1 request of an unknown version: 505, closed', async () => {
      // docs/security.md: an unknown major version gets 505 (RFC 9110 §6.2).
      const r = await rawExchange(plain, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      assert.match(r.text, /^HTTP\/1\.1 505 /);
      assert.match(r.text, /\r\nConnection: close\r\n/i);
      assert.equal(r.closed, true);
      assert.equal(
        app.seen.some((x) => x.method === 'PRI'),
        false,
      );
    });
  });

  describe('h2load', () => {
    it('5000 requests over 8 connections, 64 streams each: all succeed, none fail or error', async () => {
      const out = await run(H2LOAD, [
        '-n',
        '5000',
        '-c',
        '8',
        '-m',
        '64',
        '-H',
        ':authority: app.h2.test',
        `https://127.0.0.1:${tls}/load`,
      ]);
      const m =
        /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
          out.stdout,
        );
      assert.ok(m, out.stdout);
      assert.deepEqual(m.slice(1).map(Number), [5000, 5000, 5000, 5000, 0, 0], out.stdout);
      assert.match(out.stdout, /status codes: 5000 2xx/);
      assert.match(out.stdout, /Application protocol: h2/);
    });
  });
});

describe('HTTP/2 on drain', () => {
  let ca: TestCa;
  let files: { certificate_file: string; key_file: string };
  const cleanup: (() => Promise<unknown>)[] = [];

  before(() => {
    ca = makeCa({ keyType: 'ec' });
    files = certFiles(ca, issueCert(ca, ['*.h2.test'], { keyType: 'ec' }), 'drain');
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  const start = (backend: string, listener: Record<string, unknown> = {}) =>
    startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'https', ...listener }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: backend }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      certificates: [{ listener: '127.0.0.1:0', ...files, default: true }],
      access_log: 'off',
    });

  /**
   * A kakehi with one h2 stream in flight, its backend holding the 1 MiB answer
   * until released, and the client's wait for GOAWAY already set.
   */
  async function streamInFlight(name: string) {
    const answer = BIG.subarray(0, MIB);
    const backend = await gatedBackend(name, {
      answer: (res) => {
        res.writeHead(200, { 'content-length': answer.length });
        res.end(answer);
      },
    });
    cleanup.push(() => backend.close());
    const kakehi = await start(backend.address);
    cleanup.push(() => kakehi.stop('SIGKILL'));
    const s = await h2Connect(`https://127.0.0.1:${kakehi.port}`, { servername: 'a.h2.test' });
    cleanup.push(async () => s.destroy());
    const goaway = once(s, 'goaway');
    const inFlight = h2Request(s, { ':method': 'GET', ':authority': 'a.h2.test', ':path': '/in-flight' });
    await backend.holding;
    /** GOAWAY NO_ERROR reaches the client, and the stream, released, completes whole. */
    const completesAfterGoaway = async () => {
      const [code] = (await goaway) as [number];
      assert.equal(code, 0, 'GOAWAY NO_ERROR');
      backend.release();
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.body.length, answer.length);
      assert.equal(sha(r.body), sha(answer));
    };
    return { kakehi, completesAfterGoaway };
  }

  it('SIGTERM sends GOAWAY; the stream in flight completes with its whole body; kakehi exits 0', {
    timeout: 60_000,
  }, async () => {
    const { kakehi, completesAfterGoaway } = await streamInFlight('held');
    kakehi.proc.kill('SIGTERM');
    await completesAfterGoaway();
    assert.equal(await kakehi.exited, 0);
  });

  it('ctl upgrade --main: the old workers send GOAWAY, the stream in flight completes, the new main serves h2', {
    timeout: 60_000,
  }, async () => {
    const { kakehi, completesAfterGoaway } = await streamInFlight('upgrade');
    let successor = 0;
    cleanup.push(async () => {
      if (successor !== 0) process.kill(successor, 'SIGTERM');
    });
    // Not awaited yet: whether ctl answers before the old main has drained is not this test's business.
    const upgraded = ctl(kakehi.socketPath, 'upgrade', '--main', '--json');
    await completesAfterGoaway();
    const up = await upgraded;
    assert.equal(up.code, 0, up.stderr);
    successor = (JSON.parse(up.stdout) as { pid: number }).pid;
    assert.equal(await kakehi.exited, 0, 'the old main drained and exited');
    const fresh = await h2Connect(`https://127.0.0.1:${kakehi.port}`, { servername: 'a.h2.test' });
    cleanup.push(async () => fresh.destroy());
    const again = await h2Request(fresh, { ':method': 'GET', ':authority': 'a.h2.test', ':path': '/after' });
    assert.equal(again.status, 200, 'the new main serves HTTP/2 on the same port');
  });

  it('a connection left with no open stream goes with GOAWAY NO_ERROR after keepalive_timeout_ms', {
    timeout: 60_000,
  }, async () => {
    const backend = await echoBackend('idle');
    cleanup.push(() => backend.close());
    const kakehi = await start(backend.address, { keepalive_timeout_ms: 300 });
    cleanup.push(() => kakehi.stop('SIGKILL'));
    const s = await h2Connect(`https://127.0.0.1:${kakehi.port}`, { servername: 'a.h2.test' });
    cleanup.push(async () => s.destroy());
    const goaway = once(s, 'goaway');
    const closed = once(s, 'close');
    const r = await h2Request(s, { ':method': 'GET', ':authority': 'a.h2.test', ':path': '/then-idle' });
    assert.equal(r.status, 200);
    const [code] = (await goaway) as [number];
    assert.equal(code, 0);
    await closed;
    assert.equal(await kakehi.stop('SIGTERM'), 0);
  });

  it('after an h2load run (2000 requests, 4 connections, 16 streams), SIGTERM makes kakehi exit 0', {
    timeout: 60_000,
  }, async () => {
    const backend = await echoBackend('load');
    cleanup.push(() => backend.close());
    const kakehi = await start(backend.address);
    cleanup.push(() => kakehi.stop('SIGKILL'));
    const out = await run(H2LOAD, ['-n', '2000', '-c', '4', '-m', '16', `https://127.0.0.1:${kakehi.port}/`]);
    assert.match(out.stdout, /2000 succeeded, 0 failed, 0 errored/, out.stdout);
    assert.equal(await kakehi.stop('SIGTERM'), 0);
  });
});
