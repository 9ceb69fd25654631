// Request smuggling and malformed heads against a real kakehi process: each
// rejection is answered (400, or 501/505 where the code says why) and nothing of
// it reaches a backend. A barrier request on a fresh connection, awaited after
// each attempt, shows the backend's log is complete when we read it.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { type RawResult, rawExchange, statusCodes } from '../helpers/raw-client.js';

let kakehi: Kakehi;
let a: Backend;
let b: Backend;
let barriers = 0;

before(async () => {
  a = await echoBackend('a');
  b = await echoBackend('b');
  kakehi = await startKakehi({
    listeners: [{ address: '127.0.0.1:0', request_head_timeout_ms: 2_000 }],
    clusters: [
      { id: 'a', backends: [{ id: 'a-1', address: a.address }] },
      { id: 'b', backends: [{ id: 'b-1', address: b.address }] },
    ],
    frontends: [
      { hostname: 'b.test', cluster: 'b' },
      { hostname: '*', cluster: 'a' },
    ],
  });
});

after(async () => {
  await kakehi?.stop();
  await a?.close();
  await b?.close();
});

beforeEach(() => {
  a.seen.length = 0;
  b.seen.length = 0;
});

function send(data: string | string[]): Promise<RawResult> {
  return rawExchange(kakehi.port, data, { timeoutMs: 5_000 });
}

/** A legitimate request on its own connection; once it is answered, returns what backend a saw. */
async function barrier(): Promise<string[]> {
  const path = `/barrier-${++barriers}`;
  const r = await send(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
  assert.deepEqual(statusCodes(r.text), [200], `barrier answered:\n${r.text}`);
  return a.seen.map((s) => s.url);
}

/** Sends `data`, expects exactly one answer with `status` and a closed connection, then proves nothing was forwarded. */
async function assertRejected(data: string | string[], status: number): Promise<RawResult> {
  const r = await send(data);
  assert.deepEqual(statusCodes(r.text), [status], `answer:\n${r.text}`);
  assert.equal(r.closed, true, 'the connection must be closed after a rejected head');
  assert.match(r.text, /\r\nConnection: close\r\n/);
  const seen = await barrier();
  assert.deepEqual(seen, [`/barrier-${barriers}`], 'the backend saw only the barrier');
  assert.equal(b.seen.length, 0);
  return r;
}

const H = 'Host: a.test\r\n';

describe('control', () => {
  test('forwards a well-formed request (the setup can pass a request at all)', async () => {
    const r = await send(`GET /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.deepEqual(statusCodes(r.text), [200]);
    assert.deepEqual(
      a.seen.map((s) => s.url),
      ['/ok'],
    );
  });

  test('ignores empty lines before the request line (RFC 9112 §2.2) and forwards the request', async () => {
    const r = await send(`\r\n\r\nGET /after-crlf HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.deepEqual(statusCodes(r.text), [200]);
    assert.deepEqual(
      a.seen.map((s) => s.url),
      ['/after-crlf'],
    );
  });
});

describe('Content-Length and Transfer-Encoding', () => {
  test('rejects Content-Length before Transfer-Encoding with 400 and forwards nothing', async () => {
    await assertRejected(
      `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
    );
  });

  test('rejects Transfer-Encoding before Content-Length with 400 and forwards nothing', async () => {
    await assertRejected(
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`,
      400,
    );
  });

  test('rejects duplicate Content-Length with equal values with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, 400);
  });

  test('rejects duplicate Content-Length with different values with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 7\r\n\r\nabc`, 400);
  });

  test('rejects a list-valued Content-Length with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, 400);
  });

  test('rejects a signed Content-Length with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, 400);
  });

  test('answers Transfer-Encoding "gzip, chunked" with 501 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501);
  });

  test('rejects Transfer-Encoding "chunked, gzip" (chunked not last) with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400);
  });

  test('rejects Transfer-Encoding "gzip" alone with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, 400);
  });

  test('rejects the obfuscated Transfer-Encoding "xchunked" with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400);
  });

  test('rejects Transfer-Encoding "chunked" with a trailing vertical tab with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n`, 400);
  });

  test('rejects "Transfer-Encoding : chunked" (space before colon) with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400);
  });

  test('rejects chunked applied twice (two Transfer-Encoding fields) and forwards nothing', async () => {
    // RFC 9112 §6.1: chunked must not be applied more than once. kakehi refuses
    // it as an unsupported coding list (501); 400 would be as safe.
    const r = await send(
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    const codes = statusCodes(r.text);
    assert.equal(codes.length, 1, r.text);
    assert.ok(codes[0] === 400 || codes[0] === 501, r.text);
    assert.equal(r.closed, true);
    assert.deepEqual(await barrier(), [`/barrier-${barriers}`]);
  });

  test('rejects Transfer-Encoding on an HTTP/1.0 request with 400 and forwards nothing', async () => {
    await assertRejected(`POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400);
  });

  test('accepts a tab before "chunked" as whitespace and forwards the de-framed body', async () => {
    const r = await send(
      `POST /tab-te HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
    );
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.equal(a.seen.length, 1);
    assert.equal(a.seen[0]?.url, '/tab-te');
    assert.equal(a.seen[0]?.bodyBytes, 3);
  });
});

describe('chunked framing', () => {
  const SMUGGLED = `GET /smuggled HTTP/1.1\r\n${H}\r\n`;

  async function assertFramingRejected(body: string): Promise<void> {
    const r = await send(`POST /framed HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${body}${SMUGGLED}`);
    const codes = statusCodes(r.text);
    // Either answered 400 or cut; never a second answer for the smuggled request.
    assert.ok(codes.length === 0 || (codes.length === 1 && codes[0] === 400), `answer:\n${r.text}`);
    assert.equal(r.closed, true);
    const seen = await barrier();
    assert.ok(!seen.includes('/smuggled'), `smuggled request reached the backend: ${seen}`);
    assert.ok(!seen.includes('/framed'), `a broken body was delivered whole: ${seen}`);
  }

  test('rejects a non-hex chunk size and never forwards the smuggled request', async () => {
    await assertFramingRejected('zz\r\nabc\r\n0\r\n\r\n');
  });

  test('rejects a "0x" prefixed chunk size and never forwards the smuggled request', async () => {
    await assertFramingRejected('0x3\r\nabc\r\n0\r\n\r\n');
  });

  test('rejects a negative chunk size and never forwards the smuggled request', async () => {
    await assertFramingRejected('-3\r\nabc\r\n0\r\n\r\n');
  });

  test('rejects an oversized chunk size and never forwards the smuggled request', async () => {
    await assertFramingRejected('fffffffffffffffff3\r\nabc\r\n0\r\n\r\n');
  });

  test('rejects a chunk size line ending in a bare LF and never forwards the smuggled request', async () => {
    await assertFramingRejected('3\nabc\r\n0\r\n\r\n');
  });

  test('rejects chunk data followed by a bare LF and never forwards the smuggled request', async () => {
    await assertFramingRejected('3\r\nabc\n0\r\n\r\n');
  });

  test('rejects chunk data longer than its size and never forwards the smuggled request', async () => {
    await assertFramingRejected('3\r\nabcdef\r\n0\r\n\r\n');
  });

  test('rejects a last chunk ending in a bare LF and never forwards the smuggled request', async () => {
    await assertFramingRejected('0\r\n\n');
  });
});

describe('Host', () => {
  test('rejects duplicate Host with equal values with 400 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/1.1\r\n${H}${H}\r\n`, 400);
  });

  test('rejects duplicate Host with different values with 400 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`, 400);
  });

  test('rejects an HTTP/1.1 request without Host with 400 and forwards nothing', async () => {
    await assertRejected('GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 400);
  });

  test('rejects a Host with a space inside with 400 and forwards nothing', async () => {
    await assertRejected('GET / HTTP/1.1\r\nHost: a .test\r\n\r\n', 400);
  });

  test('routes an absolute-form target by its own host, forwarding one request with that Host', async () => {
    const r = await send(`GET http://b.test/abs?q=1 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.equal(a.seen.length, 0, 'the Host header must not route an absolute-form request');
    assert.equal(b.seen.length, 1);
    assert.equal(b.seen[0]?.url, '/abs?q=1');
    // RFC 9112 §3.2.2: the target's authority replaces Host; the backend must not
    // see the client's contradicting Host (a cache-poisoning and routing-confusion route).
    const hosts = b.seen[0]!.rawHeaders.filter(
      (_, i, all) => i % 2 === 0 && all[i]!.toLowerCase() === 'host',
    );
    assert.equal(hosts.length, 1, `Host fields forwarded: ${b.seen[0]!.rawHeaders.join(' | ')}`);
    assert.equal(b.seen[0]?.headers.host, 'b.test');
    // First, so that a backend keeping only its first N fields never loses it.
    assert.equal(b.seen[0]!.rawHeaders[0], 'Host');
  });

  test('forwards an absolute-form request without a Host header with the Host of its target', async () => {
    const r = await send('GET http://b.test/nohost HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.equal(b.seen.length, 1);
    assert.equal(b.seen[0]?.url, '/nohost');
    assert.equal(b.seen[0]?.headers.host, 'b.test');
  });

  test('rejects an absolute-form target with a space in its host with 400 and forwards nothing', async () => {
    await assertRejected(`GET http://b .test/ HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects an absolute-form target with a tab in its host with 400 and forwards nothing', async () => {
    await assertRejected(`GET http://b\t.test/ HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects an absolute-form target with userinfo with 400 and forwards nothing', async () => {
    await assertRejected(`GET http://evil@b.test/ HTTP/1.1\r\n${H}\r\n`, 400);
  });
});

describe('header field syntax', () => {
  const cases: [string, string][] = [
    ['a NUL in a header value', 'X-Test: a\x00b'],
    ['a NUL in a header name', 'X-Te\x00st: a'],
    ['a bare CR inside a header value', 'X-Test: a\rb'],
    ['a bare LF inside a header value', 'X-Test: a\nb'],
    ['a DEL in a header value', 'X-Test: a\x7fb'],
    ['a DEL in a header name', 'X-Te\x7fst: a'],
    ['a space inside a header name', 'X Test: a'],
    ['a separator inside a header name', 'X(Test): a'],
    ['an empty header name', ': a'],
    ['a space before the colon', 'X-Test : a'],
    ['a tab before the colon', 'X-Test\t: a'],
    ['a header line without a colon', 'X-Test a'],
  ];
  for (const [what, line] of cases) {
    test(`rejects ${what} with 400 and forwards nothing`, async () => {
      await assertRejected(`GET / HTTP/1.1\r\n${H}${line}\r\n\r\n`, 400);
    });
  }

  test('rejects obs-fold (a continuation line) with 400 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/1.1\r\n${H}X-Test: a\r\n b\r\n\r\n`, 400);
  });

  test('rejects obs-fold with a tab with 400 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/1.1\r\n${H}X-Test: a\r\n\tb\r\n\r\n`, 400);
  });

  test('rejects a header line ending in a bare LF with 400 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/1.1\r\n${H}X-Test: a\nX-Other: b\r\n\r\n`, 400);
  });
});

describe('upgrades', () => {
  test('does not forward an h2c upgrade: the backend sees a plain request, with no Upgrade or HTTP2-Settings', async () => {
    const r = await send(
      `GET /h2c HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
    );
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.equal(a.seen.length, 1);
    const seen = a.seen[0]!;
    assert.equal(seen.url, '/h2c');
    assert.equal(seen.headers.upgrade, undefined, seen.rawHeaders.join(' | '));
    assert.equal(seen.headers['http2-settings'], undefined);
    assert.doesNotMatch(String(seen.headers.connection ?? ''), /upgrade/i);
  });
});

describe('request line', () => {
  test('rejects an HTTP/0.9 request line as soon as it arrives, with 400, forwarding nothing', async () => {
    // An HTTP/0.9 client sends this line and then waits: it has no head to end.
    await assertRejected('GET /\r\n', 400);
  });

  test('rejects an HTTP/0.9 request line followed by an empty line with 400 and forwards nothing', async () => {
    await assertRejected('GET /\r\n\r\n', 400);
  });

  test('refuses a head with bare LF line ends with 400 at once, not 408 at the head timeout', async () => {
    await assertRejected('GET / HTTP/1.0\n\n', 400);
  });

  test('refuses 1,000 header fields (under the byte limit) with 431 and forwards nothing', async () => {
    const many = Array.from({ length: 1_000 }, (_, i) => `X-${i}: v\r\n`).join('');
    await assertRejected(`GET / HTTP/1.1\r\n${H}${many}\r\n`, 431);
  });

  test('answers an explicit HTTP/0.9 version with 505 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/0.9\r\n${H}\r\n`, 505);
  });

  test('answers HTTP/2.0 in a request line with 505 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/2.0\r\n${H}\r\n`, 505);
  });

  test('answers HTTP/3.0 in a request line with 505 and forwards nothing', async () => {
    await assertRejected(`GET / HTTP/3.0\r\n${H}\r\n`, 505);
  });

  test('rejects a lower-case protocol name with 400 and forwards nothing', async () => {
    await assertRejected(`GET / http/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects a repeated-CR line prefix with 400 and forwards nothing', async () => {
    await assertRejected(`\r\r\nGET / HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects a bare CR before the request line with 400 and forwards nothing', async () => {
    await assertRejected(`\rGET / HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects a request target containing a space with 400 and forwards nothing', async () => {
    await assertRejected(`GET /a b HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects a request target containing a tab with 400 and forwards nothing', async () => {
    await assertRejected(`GET /a\tb HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects two spaces between method and target with 400 and forwards nothing', async () => {
    await assertRejected(`GET  / HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('rejects a request target with obs-text with 400 and forwards nothing', async () => {
    await assertRejected(`GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, 400);
  });
});

describe('pipelining', () => {
  test('answers a legitimate request, then rejects a pipelined duplicate-Host request; only the first is forwarded', async () => {
    const r = await send(`GET /first HTTP/1.1\r\n${H}\r\nGET /second HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`);
    assert.deepEqual(statusCodes(r.text), [200, 400], r.text);
    assert.equal(r.closed, true);
    assert.deepEqual(await barrier(), ['/first', `/barrier-${barriers}`]);
    assert.equal(b.seen.length, 0);
  });

  test('forwards a Content-Length body as the body, not as a second request', async () => {
    const inner = `GET /smuggled HTTP/1.1\r\n${H}\r\n`;
    const r = await send(
      `POST /outer HTTP/1.1\r\n${H}Content-Length: ${inner.length}\r\nConnection: close\r\n\r\n${inner}`,
    );
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.deepEqual(
      a.seen.map((s) => [s.url, s.bodyBytes]),
      [['/outer', inner.length]],
    );
  });

  test('ends a chunked body at its last chunk and answers what follows as its own request', async () => {
    const r = await send(
      `POST /outer HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );
    assert.deepEqual(statusCodes(r.text), [200, 200], r.text);
    assert.deepEqual(
      a.seen.map((s) => [s.url, s.bodyBytes]),
      [
        ['/outer', 3],
        ['/next', 0],
      ],
    );
  });
});
