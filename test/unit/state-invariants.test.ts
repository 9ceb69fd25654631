// assertInvariants catches each kind of broken state by name, so the property
// tests that run it after every transaction can fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load-config.js';
import { assertInvariants } from '../../src/state/invariants.js';
import { deepFreeze, emptyState, type ProxyState } from '../../src/state/proxy-state.js';
import { applyChanges } from '../../src/state/transaction.js';
import { backend, cluster, frontend, listener } from './state-fixtures.js';

const r = applyChanges(
  emptyState(),
  [
    { op: 'put_listener', listener: listener('127.0.0.1:8080') },
    { op: 'put_cluster', cluster: cluster('app') },
    { op: 'put_backend', backend: backend('app', 'b1') },
    {
      op: 'put_frontend',
      frontend: frontend({ listener: '127.0.0.1:8080', hostname: 'a.test', cluster: 'app' }),
    },
  ],
  'runtime',
);
assert.ok(r.ok);
const good = r.state;
const FKEY = '127.0.0.1:8080;a.test;prefix:/;*';

/** `good` with one map replaced. */
function broken(patch: Partial<Record<keyof ProxyState, Map<string, unknown>>>): ProxyState {
  return Object.freeze({ ...good, ...patch }) as ProxyState;
}
const copy = <V>(m: ReadonlyMap<string, V>) => new Map<string, unknown>(m);

describe('assertInvariants', () => {
  it('accepts a state made by applyChanges, the empty state and a config file state', () => {
    assertInvariants(good);
    assertInvariants(emptyState());
    assertInvariants(
      parseConfigText(
        'listeners: [{address: "127.0.0.1:0"}]\nclusters: [{id: app, backends: [{id: b1, address: "127.0.0.1:9"}]}]\nfrontends: [{hostname: a.test, cluster: app, tags: {t: x}}]\n',
        'inline',
      ).state,
    );
  });

  it('names a key that does not match its object', () => {
    const clusters = copy(good.clusters);
    clusters.set('other', clusters.get('app'));
    assert.throws(
      () => assertInvariants(broken({ clusters })),
      /keys match objects: cluster under "other" has key "app"/,
    );
  });

  it('names a dangling reference', () => {
    const clusters = new Map<string, unknown>();
    const sources = copy(good.sources);
    sources.delete('cluster:app');
    assert.throws(
      () => assertInvariants(broken({ clusters, sources })),
      /references resolve: .*cluster "app" does not exist/,
    );
  });

  it('names an object without a source and a source without an object', () => {
    const sources = copy(good.sources);
    sources.delete('backend:app/b1');
    assert.throws(() => assertInvariants(broken({ sources })), /every object has a source: backend app\/b1/);
    const extra = copy(good.sources);
    extra.set('cluster:ghost', 'runtime');
    assert.throws(
      () => assertInvariants(broken({ sources: extra })),
      /every source names an object: "cluster:ghost"/,
    );
  });

  it('names an object that can still be modified, down to nested maps', () => {
    const frontends = copy(good.frontends);
    frontends.set(FKEY, Object.freeze({ ...good.frontends.get(FKEY)!, tags: { team: 'web' } }));
    assert.throws(() => assertInvariants(broken({ frontends })), /objects frozen: frontend/);
  });

  it('names an object its schema would refuse', () => {
    const backends = copy(good.backends);
    backends.set('app/b1', deepFreeze({ ...good.backends.get('app/b1')!, weight: -5 }));
    assert.throws(() => assertInvariants(broken({ backends })), /objects valid: backend app\/b1: .*weight/);
  });

  it('names a state record that can be modified', () => {
    assert.throws(() => assertInvariants({ ...good }), /state frozen/);
  });
});
