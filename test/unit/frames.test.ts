// parseRequest, encodeResponse and parseResponse: a bad line gets an error frame
// naming what is wrong (so the connection stays usable), and nothing a client
// sends makes parsing throw.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  encodeRequest,
  encodeResponse,
  parseRequest,
  parseResponse,
  REQUEST_TYPES,
  tooLargeResponse,
} from '../../src/command/frames.js';
import { ERROR_CODES } from '../../src/errors.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);

function refusal(line: string) {
  const r = parseRequest(line);
  assert.equal(r.ok, false, `${line} should be refused`);
  if (r.ok || r.response.status !== 'error') throw new Error('unreachable');
  return { id: r.response.id, ...r.response.error };
}

describe('parseRequest', () => {
  it('splits a request into id, type and the remaining body', () => {
    const r = parseRequest('{"id":"7","type":"list_backends","cluster":"api"}');
    assert.deepEqual(r, { ok: true, request: { id: '7', type: 'list_backends', body: { cluster: 'api' } } });
  });

  it('accepts numeric ids', () => {
    const r = parseRequest('{"id":42,"type":"status"}');
    assert.equal(r.ok && r.request.id, 42);
  });

  it('refuses invalid JSON with KKH_REQUEST_INVALID_JSON and a null id', () => {
    const e = refusal('{"id":1,"type":');
    assert.equal(e.code, 'KKH_REQUEST_INVALID_JSON');
    assert.equal(e.id, null);
    assert.match(e.message, /not valid JSON/);
  });

  it('refuses a JSON value that is not an object', () => {
    for (const line of ['[1,2]', '"status"', 'null', '3']) {
      assert.equal(refusal(line).code, 'KKH_REQUEST_INVALID_JSON', line);
    }
  });

  it('refuses a missing or unusable id, naming the id field', () => {
    for (const line of ['{"type":"status"}', '{"id":{},"type":"status"}', '{"id":"","type":"status"}']) {
      const e = refusal(line);
      assert.equal(e.code, 'KKH_REQUEST_INVALID', line);
      assert.deepEqual(
        e.issues?.map((i) => i.path),
        ['id'],
      );
    }
  });

  it('refuses a missing type, echoing the id and listing the valid types', () => {
    const e = refusal('{"id":"9"}');
    assert.equal(e.code, 'KKH_REQUEST_INVALID');
    assert.equal(e.id, '9');
    assert.equal(e.issues?.[0]?.path, 'type');
    for (const t of REQUEST_TYPES) assert.ok(e.message.includes(t), t);
  });

  it('refuses an unknown type with KKH_REQUEST_UNKNOWN_TYPE, listing the valid types', () => {
    const e = refusal('{"id":1,"type":"add_certificate_please"}');
    assert.equal(e.code, 'KKH_REQUEST_UNKNOWN_TYPE');
    assert.match(e.message, /"add_certificate_please"/);
    assert.match(e.message, /list_clusters/);
  });

  it('uses only error codes listed in src/errors.ts', () => {
    for (const line of ['x', '{"type":"status"}', '{"id":1}', '{"id":1,"type":"nope"}']) {
      assert.ok(refusal(line).code in ERROR_CODES, line);
    }
    assert.ok(tooLargeResponse(10).status === 'error');
  });

  it(`never throws on arbitrary text, and every refusal encodes as one line (seed ${SEED})`, () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.json(),
      fc
        .record({ id: fc.anything(), type: fc.oneof(fc.constantFrom(...REQUEST_TYPES), fc.anything()) })
        .map((o) => JSON.stringify(o) ?? 'undefined'),
    );
    fc.assert(
      fc.property(text, (line) => {
        const r = parseRequest(line);
        if (!r.ok) {
          const encoded = encodeResponse(r.response);
          assert.equal(encoded.indexOf('\n'), encoded.length - 1);
          assert.equal(typeof parseResponse(encoded.trimEnd()), 'object');
        }
      }),
      { numRuns: 1000, seed: SEED },
    );
  });
});

describe('encodeRequest and parseResponse', () => {
  it('keeps the id and type over body fields of the same name', () => {
    assert.equal(
      encodeRequest(1, 'status', { id: 'x', type: 'y', a: 1 }),
      '{"id":1,"type":"status","a":1}\n',
    );
  });

  it('reads every response status and refuses what is not the protocol', () => {
    assert.deepEqual(parseResponse('{"id":1,"status":"ok","result":{"a":1}}'), {
      id: 1,
      status: 'ok',
      result: { a: 1 },
    });
    assert.deepEqual(parseResponse('{"id":"a","status":"processing","message":"m"}'), {
      id: 'a',
      status: 'processing',
      message: 'm',
    });
    const err = parseResponse(
      '{"id":2,"status":"error","error":{"code":"KKH_X","message":"no","issues":[{"path":"a","reason":"b"}]}}',
    );
    assert.deepEqual(err, {
      id: 2,
      status: 'error',
      error: { code: 'KKH_X', message: 'no', issues: [{ path: 'a', reason: 'b' }] },
    });
    assert.equal(typeof parseResponse('{"id":1,"status":"maybe"}'), 'string');
    assert.equal(typeof parseResponse('not json'), 'string');
    assert.equal(typeof parseResponse('{"id":1,"status":"event","event":{}}'), 'string');
  });
});
