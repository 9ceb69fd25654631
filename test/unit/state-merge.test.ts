// mergeSavedState, the one way a saved state comes back: a restart resumes the
// runtime objects over the configuration; load_state replaces the running state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Change } from '../../src/state/change.js';
import { assertInvariants } from '../../src/state/invariants.js';
import { emptyState, type ProxyState, sourceKey } from '../../src/state/proxy-state.js';
import { mergeSavedState } from '../../src/state/state-file.js';
import { applyChanges, applyTransaction } from '../../src/state/transaction.js';
import { backend, cluster, sameObjects, sameSources } from './state-fixtures.js';

function apply(s: ProxyState, changes: Change[], source: string): ProxyState {
  const r = applyChanges(s, changes, source);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  return r.state;
}

const config = apply(
  emptyState(),
  [{ op: 'put_cluster', cluster: cluster('api', { connect_timeout_ms: 1234 }) }],
  'config',
);

describe('mergeSavedState', () => {
  it('resume: config objects stay as configured, runtime objects come back with their source', () => {
    let saved = apply(emptyState(), [{ op: 'put_cluster', cluster: cluster('api') }], 'config');
    saved = apply(saved, [{ op: 'put_backend', backend: backend('api', 'b1') }], 'pki');
    const m = mergeSavedState(config, saved, 'resume');
    assertInvariants(m.state);
    assert.equal(m.state.clusters.get('api')?.connect_timeout_ms, 1234);
    assert.equal(m.state.sources.get(sourceKey('backend', 'api/b1')), 'pki');
    assert.equal(m.changes.length, 1);
    assert.deepEqual(m.dropped, []);
  });

  it('resume: a saved object that no longer fits is dropped, the rest kept', () => {
    let saved = apply(emptyState(), [{ op: 'put_cluster', cluster: cluster('gone') }], 'config');
    saved = apply(saved, [{ op: 'put_backend', backend: backend('gone', 'b1') }], 'ctl');
    saved = apply(saved, [{ op: 'put_cluster', cluster: cluster('web') }], 'ctl');
    const m = mergeSavedState(config, saved, 'resume');
    assertInvariants(m.state);
    assert.equal(m.dropped.length, 1);
    assert.equal(m.dropped[0]?.change.op, 'put_backend');
    assert.ok(m.state.clusters.has('web'));
  });

  it('replace: the changes turn base into exactly the saved state, sources included', () => {
    let saved = apply(emptyState(), [{ op: 'put_cluster', cluster: cluster('web') }], 'ctl');
    saved = apply(saved, [{ op: 'put_backend', backend: backend('web', 'b1') }], 'pulsar');
    const m = mergeSavedState(config, saved, 'replace');
    const r = applyTransaction(config, m.changes);
    assert.ok(r.ok);
    assertInvariants(r.state);
    assert.ok(sameObjects(r.state, saved));
    assert.ok(sameSources(r.state, saved));
  });
});
