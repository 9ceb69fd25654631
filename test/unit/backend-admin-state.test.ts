// The data plane's choice of backend under admin states, for every algorithm:
// a drained or maintenance backend is never chosen, not as a backup and not by
// the fail-open rule that otherwise tries a backing-off backend when none is
// available; with every backend out the choice is none (the session answers 503).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../src/balancer/select.js';
import { LOAD_BALANCING } from '../../src/model/objects.js';
import { BackendRuntime } from '../../src/proxy/backend-runtime.js';
import { type ClusterRuntime, chooseBackend } from '../../src/proxy/data-plane.js';
import { backend, cluster } from './state-fixtures.js';

function clusterOf(kind: (typeof LOAD_BALANCING)[number], specs: [string, object][]): ClusterRuntime {
  return {
    spec: cluster('c', { load_balancing: kind }),
    balancer: createBalancer(kind),
    backends: specs.map(
      ([id, extra], i) => new BackendRuntime(backend('c', id, `127.0.0.1:${9001 + i}`, extra), () => {}),
    ),
  };
}

describe('backend admin states in the choice of backend', () => {
  for (const kind of LOAD_BALANCING) {
    it(`${kind}: picks only the active backend, over a drained primary and a backup in maintenance`, () => {
      const c = clusterOf(kind, [
        ['drained', { state: 'drain' }],
        ['active', {}],
        ['spare', { backup: true, state: 'maintenance' }],
      ]);
      for (let i = 0; i < 20; i++) assert.equal(chooseBackend(c, [])?.id, 'active');
    });

    it(`${kind}: every backend out chooses none, even when the active ones are backing off`, () => {
      const c = clusterOf(kind, [
        ['drained', { state: 'drain' }],
        ['off', { state: 'maintenance' }],
      ]);
      assert.equal(chooseBackend(c, []), undefined);
      const failing = clusterOf(kind, [
        ['drained', { state: 'drain' }],
        ['failing', {}],
      ]);
      // Backing off: fail-open may still try it, but never the drained one.
      failing.backends[1]!.retryAt = Date.now() + 60_000;
      assert.equal(chooseBackend(failing, [])?.id, 'failing');
    });
  }

  it('back to active, it is picked again and a drain closes nothing in flight', () => {
    const c = clusterOf('round_robin', [['a', { state: 'drain' }]]);
    const a = c.backends[0]!;
    a.acquire();
    assert.equal(chooseBackend(c, []), undefined);
    a.setState('active');
    assert.equal(chooseBackend(c, [])?.id, 'a');
    assert.equal(a.live().in_flight, 1);
  });
});
