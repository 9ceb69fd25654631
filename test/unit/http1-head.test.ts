import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRequestHead, parseResponseHead, type RequestHead } from '../../src/proxy/http1-head.js';

const req = (lines: string[]) => parseRequestHead(`${lines.join('\r\n')}\r\n\r\n`);

function ok(r: ReturnType<typeof parseRequestHead>): RequestHead {
  if ('error' in r) assert.fail(`expected a request, got error: ${r.error}`);
  return r;
}

function rejected(r: ReturnType<typeof parseRequestHead>, status: number, reason: RegExp): void {
  assert.ok('error' in r, 'expected a rejection');
  assert.equal(r.status, status);
  assert.match(r.error, reason);
}

describe('request head parser', () => {
  it('parses method, target, path without query, version and headers in order', () => {
    const r = ok(
      req(['POST /a/b?x=1 HTTP/1.1', 'Host: example.com', 'X-One: 1', 'x-two:   2  ', 'Content-Length: 5']),
    );
    assert.equal(r.method, 'POST');
    assert.equal(r.target, '/a/b?x=1');
    assert.equal(r.path, '/a/b');
    assert.equal(r.version, 11);
    assert.deepEqual(r.names, ['Host', 'X-One', 'x-two', 'Content-Length']);
    assert.deepEqual(r.values, ['example.com', '1', '2', '5']);
    assert.equal(r.contentLength, 5);
    assert.equal(r.chunked, false);
    assert.equal(r.close, false);
  });

  it('rejects Content-Length with Transfer-Encoding in either order', () => {
    rejected(
      req(['POST / HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Transfer-Encoding: chunked']),
      400,
      /both/,
    );
    rejected(
      req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Content-Length: 3']),
      400,
      /both/,
    );
  });

  it('rejects duplicate Content-Length even with equal values', () => {
    rejected(
      req(['POST / HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 3']),
      400,
      /more than one Content-Length/,
    );
  });

  it('rejects non-numeric Content-Length', () => {
    for (const v of ['-1', '1e3', '0x10', '3,3', '']) {
      rejected(req(['POST / HTTP/1.1', 'Host: a', `Content-Length: ${v}`]), 400, /Content-Length/);
    }
  });

  it('rejects duplicate and missing Host', () => {
    rejected(req(['GET / HTTP/1.1', 'Host: a', 'Host: b']), 400, /more than one Host/);
    rejected(req(['GET / HTTP/1.1']), 400, /without Host/);
  });

  it('accepts HTTP/1.0 without Host and closes after it unless keep-alive is asked', () => {
    const r = ok(req(['GET / HTTP/1.0']));
    assert.equal(r.host, '');
    assert.equal(r.close, true);
    assert.equal(ok(req(['GET / HTTP/1.0', 'Connection: keep-alive'])).close, false);
  });

  it('refuses HTTP/0.9 and unknown versions', () => {
    rejected(parseRequestHead('GET /\r\n\r\n'), 400, /HTTP\/0\.9/);
    rejected(req(['GET / HTTP/2.0', 'Host: a']), 505, /not supported/);
    rejected(req(['GET / HTTP/1.1x', 'Host: a']), 400, /HTTP\/1\.0 or HTTP\/1\.1/);
  });

  it('rejects control characters in header values and invalid header names', () => {
    for (const bad of ['X: a\x00b', 'X: a\x7fb', 'X: a\rb', 'X\x01: a', 'X Y: a', 'X : a', ': a', 'X']) {
      rejected(req(['GET / HTTP/1.1', 'Host: a', bad]), 400, /./);
    }
  });

  it('refuses more header fields than the limit with 431, and takes exactly the limit', () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: v`);
    const atLimit = parseRequestHead(
      `${['GET / HTTP/1.1', 'Host: a', ...fields(9)].join('\r\n')}\r\n\r\n`,
      10,
    );
    assert.ok(!('error' in atLimit), JSON.stringify(atLimit));
    rejected(
      parseRequestHead(`${['GET / HTTP/1.1', 'Host: a', ...fields(10)].join('\r\n')}\r\n\r\n`, 10),
      431,
      /more than 10 header fields/,
    );
  });

  it('rejects bare LF line endings and obsolete line folding', () => {
    rejected(parseRequestHead('GET / HTTP/1.1\nHost: a\r\n\r\n'), 400, /bare CR or LF/);
    rejected(req(['GET / HTTP/1.1', 'Host: a', 'X: 1', ' folded']), 400, /folding/);
  });

  it('accepts only chunked as Transfer-Encoding', () => {
    assert.equal(ok(req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: Chunked'])).chunked, true);
    rejected(req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip, chunked']), 501, /unsupported/);
    rejected(req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, gzip']), 400, /unsupported/);
    rejected(req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: xchunked']), 400, /unsupported/);
    rejected(
      req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked']),
      400,
      /unsupported/,
    );
    rejected(req(['POST / HTTP/1.0', 'Transfer-Encoding: chunked']), 400, /HTTP\/1\.0/);
  });

  it('takes the host of an absolute-form target and forwards origin-form', () => {
    const r = ok(req(['GET http://Example.com:8080/p?q HTTP/1.1', 'Host: other']));
    assert.equal(r.host, 'Example.com:8080');
    assert.equal(r.target, '/p?q');
    assert.equal(r.path, '/p');
    rejected(req(['GET ftp://x/ HTTP/1.1', 'Host: a']), 400, /absolute/);
    rejected(req(['GET http://user@x/ HTTP/1.1', 'Host: a']), 400, /host/);
  });

  it('rejects an invalid Host or port', () => {
    rejected(req(['GET / HTTP/1.1', 'Host: a b']), 400, /Host/);
    rejected(req(['GET / HTTP/1.1', 'Host: a:0']), 400, /port/);
    rejected(req(['GET / HTTP/1.1', 'Host: a:70000']), 400, /port/);
  });

  it('keeps a valid X-Request-Id and drops an invalid one', () => {
    assert.equal(ok(req(['GET / HTTP/1.1', 'Host: a', 'X-Request-Id: abc-123'])).requestId, 'abc-123');
    assert.equal(ok(req(['GET / HTTP/1.1', 'Host: a', 'X-Request-Id: a b'])).requestId, undefined);
    assert.equal(
      ok(req(['GET / HTTP/1.1', 'Host: a', `X-Request-Id: ${'x'.repeat(201)}`])).requestId,
      undefined,
    );
  });

  it('sees an upgrade only when Connection names it', () => {
    const up = ok(
      req([
        'GET / HTTP/1.1',
        'Host: a',
        'Connection: keep-alive, Upgrade',
        'Upgrade: WebSocket',
        'Sec-WebSocket-Key: k',
      ]),
    );
    assert.equal(up.upgrade, 'websocket');
    assert.equal(up.wsKey, true);
    assert.equal(ok(req(['GET / HTTP/1.1', 'Host: a', 'Upgrade: websocket'])).upgrade, undefined);
  });

  it('rejects a request target with spaces or control characters', () => {
    rejected(parseRequestHead('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'), 400, /./);
    rejected(parseRequestHead('GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n'), 400, /./);
  });
});

describe('response head parser', () => {
  const res = (lines: string[]) => parseResponseHead(`${lines.join('\r\n')}\r\n\r\n`);

  it('parses status, reason and framing', () => {
    const r = res(['HTTP/1.1 200 OK', 'Content-Length: 12', 'Keep-Alive: timeout=5, max=100']);
    assert.ok(!('error' in r));
    assert.equal(r.status, 200);
    assert.equal(r.reason, 'OK');
    assert.equal(r.contentLength, 12);
    assert.equal(r.keepAliveTimeoutS, 5);
    assert.equal(r.close, false);
  });

  it('lets Transfer-Encoding override Content-Length', () => {
    const r = res(['HTTP/1.1 200 OK', 'Content-Length: 12', 'Transfer-Encoding: chunked']);
    assert.ok(!('error' in r));
    assert.equal(r.chunked, true);
    assert.equal(r.contentLength, -1);
  });

  it('rejects conflicting Content-Length values and garbage status lines', () => {
    assert.ok('error' in res(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 2']));
    assert.ok('error' in res(['HTTP/1.1 2000 OK']));
    assert.ok('error' in res(['ICY 200 OK']));
    assert.ok('error' in res(['HTTP/1.1 200 OK', 'X: a\x00']));
  });

  it('accepts a status line without a reason phrase', () => {
    const r = res(['HTTP/1.1 204']);
    assert.ok(!('error' in r));
    assert.equal(r.status, 204);
  });

  it('treats HTTP/1.0 responses as closing unless they keep alive', () => {
    const r = res(['HTTP/1.0 200 OK', 'Content-Length: 0']);
    assert.ok(!('error' in r));
    assert.equal(r.close, true);
  });
});
