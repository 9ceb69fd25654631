// The settle rules with time passed in: reads wait for a quiet window, unfinished
// or invalid readings never take away the served certificate, and a pair is dropped
// only when a scan a full window after it vanished still misses it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { GoodCert, Reading } from '../../connectors/pki/reader.js';
import { MAX_RETRY_MS, Settler } from '../../connectors/pki/settle.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const W = 500;

function good(fp: string): GoodCert {
  return {
    facts: {
      fingerprint: fp,
      names: ['a.example'],
      subject: 'CN=a',
      issuer: 'CN=ca',
      serial: '01',
      not_before: '2026-01-01T00:00:00.000Z',
      not_after: '2027-01-01T00:00:00.000Z',
      key_type: 'ec',
      chain_length: 0,
      chain_fingerprints: [],
      self_signed: false,
    },
    certificate: `leaf-${fp}`,
    chain: '',
    key: 'k',
    materialHash: `h-${fp}`,
  };
}
const ok = (fp: string): Reading => ({ kind: 'ok', cert: good(fp) });
const present = (entries: [string, string, number?][]) =>
  new Map(entries.map(([k, sig, m]) => [k, { signature: sig, modifiedAt: m ?? 1e15 }]));

describe('pki settle', () => {
  it('a new pair written just now waits one window; an old file is read at once', () => {
    const s = new Settler(W);
    s.observe(
      present([
        ['fresh', 's1', 1000],
        ['old', 's2', 0],
      ]),
      1000,
    );
    assert.deepEqual(s.due(1000), ['old']);
    assert.deepEqual(s.due(1000 + W - 1), ['old']);
    assert.deepEqual(s.due(1000 + W).sort(), ['fresh', 'old']);
  });

  it('a signature that keeps moving is not read; it is read once quiet', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 0]]), 0);
    s.record('p', 's1', ok('A'), 0);
    s.observe(present([['p', 's2']]), 1000);
    s.observe(present([['p', 's3']]), 1300);
    assert.deepEqual(s.due(1700), []);
    assert.deepEqual(s.due(1800), ['p']);
  });

  it('incomplete, unreadable and invalid readings keep the last good certificate', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 0]]), 0);
    s.record('p', 's1', ok('A'), 0);
    for (const r of [
      { kind: 'incomplete', reason: 'cut' },
      { kind: 'unreadable', reason: 'EACCES' },
      { kind: 'invalid', reason: 'key: does not match', issues: [] },
    ] as Reading[]) {
      s.observe(present([['p', `s-${r.kind}`]]), 1000);
      s.record('p', `s-${r.kind}`, r, 2000);
      assert.equal(s.get('p')?.state, r.kind);
      assert.equal(s.get('p')?.good?.facts.fingerprint, 'A');
      assert.equal(s.serving().length, 1);
    }
  });

  it('an unfinished reading is retried after a window even if nothing moves; invalid is not', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 0]]), 0);
    s.record('p', 's1', { kind: 'incomplete', reason: 'cut' }, 0);
    assert.deepEqual(s.due(W - 1), []);
    assert.deepEqual(s.due(W), ['p']);
    s.record('p', 's1', { kind: 'invalid', reason: 'bad', issues: [] }, W);
    assert.deepEqual(s.due(10 * W), []);
  });

  it('retries of a pair that stays unfinished back off, and a change resets them', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 0]]), 0);
    const cut: Reading = { kind: 'incomplete', reason: 'cut' };
    s.record('p', 's1', cut, 0);
    assert.equal(s.get('p')?.retryAt, W);
    s.record('p', 's1', cut, W);
    assert.equal(s.get('p')?.retryAt, W + 2 * W);
    s.record('p', 's1', cut, 3 * W);
    assert.equal(s.get('p')?.retryAt, 3 * W + 4 * W);
    for (let i = 0; i < 20; i++) s.record('p', 's1', cut, 10 * W);
    assert.equal(s.get('p')?.retryAt, 10 * W + MAX_RETRY_MS);
    s.observe(present([['p', 's2']]), 20 * W);
    s.record('p', 's2', cut, 21 * W);
    assert.equal(s.get('p')?.retryAt, 22 * W);
  });

  it('a reading whose files moved meanwhile is stale and ignored', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 0]]), 0);
    s.observe(present([['p', 's2']]), 100);
    assert.equal(s.record('p', 's1', ok('A'), 200), 'stale');
    assert.equal(s.get('p')?.good, undefined);
  });

  it('a vanished pair is dropped only by a scan at least a window later; coming back cancels it', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 0]]), 0);
    s.record('p', 's1', ok('A'), 0);
    s.observe(present([]), 1000);
    assert.deepEqual(s.expire(1000), []);
    s.observe(present([]), 1000 + W - 1);
    assert.deepEqual(s.expire(1000 + W - 1), []);
    s.observe(present([['p', 's1']]), 1000 + W - 1);
    s.observe(present([]), 1000 + W + 100);
    assert.deepEqual(s.expire(1000 + W + 100), [], 'the gone clock restarted when it came back');
    s.observe(present([]), 1000 + 2 * W + 100);
    assert.deepEqual(s.expire(1000 + 2 * W + 100), ['p']);
    assert.equal(s.size, 0);
  });

  it('nextWake points at the next read or expiry', () => {
    const s = new Settler(W);
    s.observe(present([['p', 's1', 1000]]), 1000);
    assert.equal(s.nextWake(1000), 1000 + W);
    s.record('p', 's1', ok('A'), 1000 + W);
    assert.equal(s.nextWake(1000 + W), undefined);
    s.observe(present([]), 3000);
    assert.equal(s.nextWake(3000), 3000 + W);
  });

  it('property: once a pair served a certificate, only its expiry (files gone past the window) stops that', () => {
    const op = fc.oneof(
      fc.record({
        t: fc.constant('scan' as const),
        present: fc.boolean(),
        sig: fc.integer({ min: 0, max: 3 }),
      }),
      fc.record({
        t: fc.constant('read' as const),
        kind: fc.constantFrom('ok', 'incomplete', 'unreadable', 'invalid'),
        fp: fc.constantFrom('A', 'B'),
      }),
      fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 2 * W }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const s = new Settler(W);
        let now = 0;
        let sig = 's0';
        let presentNow = true;
        let goneSince: number | undefined;
        s.observe(present([['p', sig, 0]]), now);
        s.record('p', sig, ok('A'), now);
        for (const o of ops) {
          if (o.t === 'tick') now += o.ms;
          else if (o.t === 'scan') {
            presentNow = o.present;
            sig = `s${o.sig}`;
            if (presentNow) goneSince = undefined;
            else goneSince ??= now;
            s.observe(presentNow ? present([['p', sig]]) : present([]), now);
            const dropped = s.expire(now);
            if (dropped.length > 0) {
              assert.ok(goneSince !== undefined && now - goneSince >= W, 'dropped too early');
              return;
            }
          } else if (s.get('p')) {
            const r: Reading =
              o.kind === 'ok'
                ? ok(o.fp)
                : o.kind === 'invalid'
                  ? { kind: 'invalid', reason: 'x', issues: [] }
                  : { kind: o.kind as 'incomplete' | 'unreadable', reason: 'x' };
            s.record('p', sig, r, now);
          }
          assert.ok(s.get('p')?.good !== undefined, 'the pair stopped serving without expiring');
        }
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
