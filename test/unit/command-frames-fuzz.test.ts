// Fuzzing the command socket's framing and request parsing: any bytes in any
// segmentation give back exactly the non-blank lines sent (or one too_large and
// nothing after), and any line parses to a request or a refusal with a named
// KKH_ code, never an exception.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameDecoder } from '../../src/command/frame-decoder.js';
import { encodeRequest, parseRequest, parseResponse, REQUEST_TYPES } from '../../src/command/frames.js';
import { ERROR_CODES } from '../../src/errors.js';
import { arbEdgeString, arbValue, FUZZ_TEST, fuzz } from '../helpers/fuzz.js';

const REFUSALS = ['KKH_REQUEST_INVALID_JSON', 'KKH_REQUEST_INVALID', 'KKH_REQUEST_UNKNOWN_TYPE'];

/** Bytes cut into pieces at the given points. */
function pieces(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

// Lines of mostly line-ish bytes: LF and CR often, so framing edges come up.
const arbBytes = fc
  .array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x0a, 0x0d, 0x20, 0x7b, 0x7d)), {
    maxLength: 300,
  })
  .map((a) => Uint8Array.from(a));

describe('command frame fuzz', () => {
  it(
    'any bytes, any segmentation: the frames are the non-blank lines, CR-stripped, bounded',
    FUZZ_TEST,
    () => {
      fuzz(
        'frame decoder',
        fc.property(
          arbBytes,
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.integer({ min: 1, max: 64 }),
          (bytes, cuts, max) => {
            const d = new FrameDecoder({ maxFrameBytes: max });
            const got: string[] = [];
            let tooLarge = 0;
            for (const p of pieces(bytes, cuts)) {
              for (const f of d.push(p)) {
                if (f.kind === 'frame') {
                  assert.equal(tooLarge, 0, 'no frame after too_large');
                  got.push(f.line);
                } else tooLarge++;
              }
              assert.ok(d.bufferedBytes <= max + 1, `buffered ${d.bufferedBytes} over ${max} + 1`);
            }
            assert.ok(tooLarge <= 1);
            // The same bytes whole, decoded the way the decoder promises.
            const lines = Buffer.from(bytes).toString('latin1').split('\n');
            lines.pop(); // the unfinished tail is held, not returned
            const expected: string[] = [];
            for (const raw of lines) {
              const bytesOfLine = Buffer.from(raw, 'latin1');
              const end = bytesOfLine.at(-1) === 0x0d ? bytesOfLine.length - 1 : bytesOfLine.length;
              if (end > max) break;
              const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytesOfLine.subarray(0, end));
              if (text.trim() !== '') expected.push(text);
            }
            if (tooLarge === 0) assert.deepEqual(got, expected);
            else assert.deepEqual(got, expected.slice(0, got.length));
          },
        ),
      );
    },
  );

  it('any text line parses to a request or a named refusal', FUZZ_TEST, () => {
    fuzz(
      'parseRequest text',
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), (line) => {
        const r = parseRequest(line);
        if (!r.ok) {
          assert.ok(REFUSALS.includes(r.response.status === 'error' ? r.response.error.code : ''));
          assert.ok(r.response.status === 'error' && r.response.error.message.length > 0);
        } else assert.ok(REQUEST_TYPES.includes(r.request.type));
      }),
    );
  });

  it(
    'request-shaped objects with any id, type and body parse to a request or a named refusal, never throwing',
    FUZZ_TEST,
    () => {
      const arbType = fc.oneof(fc.constantFrom(...REQUEST_TYPES), arbEdgeString, arbValue);
      fuzz(
        'parseRequest objects',
        fc.property(
          arbValue,
          arbType,
          fc.dictionary(arbEdgeString, arbValue, { maxKeys: 4 }),
          (id, type, body) => {
            const line = JSON.stringify({ ...body, id, type });
            const r = parseRequest(line);
            if (r.ok) {
              assert.equal(r.request.type, type);
              // What a client encodes is what the server reads back.
              const again = parseRequest(
                encodeRequest(r.request.id, r.request.type, r.request.body).trimEnd(),
              );
              assert.deepEqual(again, r);
            } else if (r.response.status === 'error') assert.ok(REFUSALS.includes(r.response.error.code));
          },
        ),
      );
    },
  );

  it('any response line reads as a frame or a sentence saying what is wrong', FUZZ_TEST, () => {
    fuzz(
      'parseResponse',
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          arbValue.map((v) => JSON.stringify(v) ?? ''),
        ),
        (line) => {
          const r = parseResponse(line);
          if (typeof r === 'string') assert.ok(r.length > 0);
          else if (r.status === 'error')
            assert.ok(r.error.code in ERROR_CODES || typeof r.error.code === 'string');
        },
      ),
    );
  });
});
