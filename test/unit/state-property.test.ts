// Properties of the state engine over generated change sequences (fast-check,
// fixed seed logged so a failure replays): invariants hold after every
// transaction, diffs and snapshots reproduce their target, reloads keep what
// other sources added.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Change, changeTarget } from '../../src/state/change.js';
import { diffStates, diffStatesWithSources, reloadDiff, stateAsChanges } from '../../src/state/diff.js';
import { assertInvariants } from '../../src/state/invariants.js';
import { emptyState, type ProxyState, sourceKey } from '../../src/state/proxy-state.js';
import { applyChanges, applyTransaction } from '../../src/state/transaction.js';
import {
  backend,
  cluster,
  frontend,
  listener,
  sameObjects,
  sameSources,
  snapshot,
} from './state-fixtures.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 1000);
console.log(`state-property: fast-check seed ${SEED}, ${NUM_RUNS} runs (FC_SEED / FC_RUNS to change)`);
const run = <Ts extends unknown[]>(p: fc.IPropertyWithHooks<Ts>) =>
  fc.assert(p, { seed: SEED, numRuns: NUM_RUNS });

// Small key spaces, so puts collide, deletes hit, and references dangle often.
const ADDRS = ['127.0.0.1:8080', '127.0.0.1:8081', '[::1]:9000'];
const CLUSTERS = ['a', 'b', 'c'];
const arbListenerAddr = fc.constantFrom(...ADDRS);
const arbClusterId = fc.constantFrom(...CLUSTERS);
const arbFrontendRef = fc.record({
  listener: fc.option(arbListenerAddr, { nil: undefined }),
  hostname: fc.constantFrom('x.test', 'Y.test', '*.z.test', '*'),
  path: fc.constantFrom('/', '/api'),
  path_type: fc.constantFrom('prefix' as const, 'exact' as const),
  method: fc.option(fc.constantFrom('GET', 'POST'), { nil: undefined }),
});
// Puts weigh more than deletes, so states grow to a few objects of each kind.
const put = (arbitrary: fc.Arbitrary<Change>) => ({ weight: 4, arbitrary });
const del = (arbitrary: fc.Arbitrary<Change>) => ({ weight: 1, arbitrary });
const arbChange: fc.Arbitrary<Change> = fc.oneof(
  put(
    fc.record({ address: arbListenerAddr, t: fc.constantFrom(1000, 2000) }).map(
      ({ address, t }): Change => ({
        op: 'put_listener',
        listener: listener(address, { keepalive_timeout_ms: t }),
      }),
    ),
  ),
  del(arbListenerAddr.map((address): Change => ({ op: 'delete_listener', address }))),
  put(
    fc
      .record({ id: arbClusterId, lb: fc.constantFrom('round_robin', 'random') })
      .map(({ id, lb }): Change => ({ op: 'put_cluster', cluster: cluster(id, { load_balancing: lb }) })),
  ),
  del(arbClusterId.map((id): Change => ({ op: 'delete_cluster', id }))),
  put(
    fc.record({ c: arbClusterId, id: fc.constantFrom('b1', 'b2'), w: fc.constantFrom(0, 100) }).map(
      ({ c, id, w }): Change => ({
        op: 'put_backend',
        backend: backend(c, id, '127.0.0.1:9001', { weight: w }),
      }),
    ),
  ),
  del(
    fc
      .record({ cluster: arbClusterId, id: fc.constantFrom('b1', 'b2') })
      .map((r): Change => ({ op: 'delete_backend', ...r })),
  ),
  put(
    fc.record({ ref: arbFrontendRef, target: fc.option(arbClusterId, { nil: undefined }) }).map(
      ({ ref, target }): Change => ({
        op: 'put_frontend',
        frontend: frontend(target === undefined ? { ...ref, deny: true } : { ...ref, cluster: target }),
      }),
    ),
  ),
  del(arbFrontendRef.map((frontend): Change => ({ op: 'delete_frontend', frontend }))),
);
const arbSource = fc.constantFrom('config', 'runtime', 'pulsar');
const arbTransactions = fc.array(
  fc.record({ changes: fc.array(arbChange, { minLength: 1, maxLength: 4 }), source: arbSource }),
  { maxLength: 40, size: 'medium' },
);

/** Folds transactions over a state, keeping those that apply; checks each refusal left it as it was. */
function build(txs: { changes: Change[]; source: string }[], from = emptyState()): ProxyState {
  let s = from;
  for (const { changes, source } of txs) {
    const before = snapshot(s);
    const r = applyChanges(s, changes, source);
    if (r.ok) {
      assertInvariants(r.state);
      s = r.state;
    } else {
      assert.ok(r.issues.length > 0, 'a refusal says why');
      assert.equal(snapshot(s), before, 'a refused transaction changes nothing');
    }
  }
  return s;
}
const arbState = arbTransactions.map((txs) => build(txs));
const arbConfigState = fc
  .array(fc.array(arbChange, { minLength: 1, maxLength: 4 }), { maxLength: 25 })
  .map((txs) => build(txs.map((changes) => ({ changes, source: 'config' }))));

describe('state engine properties', () => {
  it('random change sequences keep every invariant, and refusals change nothing', () => {
    let objects = 0;
    run(
      fc.property(arbTransactions, (txs) => {
        const s = build(txs);
        objects += s.sources.size;
      }),
    );
    // Guards against a generator that only ever builds empty states.
    console.log(`state-property: ${objects / NUM_RUNS} objects per generated state on average`);
    assert.ok(objects / NUM_RUNS >= 3, `states hold ${objects / NUM_RUNS} objects on average`);
  });

  it('applyChanges(a, diffStates(a, b)) yields b, and every prefix of the diff applies', () => {
    run(
      fc.property(arbState, arbState, (a, b) => {
        const diff = diffStates(a, b);
        let s = a;
        for (const c of diff) {
          const r = applyChanges(s, [c], 'runtime');
          assert.ok(
            r.ok,
            `prefix up to ${JSON.stringify(c)} applies: ${r.ok ? '' : JSON.stringify(r.issues)}`,
          );
          assertInvariants(r.state);
          s = r.state;
        }
        assert.ok(sameObjects(s, b), 'same objects as b');
        const whole = applyChanges(a, diff, 'runtime');
        assert.ok(whole.ok && sameObjects(whole.state, b), 'as one transaction too');
        assert.ok(
          whole.applied.every((x) => x.effect !== 'unchanged'),
          'a diff has no no-ops',
        );
        assert.equal(diffStates(b, b).length, 0, 'a state has no diff with itself');
      }),
    );
  });

  it('applyTransaction(a, diffStatesWithSources(a, b)) yields b with its sources', () => {
    run(
      fc.property(arbState, arbState, (a, b) => {
        const r = applyTransaction(a, diffStatesWithSources(a, b));
        assert.ok(r.ok, JSON.stringify(r.ok ? '' : r.issues));
        assertInvariants(r.state);
        assert.ok(sameObjects(r.state, b), 'same objects as b');
        assert.ok(sameSources(r.state, b), 'same sources as b');
        assert.ok(
          r.applied.every((x) => x.effect !== 'unchanged'),
          'no no-ops',
        );
      }),
    );
  });

  it('reloadDiff updates and deletes only config objects, keeps the others, and puts new config objects', () => {
    let applied = 0;
    run(
      fc.property(arbState, arbConfigState, (running, fromConfig) => {
        const r = applyChanges(running, reloadDiff(running, fromConfig), 'config');
        if (r.ok) applied++;
        if (!r.ok) {
          // Only refusal allowed: deleting a config object another source still uses.
          for (const i of r.issues) assert.match(i.reason, /is still used by/);
          return;
        }
        assertInvariants(r.state);
        const s = r.state;
        for (const kind of ['listeners', 'clusters', 'backends', 'frontends'] as const) {
          const singular = kind.slice(0, -1) as 'listener';
          for (const [key, obj] of running[kind] as ReadonlyMap<string, unknown>) {
            const src = running.sources.get(sourceKey(singular, key));
            if (src !== 'config') {
              assert.equal(
                (s[kind] as ReadonlyMap<string, unknown>).get(key),
                obj,
                `${singular} ${key} survives`,
              );
              assert.equal(s.sources.get(sourceKey(singular, key)), src);
            }
          }
          for (const [key, obj] of s[kind] as ReadonlyMap<string, unknown>) {
            if (s.sources.get(sourceKey(singular, key)) === 'config') {
              assert.deepEqual(obj, (fromConfig[kind] as ReadonlyMap<string, unknown>).get(key));
            }
          }
          for (const key of (fromConfig[kind] as ReadonlyMap<string, unknown>).keys()) {
            assert.ok(
              (s[kind] as ReadonlyMap<string, unknown>).has(key),
              `config ${singular} ${key} is present`,
            );
          }
        }
      }),
    );
    // Guards against a generator whose reloads are nearly all refused.
    console.log(`state-property: ${applied} of ${NUM_RUNS} generated reloads applied`);
    assert.ok(applied >= NUM_RUNS / 2, `most reloads apply (${applied} of ${NUM_RUNS})`);
  });

  it('reloadDiff against a state of config objects alone is diffStates', () => {
    run(
      fc.property(arbConfigState, arbConfigState, (a, b) => {
        assert.deepEqual(reloadDiff(a, b), diffStates(a, b));
      }),
    );
  });

  it('stateAsChanges round-trips through an empty state', () => {
    run(
      fc.property(arbState, (s) => {
        const changes = stateAsChanges(s);
        assert.ok(changes.every((c) => c.op.startsWith('put_')));
        const r = applyChanges(emptyState(), changes, 'runtime');
        assert.ok(r.ok);
        assert.ok(sameObjects(r.state, s));
        // With each change's own source, the sources come back too.
        let t = emptyState();
        for (const c of changes) {
          const { kind, key } = changeTarget(c);
          const step = applyChanges(t, [c], s.sources.get(sourceKey(kind, key)) ?? 'missing');
          assert.ok(step.ok);
          t = step.state;
        }
        assert.ok(sameSources(t, s));
      }),
    );
  });
});
