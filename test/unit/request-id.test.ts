// The request ids kakehi makes are random version 4 UUIDs, like crypto.randomUUID's:
// access logs and backends may parse them as such.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newRequestId } from '../../src/proxy/request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRequestId', () => {
  it('makes version 4 UUIDs, all different, across several refills of its random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = newRequestId();
      assert.match(id, UUID_V4);
      seen.add(id);
    }
    assert.equal(seen.size, 1000);
  });

  it('uses every hex digit in the random positions', () => {
    const digits = new Set<string>();
    for (let i = 0; i < 200; i++)
      for (const c of newRequestId().replaceAll('-', '').slice(0, 12)) digits.add(c);
    assert.equal(digits.size, 16);
  });
});
