// The request-body framer, fed client bytes split at every point: where the body
// ends is where the next pipelined request begins, so it must not move with the split.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRequestHead, type RequestHead } from '../../src/proxy/http1-head.js';
import { RequestBody } from '../../src/proxy/request-body.js';

function head(text: string): RequestHead {
  const h = parseRequestHead(`${text}\r\n\r\n`);
  if ('error' in h) throw new Error(h.error);
  return h;
}

/** The body's end as an index into input (-1: framing error, -2: not ended), fed in pieces. */
function endOf(req: RequestHead, input: Buffer, splits: number[]): { end: number; error?: string } {
  const b = new RequestBody();
  b.start(req);
  if (b.done) return { end: 0 };
  const points = [...new Set(splits.filter((s) => s > 0 && s < input.length))].sort((x, y) => x - y);
  let from = 0;
  for (const to of [...points, input.length]) {
    const piece = input.subarray(from, to);
    const end = b.feed(piece, 0);
    if (end < 0) return { end: -1, ...(b.error === undefined ? {} : { error: b.error }) };
    if (b.done) return { end: from + end };
    from = to;
  }
  return { end: -2 };
}

const NEXT = 'GET /next HTTP/1.1\r\n';

describe('request body', () => {
  it('ends a Content-Length body at its length, at every split point', () => {
    const input = Buffer.from(`hello${NEXT}`);
    const req = head('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5');
    for (let i = 0; i <= input.length; i++) assert.deepEqual(endOf(req, input, [i, i + 3]), { end: 5 });
  });

  it('ends a chunked body after its trailers, one byte at a time too', () => {
    const body = '3\r\nabc\r\n0\r\nX: y\r\n\r\n';
    const input = Buffer.from(body + NEXT);
    const req = head('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked');
    for (let i = 0; i <= input.length; i++) assert.deepEqual(endOf(req, input, [i]), { end: body.length });
    const every = Array.from({ length: input.length }, (_, i) => i);
    assert.deepEqual(endOf(req, input, every), { end: body.length });
  });

  it('reports a chunked framing error', () => {
    const req = head('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked');
    const r = endOf(req, Buffer.from('3\r\nabcd\r\n'), []);
    assert.equal(r.end, -1);
    assert.match(r.error ?? '', /CRLF/);
  });

  it('has no body without Content-Length or chunked: every byte is the next request', () => {
    assert.deepEqual(endOf(head('GET / HTTP/1.1\r\nHost: a'), Buffer.from(NEXT), []), { end: 0 });
  });
});
