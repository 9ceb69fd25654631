// FrameDecoder: the same frames whatever the segmentation (every split point, one
// byte at a time), the byte bound as one clean too_large, and fast-check over
// arbitrary bytes against a naive oracle: never a crash, always frames or too_large.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type DecodedFrame, FrameDecoder } from '../../src/command/frame-decoder.js';

const enc = new TextEncoder();
const SEED = Number(process.env.FC_SEED ?? 20261127);

function feed(decoder: FrameDecoder, chunks: Uint8Array[]): DecodedFrame[] {
  return chunks.flatMap((c) => decoder.push(c));
}
function lines(out: DecodedFrame[]): string[] {
  return out.map((f) => (f.kind === 'frame' ? f.line : `<too_large ${f.limit}>`));
}
function splitAt(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}

// Multi-byte characters (2, 3 and 4 bytes), CRLF, blank and whitespace-only lines.
const STREAM = enc.encode(
  '{"id":1,"type":"status"}\n' +
    '\n' +
    '{"id":"é","type":"query_route","host":"日本.example","path":"/🎋"}\r\n' +
    '   \r\n' +
    '{"id":3,"type":"list_clusters"}\n',
);
const EXPECTED = [
  '{"id":1,"type":"status"}',
  '{"id":"é","type":"query_route","host":"日本.example","path":"/🎋"}',
  '{"id":3,"type":"list_clusters"}',
];

describe('FrameDecoder', () => {
  it('yields the same frames for the whole stream in one chunk', () => {
    assert.deepEqual(lines(new FrameDecoder().push(STREAM)), EXPECTED);
  });

  it('yields the same frames when split at every single point', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      assert.deepEqual(lines(feed(new FrameDecoder(), splitAt(STREAM, [i]))), EXPECTED, `split at ${i}`);
    }
  });

  it('yields the same frames when split at every pair of points', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      for (let j = i; j <= STREAM.length; j++) {
        assert.deepEqual(
          lines(feed(new FrameDecoder(), splitAt(STREAM, [i, j]))),
          EXPECTED,
          `split ${i},${j}`,
        );
      }
    }
  });

  it('yields the same frames fed one byte at a time, holding nothing after the last LF', () => {
    const d = new FrameDecoder();
    const out: DecodedFrame[] = [];
    for (const b of STREAM) out.push(...d.push(Uint8Array.of(b)));
    assert.deepEqual(lines(out), EXPECTED);
    assert.equal(d.bufferedBytes, 0);
  });

  it('does not let a later push change a frame already returned (it copies the caller buffer)', () => {
    const d = new FrameDecoder();
    const buf = Buffer.from('{"id":1,');
    assert.deepEqual(d.push(buf), []);
    buf.fill(0x20); // a socket may reuse its buffer
    assert.deepEqual(lines(d.push(enc.encode('"type":"status"}\n'))), ['{"id":1,"type":"status"}']);
  });

  it('accepts a frame of exactly the limit, with LF or CRLF, however split', () => {
    const limit = 32;
    const body = 'x'.repeat(limit);
    for (const ending of ['\n', '\r\n']) {
      const bytes = enc.encode(body + ending);
      for (let i = 0; i <= bytes.length; i++) {
        assert.deepEqual(lines(feed(new FrameDecoder({ maxFrameBytes: limit }), splitAt(bytes, [i]))), [
          body,
        ]);
      }
    }
  });

  it('answers a frame one byte over the limit with too_large once, then ignores all input', () => {
    const limit = 32;
    const d = new FrameDecoder({ maxFrameBytes: limit });
    const out = d.push(enc.encode(`ok\n${'x'.repeat(limit + 1)}\nafter\n`));
    assert.deepEqual(lines(out), ['ok', '<too_large 32>']);
    assert.equal(d.failed, true);
    assert.deepEqual(d.push(enc.encode('more\n')), []);
    assert.equal(d.bufferedBytes, 0);
  });

  it('answers too_large before the LF arrives, buffering at most limit + 1 bytes', () => {
    const limit = 64;
    const d = new FrameDecoder({ maxFrameBytes: limit });
    const out: DecodedFrame[] = [];
    for (let i = 0; i < limit * 3 && out.length === 0; i++) {
      out.push(...d.push(enc.encode('y')));
      assert.ok(d.bufferedBytes <= limit + 1, `buffered ${d.bufferedBytes}`);
    }
    assert.deepEqual(lines(out), ['<too_large 64>']);
  });

  it('decodes a 4 MiB frame sent in 64 KiB pieces, and refuses 4 MiB + 1', () => {
    const limit = 4 * 1024 * 1024;
    const big = `{"id":1,"type":"status","pad":"${'a'.repeat(limit - 40)}"}`;
    const bytes = enc.encode(`${big}\n`);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536));
    const out = feed(new FrameDecoder(), chunks);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.kind === 'frame' && out[0]!.line.length, big.length);
    const over = enc.encode(`${'b'.repeat(limit + 1)}\n`);
    assert.deepEqual(lines(new FrameDecoder().push(over)), [`<too_large ${limit}>`]);
  });

  it('turns invalid UTF-8 into U+FFFD instead of throwing', () => {
    const out = new FrameDecoder().push(Uint8Array.of(0x7b, 0xff, 0xc3, 0x0a));
    assert.deepEqual(lines(out), ['{\uFFFD\uFFFD']);
  });
});

/** The naive reading of the protocol: split on LF, drop one CR, bound the rest. */
function oracle(all: Uint8Array, limit: number): string[] {
  const out: string[] = [];
  const text = new TextDecoder();
  let start = 0;
  for (;;) {
    const lf = all.indexOf(0x0a, start);
    if (lf < 0) {
      if (all.length - start > limit + 1) out.push(`<too_large ${limit}>`);
      return out;
    }
    let end = lf;
    if (end > start && all[end - 1] === 0x0d) end--;
    if (end - start > limit) {
      out.push(`<too_large ${limit}>`);
      return out;
    }
    const line = text.decode(all.subarray(start, end));
    if (line.trim() !== '') out.push(line);
    start = lf + 1;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// Pieces likely to hit the edges: line endings, multi-byte characters, runs near the limit.
const piece = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc.constantFrom('\n', '\r\n', '\r', ' ', 'é', '日', '🎋').map((s) => enc.encode(s)),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => enc.encode(`${s}\n`)),
  fc.integer({ min: 0, max: 40 }).map((n) => enc.encode(`${'z'.repeat(n)}\n`)),
);

describe('FrameDecoder properties', () => {
  it(`never throws and agrees with the naive oracle on arbitrary bytes split anywhere (seed ${SEED})`, () => {
    console.log(`fast-check seed ${SEED} (set FC_SEED to replay)`);
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.integer({ min: 1, max: 48 }),
        (pieces, cuts, limit) => {
          const all = concat(pieces);
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
          const d = new FrameDecoder({ maxFrameBytes: limit });
          const out = feed(d, splitAt(all, points));
          assert.deepEqual(lines(out), oracle(all, limit));
          // too_large only ever last, at most once; the buffer stays within its bound.
          const tooLarge = out.findIndex((f) => f.kind === 'too_large');
          assert.ok(tooLarge === -1 || tooLarge === out.length - 1);
          assert.ok(d.bufferedBytes <= limit + 1);
        },
      ),
      { numRuns: 2000, seed: SEED },
    );
  });

  it(`returns every JSON request line intact however the stream is cut (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        (values, cuts, crlf) => {
          const sent = values.map((v, i) => JSON.stringify({ id: i, type: 'status', v }));
          const all = enc.encode(sent.map((l) => l + (crlf ? '\r\n' : '\n')).join(''));
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
          assert.deepEqual(lines(feed(new FrameDecoder(), splitAt(all, points))), sent);
        },
      ),
      { numRuns: 1000, seed: SEED },
    );
  });
});
