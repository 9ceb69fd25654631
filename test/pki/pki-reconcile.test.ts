// The reconcile planner: desired pairs against what the proxy holds. Examples for
// each rule, and properties: applying the plan to the held set yields exactly the
// wanted keys plus other sources' certificates, puts come before deletes, and the
// result does not depend on input order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  batchChanges,
  certKey,
  type DesiredPair,
  type HeldCertificate,
  planChanges,
  rejectedIndexes,
} from '../../connectors/pki/reconcile.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const L1 = '127.0.0.1:8443';
const L2 = '127.0.0.1:9443';

const pair = (pairKey: string, fp: string, listeners = [L1], hash = `h-${fp}`): DesiredPair => ({
  pairKey,
  listeners,
  fingerprint: fp,
  materialHash: hash,
  certificate: `cert-${fp}`,
  chain: '',
  key: `key-${fp}`,
});

/** The planner as the default connector (source "pki") runs it. */
const planPki = (
  desired: Parameters<typeof planChanges>[0],
  held: Parameters<typeof planChanges>[1],
  sent: Parameters<typeof planChanges>[2],
) => planChanges(desired, held, sent, 'pki');

describe('pki reconcile planner', () => {
  it('puts what is missing, deletes what the files no longer hold, leaves the rest', () => {
    const plan = planPki(
      [pair('/d/a', 'A'), pair('/d/b', 'B')],
      [
        { listener: L1, fingerprint: 'A', source: 'pki' },
        { listener: L1, fingerprint: 'OLD', source: 'pki' },
      ],
      new Map([[certKey(L1, 'A'), 'h-A']]),
    );
    assert.deepEqual(
      plan.puts.map((p) => p.certificate.certificate),
      ['cert-B'],
    );
    assert.deepEqual(plan.deletes, [{ op: 'delete_certificate', listener: L1, fingerprint: 'OLD' }]);
  });

  it('renewal: the put of the new and the delete of the old land in one transaction, put first', () => {
    const plan = planPki(
      [pair('/d/a', 'NEW')],
      [{ listener: L1, fingerprint: 'OLD', source: 'pki' }],
      new Map(),
    );
    const batches = batchChanges(plan, 1_000_000);
    assert.equal(batches.length, 1);
    assert.deepEqual(
      batches[0]?.changes.map((c) => c.op),
      ['put_certificate', 'delete_certificate'],
    );
  });

  it('a connector with its own source name owns only its own: two connectors do not undo each other', () => {
    const held: HeldCertificate[] = [
      { listener: L1, fingerprint: 'A', source: 'pki' },
      { listener: L1, fingerprint: 'B', source: 'pki-edge' },
    ];
    const plan = planChanges([pair('/e/b', 'B'), pair('/e/c', 'C')], held, new Map(), 'pki-edge');
    assert.deepEqual(plan.deletes, [], "the default connector's A is not this one's to delete");
    assert.deepEqual(
      plan.puts.map((p) => p.certificate.certificate),
      ['cert-B', 'cert-C'],
      'B is put again (nothing sent yet by this process), C is new',
    );
    const other = planChanges([pair('/d/a', 'A')], held, new Map([[certKey(L1, 'A'), 'h-A']]), 'pki');
    assert.deepEqual(other.deletes, [], "and the default connector leaves pki-edge's B alone");
  });

  it("a default directory's certificate is put as the listener's default, and put again when the proxy holds it otherwise", () => {
    const fresh = planPki([{ ...pair('/d/a', 'A'), default: true }, pair('/e/b', 'B')], [], new Map());
    assert.deepEqual(
      fresh.puts.map((p) => [p.certificate.certificate, p.certificate.default]),
      [
        ['cert-A', true],
        ['cert-B', undefined],
      ],
    );
    const sent = new Map([[certKey(L1, 'A'), 'h-A']]);
    const notDefault: HeldCertificate[] = [{ listener: L1, fingerprint: 'A', source: 'pki', default: false }];
    assert.equal(planPki([{ ...pair('/d/a', 'A'), default: true }], notDefault, sent).puts.length, 1);
    const asDefault: HeldCertificate[] = [{ listener: L1, fingerprint: 'A', source: 'pki', default: true }];
    assert.equal(planPki([{ ...pair('/d/a', 'A'), default: true }], asDefault, sent).puts.length, 0);
    // The same leaf in a default directory and in another one is a default.
    const both = planPki([pair('/e/a', 'A'), { ...pair('/d/a', 'A'), default: true }], [], new Map());
    assert.deepEqual(
      both.puts.map((p) => p.certificate.default),
      [true],
    );
  });

  it('after a connector restart, a certificate the proxy holds with the same chain is not put again', () => {
    const withChain = { ...pair('/d/a', 'A'), chainFingerprints: ['I1', 'R'] };
    const held = (chain?: string[]): HeldCertificate[] => [
      {
        listener: L1,
        fingerprint: 'A',
        source: 'pki',
        origin: '/d/a',
        ...(chain ? { chain_fingerprints: chain } : {}),
      },
    ];
    assert.equal(planPki([withChain], held(['I1', 'R']), new Map()).puts.length, 0, 'same chain');
    assert.equal(planPki([withChain], held(['I2', 'R']), new Map()).puts.length, 1, 'another intermediate');
    assert.equal(planPki([withChain], held(['I1']), new Map()).puts.length, 1, 'a shorter chain');
    assert.equal(planPki([withChain], held(), new Map()).puts.length, 1, 'a proxy that does not say');
    const otherSource: HeldCertificate[] = [{ ...held(['I1', 'R'])[0]!, source: 'pki-other' }];
    assert.equal(
      planChanges([withChain], otherSource, new Map(), 'pki').heldElsewhere.length,
      1,
      "another source's certificate is still not this connector's",
    );
  });

  it('after a restart, a held certificate whose pair cannot be read now is kept, and goes once the pair is read', () => {
    const held: HeldCertificate[] = [
      { listener: L1, fingerprint: 'OLD', source: 'pki', origin: '/d/a' },
      { listener: L1, fingerprint: 'GONE', source: 'pki', origin: '/d/gone' },
      { listener: L1, fingerprint: 'BARE', source: 'pki' },
    ];
    const waiting = planChanges([], held, new Map(), 'pki', new Set(['/d/a']));
    assert.deepEqual(waiting.kept, [{ listener: L1, fingerprint: 'OLD', origin: '/d/a' }]);
    assert.deepEqual(
      waiting.deletes.map((d) => d.fingerprint),
      ['BARE', 'GONE'],
      'a pair no longer there, and a certificate without origin, go as before',
    );
    // Read at last, with a renewed certificate: the new one is put (with its origin), the old one goes.
    const read = planChanges([pair('/d/a', 'NEW')], held, new Map(), 'pki', new Set());
    assert.deepEqual(
      read.puts.map((p) => [p.certificate.certificate, p.certificate.origin]),
      [['cert-NEW', '/d/a']],
    );
    assert.deepEqual(
      read.deletes.map((d) => d.fingerprint),
      ['BARE', 'GONE', 'OLD'],
    );
  });

  it('never deletes or re-puts a certificate another source holds', () => {
    const plan = planPki(
      [pair('/d/a', 'A')],
      [
        { listener: L1, fingerprint: 'A', source: 'config' },
        { listener: L1, fingerprint: 'X', source: 'runtime' },
      ],
      new Map(),
    );
    assert.deepEqual(plan.puts, []);
    assert.deepEqual(plan.deletes, []);
    assert.equal(plan.heldElsewhere.length, 1);
  });

  it('the same leaf in two directories is one certificate, kept while either holds it', () => {
    const held: HeldCertificate[] = [{ listener: L1, fingerprint: 'A', source: 'pki' }];
    const both = planPki([pair('/d1/a', 'A'), pair('/d2/a', 'A')], [], new Map());
    assert.equal(both.puts.length, 1);
    assert.deepEqual(both.putPairs[0], ['/d1/a', '/d2/a']);
    const one = planPki([pair('/d2/a', 'A')], held, new Map([[certKey(L1, 'A'), 'h-A']]));
    assert.deepEqual(one.deletes, []);
    assert.deepEqual(one.puts, []);
  });

  it('re-puts a held certificate whose chain or key changed, or that was not sent by this run', () => {
    const held: HeldCertificate[] = [{ listener: L1, fingerprint: 'A', source: 'pki' }];
    assert.equal(
      planPki([pair('/d/a', 'A', [L1], 'h2')], held, new Map([[certKey(L1, 'A'), 'h1']])).puts.length,
      1,
    );
    assert.equal(planPki([pair('/d/a', 'A')], held, new Map()).puts.length, 1);
  });

  it('one put per listener', () => {
    const plan = planPki([pair('/d/a', 'A', [L1, L2])], [], new Map());
    assert.deepEqual(
      plan.puts.map((p) => p.certificate.listener),
      [L1, L2],
    );
  });

  it('batches stay under the byte limit, keep order, and record their start index', () => {
    const desired = Array.from({ length: 50 }, (_, i) => pair(`/d/${i}`, `F${String(i).padStart(3, '0')}`));
    const plan = planPki(desired, [{ listener: L1, fingerprint: 'Z', source: 'pki' }], new Map());
    const batches = batchChanges(plan, 1_000, 500);
    const flat = batches.flatMap((b) => b.changes);
    assert.deepEqual(flat, [...plan.puts, ...plan.deletes]);
    let index = 0;
    for (const b of batches) {
      assert.equal(b.start, index);
      index += b.changes.length;
      assert.ok(
        b.changes.length === 1 || Buffer.byteLength(b.changes.map((c) => JSON.stringify(c)).join()) <= 1_000,
      );
    }
  });

  it('reads change indexes from issue paths', () => {
    assert.deepEqual(
      [
        ...rejectedIndexes([
          { path: 'changes[3].certificate.key' },
          { path: 'changes[10]' },
          { path: 'type' },
        ]),
      ],
      [3, 10],
    );
  });

  it('property: applying the plan gives exactly the wanted set, other sources untouched, order-free', () => {
    const fp = fc.constantFrom('A', 'B', 'C', 'D');
    const listener = fc.constantFrom(L1, L2);
    const desiredArb = fc.array(
      fc.record({
        key: fc.constantFrom('/a', '/b', '/c'),
        fp,
        ls: fc.uniqueArray(listener, { minLength: 1 }),
      }),
      { maxLength: 6 },
    );
    const heldArb = fc.uniqueArray(
      fc.record({ listener, fingerprint: fp, source: fc.constantFrom('pki', 'pki', 'config') }),
      { selector: (h) => `${h.listener} ${h.fingerprint}`, maxLength: 8 },
    );
    fc.assert(
      fc.property(desiredArb, heldArb, fc.boolean(), (d, held, knowSent) => {
        const seen = new Set<string>();
        const desired = d
          .filter((x) => !seen.has(x.key) && seen.add(x.key))
          .map((x) => pair(x.key, x.fp, x.ls));
        const sent = new Map(
          knowSent ? held.map((h) => [certKey(h.listener, h.fingerprint), `h-${h.fingerprint}`]) : [],
        );
        const plan = planPki(desired, held, sent);
        const after = new Map(held.map((h) => [certKey(h.listener, h.fingerprint), h.source]));
        for (const p of plan.puts) {
          const fingerprint = p.certificate.certificate.slice('cert-'.length);
          after.set(certKey(p.certificate.listener, fingerprint), 'pki');
        }
        for (const del of plan.deletes) {
          assert.equal(
            after.get(certKey(del.listener, del.fingerprint)),
            'pki',
            'deleted a foreign certificate',
          );
          after.delete(certKey(del.listener, del.fingerprint));
        }
        const wantedKeys = new Set(desired.flatMap((x) => x.listeners.map((l) => certKey(l, x.fingerprint))));
        for (const [k, source] of after) {
          if (source === 'pki') assert.ok(wantedKeys.has(k), `${k} left behind`);
        }
        for (const k of wantedKeys) assert.ok(after.has(k), `${k} not served`);
        for (const h of held) {
          if (h.source !== 'pki') assert.equal(after.get(certKey(h.listener, h.fingerprint)), h.source);
        }
        const again = planPki([...desired].reverse(), [...held].reverse(), sent);
        assert.deepEqual(again.deletes, plan.deletes);
        assert.deepEqual(
          new Set(again.puts.map((p) => JSON.stringify(p))),
          new Set(plan.puts.map((p) => JSON.stringify(p))),
        );
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
