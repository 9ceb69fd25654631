import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs } from '../../src/backoff.js';

describe('backoffMs', () => {
  it('doubles from initialMs per retry and stops at maxMs', () => {
    const p = { initialMs: 100, maxMs: 1_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, p)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
  });

  it('stops growing at maxExponent even below maxMs', () => {
    assert.equal(backoffMs(10, { initialMs: 1, maxMs: 1_000_000, maxExponent: 3 }), 8);
  });

  it('takes off up to the jitter share at random, and nothing without jitter', () => {
    const p = { initialMs: 400, maxMs: 1_000, jitter: 0.5 };
    assert.equal(backoffMs(0, p, 0), 400);
    assert.equal(backoffMs(0, p, 0.5), 300);
    assert.equal(backoffMs(0, p, 1), 200);
    assert.equal(backoffMs(0, { initialMs: 400, maxMs: 1_000 }, 0.9), 400);
  });

  it('uses the given factor', () => {
    assert.equal(backoffMs(2, { initialMs: 10, maxMs: 1_000, factor: 3 }), 90);
  });
});
