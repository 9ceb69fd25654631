// The response-body carrier, fed backend bytes split at every point: what goes
// to the client and where the body ends (the rest is the next response or a
// protocol error), for each way a body ends (RFC 9112 §6.3).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseResponseHead, type ResponseHead } from '../../src/proxy/http1-head.js';
import { ResponseBody } from '../../src/proxy/response-body.js';

function head(text: string): ResponseHead {
  const h = parseResponseHead(`${text}\r\n\r\n`);
  if ('error' in h) throw new Error(h.error);
  return h;
}

interface Fed {
  /** What the client was handed. */
  out: string;
  /** Bytes after the body's end (undefined while the body is not done). */
  extra: string | undefined;
  error: string | undefined;
}

/** Feeds `body` split at the given points, as the session does: each piece from 0. */
function feedSplit(res: ResponseHead, method: string, version: 10 | 11, body: Buffer, splits: number[]): Fed {
  let out = '';
  const b = new ResponseBody({
    bodyData: (chunk, from, to) => {
      out += chunk.toString('latin1', from, to);
    },
  });
  b.start(res, method, version === 11);
  if (b.done) return { out, extra: body.toString('latin1'), error: undefined };
  const points = [...new Set(splits.filter((s) => s > 0 && s < body.length))].sort((x, y) => x - y);
  let from = 0;
  for (const to of [...points, body.length]) {
    const piece = body.subarray(from, to);
    const end = b.feed(piece, 0);
    if (end < 0) return { out, extra: undefined, error: b.error };
    assert.ok(end <= piece.length);
    if (b.done) return { out, extra: body.toString('latin1', from + end), error: undefined };
    from = to;
  }
  return { out, extra: undefined, error: undefined };
}

const NEXT = 'HTTP/1.1 200 OK\r\n';
const CHUNKED = Buffer.from(`5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nT: 1\r\n\r\n${NEXT}`);
const CHUNKED_BODY = CHUNKED.toString('latin1', 0, CHUNKED.length - NEXT.length);

describe('response body', () => {
  it('carries a Content-Length body and stops at its end, at every split point', () => {
    const res = head('HTTP/1.1 200 OK\r\nContent-Length: 11');
    const input = Buffer.from(`hello world${NEXT}`);
    for (let i = 0; i <= input.length; i++) {
      for (const j of [i + 1, i + 5, input.length]) {
        const r = feedSplit(res, 'GET', 11, input, [i, j]);
        assert.deepEqual(r, { out: 'hello world', extra: NEXT, error: undefined }, `split ${i},${j}`);
      }
    }
  });

  it('passes a chunked body through unchanged to an HTTP/1.1 client, at every split point', () => {
    const res = head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked');
    for (let i = 0; i <= CHUNKED.length; i++) {
      for (const j of [i + 1, i + 7, CHUNKED.length]) {
        const r = feedSplit(res, 'GET', 11, CHUNKED, [i, j]);
        assert.deepEqual(r, { out: CHUNKED_BODY, extra: NEXT, error: undefined }, `split ${i},${j}`);
      }
    }
  });

  it('de-chunks for an HTTP/1.0 client, one byte at a time too', () => {
    const res = head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked');
    const every = Array.from({ length: CHUNKED.length }, (_, i) => i);
    for (const splits of [[], every, [3], [9, 10, 11]]) {
      const r = feedSplit(res, 'GET', 10, CHUNKED, splits);
      assert.deepEqual(r, { out: 'hello world', extra: NEXT, error: undefined }, `splits ${splits.length}`);
    }
  });

  it('hands nothing of a chunk whose framing is invalid to an HTTP/1.1 client', () => {
    const res = head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked');
    const r = feedSplit(res, 'GET', 11, Buffer.from('5\r\nhello!\r\n0\r\n\r\n'), []);
    assert.equal(r.out, '');
    assert.match(r.error ?? '', /CRLF/);
  });

  it('reads to the close when the length is unknown', () => {
    const res = head('HTTP/1.1 200 OK');
    const input = Buffer.from('all of it, whatever it holds');
    for (let i = 0; i <= input.length; i++) {
      const r = feedSplit(res, 'GET', 11, input, [i]);
      assert.deepEqual(r, { out: input.toString(), extra: undefined, error: undefined });
    }
  });

  for (const [name, text, method] of [
    ['a HEAD response', 'HTTP/1.1 200 OK\r\nContent-Length: 5', 'HEAD'],
    ['a 204', 'HTTP/1.1 204 No Content', 'GET'],
    ['a 304', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5', 'GET'],
    ['a zero Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 0', 'GET'],
  ] as const) {
    it(`has no body for ${name}: every byte is the next response`, () => {
      const r = feedSplit(head(text), method, 11, Buffer.from(NEXT), []);
      assert.deepEqual(r, { out: '', extra: NEXT, error: undefined });
    });
  }

  it('is the same whatever the split points, for any Content-Length body', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(300),
        fc.array(fc.nat(600), { maxLength: 8 }),
        (bytes, len, splits) => {
          const n = Math.min(len, bytes.length);
          const input = Buffer.from(bytes);
          const r = feedSplit(head(`HTTP/1.1 200 OK\r\nContent-Length: ${n}`), 'GET', 11, input, splits);
          if (n === 0) return; // no body: checked above
          assert.equal(r.out, input.toString('latin1', 0, n));
          if (n === input.length) assert.equal(r.extra, '');
          else assert.equal(r.extra, input.toString('latin1', n));
        },
      ),
      { numRuns: 500, seed: 20261203 },
    );
  });

  it('holds nothing of the last body once cleared', () => {
    const b = new ResponseBody({ bodyData: () => {} });
    b.start(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked'), 'GET', false);
    b.clear();
    assert.equal(b.mode, 'none');
    assert.equal(b.dechunk, false);
    assert.equal((b as unknown as { framer: unknown }).framer, undefined);
  });
});
