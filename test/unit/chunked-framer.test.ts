import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChunkedFramer } from '../../src/proxy/chunked-framer.js';

/** Feeds `input` split at the given points; returns the end index, the data seen, and the error. */
function feedSplit(
  input: Buffer,
  splits: number[],
): { end: number; data: string; error: string | undefined } {
  const f = new ChunkedFramer();
  const points = [...new Set(splits.filter((s) => s > 0 && s < input.length))].sort((a, b) => a - b);
  let data = '';
  let from = 0;
  for (const to of [...points, input.length]) {
    const end = f.feed(input, from, to, (a, b) => {
      data += input.toString('latin1', a, b);
    });
    if (end < 0) return { end, data, error: f.error };
    if (f.done) return { end, data, error: undefined };
    from = to;
  }
  return { end: -2, data, error: 'incomplete' };
}

const BODY = Buffer.from(
  '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\nGET /next HTTP/1.1\r\n',
);
const END = BODY.indexOf('GET /next');

describe('chunked framer', () => {
  it('finds the end of a chunked body with extensions and trailers, at every split point', () => {
    for (let i = 0; i <= BODY.length; i++) {
      for (const j of [i + 1, i + 7, BODY.length]) {
        const r = feedSplit(BODY, [i, j]);
        assert.equal(r.error, undefined, `split ${i},${j}`);
        assert.equal(r.end, END, `split ${i},${j}`);
        assert.equal(r.data, 'hello world');
      }
    }
  });

  it('takes a size written with leading zeros, counting only its significant digits', () => {
    const body = Buffer.from('0000000000000000005\r\nhello\r\n000\r\n\r\n');
    const r = feedSplit(body, []);
    assert.equal(r.error, undefined);
    assert.equal(r.end, body.length);
    assert.equal(r.data, 'hello');
    assert.match(feedSplit(Buffer.from('0001000000000000\r\n'), []).error ?? '', /too large/);
  });

  it('finds the end when fed one byte at a time', () => {
    const r = feedSplit(
      BODY,
      Array.from({ length: BODY.length }, (_, i) => i),
    );
    assert.equal(r.end, END);
    assert.equal(r.data, 'hello world');
  });

  for (const [name, text, reason] of [
    ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n', /chunk size/],
    ['data longer than its size', '5\r\nhello!\r\n0\r\n\r\n', /CRLF/],
    ['a non-hex size', 'g\r\n', /chunk size expected/],
    ['a negative size', '-5\r\n', /chunk size expected/],
    ['an oversized size', '1000000000000\r\n', /too large/],
    ['whitespace after the size without an extension', '5 \r\nhello\r\n', /after chunk size/],
    ['a bare LF in an extension', '5;a\nb\r\n', /extension/],
    ['folding in a trailer', '0\r\n folded\r\n\r\n', /folding/],
    ['a bare LF ending the body', '0\r\n\n', /invalid character in a trailer/],
  ] as const) {
    it(`rejects ${name}`, () => {
      const r = feedSplit(Buffer.from(text), []);
      assert.equal(r.end, -1);
      assert.match(r.error ?? '', reason);
    });
  }

  it('never throws and never reads past the input on arbitrary bytes split anywhere', () => {
    const seed = 20261127;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.nat(200), { maxLength: 6 }),
        (bytes, splits) => {
          const input = Buffer.from(bytes);
          const r = feedSplit(input, splits);
          assert.ok(r.end >= -2 && r.end <= input.length);
        },
      ),
      { numRuns: 2000, seed },
    );
  });

  it('gives the same verdict whatever the split points, for well-formed bodies', () => {
    const chunk = fc.string({ minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(
        fc.array(chunk, { maxLength: 5 }),
        fc.array(fc.nat(400), { maxLength: 8 }),
        (chunks, splits) => {
          const text = `${chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('')}0\r\n\r\n`;
          const input = Buffer.from(`${text}TAIL`);
          const r = feedSplit(input, splits);
          assert.equal(r.error, undefined);
          assert.equal(r.end, Buffer.byteLength(text));
          assert.equal(Buffer.from(r.data, 'latin1').toString(), chunks.join(''));
        },
      ),
      { numRuns: 1000, seed: 7 },
    );
  });
});
