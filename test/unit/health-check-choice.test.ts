// The data plane's choice of backend when main's health check holds some down,
// for every algorithm: a backend down by check is passed over while another is
// up; with all of them down, fail_open spreads requests over them (not one
// taking all) and fail_open false chooses none (the session answers 503);
// drained ones stay out either way.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer } from '../../src/balancer/select.js';
import { LOAD_BALANCING } from '../../src/model/objects.js';
import { BackendRuntime } from '../../src/proxy/backend-runtime.js';
import { type ClusterRuntime, chooseBackend } from '../../src/proxy/data-plane.js';
import type { HealthEvent } from '../../src/proxy/request-events.js';
import { backend, cluster } from './state-fixtures.js';

function clusterOf(
  kind: (typeof LOAD_BALANCING)[number],
  failOpen: boolean,
  specs: [string, object][],
  onHealth: (e: HealthEvent) => void = () => {},
): ClusterRuntime {
  return {
    spec: cluster('c', { load_balancing: kind, fail_open: failOpen }),
    balancer: createBalancer(kind),
    backends: specs.map(
      ([id, extra], i) => new BackendRuntime(backend('c', id, `127.0.0.1:${9001 + i}`, extra), onHealth),
    ),
  };
}

function picks(c: ClusterRuntime, n: number): Set<string | undefined> {
  const out = new Set<string | undefined>();
  for (let i = 0; i < n; i++) out.add(chooseBackend(c, [])?.id);
  return out;
}

describe('backends down by health check in the choice of backend', () => {
  for (const kind of LOAD_BALANCING) {
    it(`${kind}: passes over a backend down by check while another is up`, () => {
      const c = clusterOf(kind, true, [
        ['sick', {}],
        ['well', {}],
      ]);
      c.backends[0]!.setCheckedDown(true);
      assert.deepEqual(picks(c, 40), new Set(['well']));
    });

    it(`${kind}: all down by check fails open over all of them, never to a drained one`, () => {
      const c = clusterOf(kind, true, [
        ['a', {}],
        ['b', {}],
        ['drained', { state: 'drain' }],
      ]);
      for (const b of c.backends) b.setCheckedDown(true);
      assert.deepEqual(picks(c, 200), new Set(['a', 'b']));
    });

    it(`${kind}: all down by check with fail_open false chooses none`, () => {
      const c = clusterOf(kind, false, [
        ['a', {}],
        ['b', {}],
      ]);
      for (const b of c.backends) b.setCheckedDown(true);
      assert.deepEqual(picks(c, 20), new Set([undefined]));
    });
  }

  it('up by check again: the backend is picked and the worker forgets its own failures', () => {
    const events: HealthEvent[] = [];
    const c = clusterOf('round_robin', true, [['a', {}]], (e) => events.push(e));
    const a = c.backends[0]!;
    a.setCheckedDown(true);
    // As if this worker's traffic had taken it down too.
    a.down = true;
    a.failures = 5;
    a.retryAt = Number.MAX_SAFE_INTEGER;
    a.setCheckedDown(false);
    assert.equal(a.failures, 0);
    assert.equal(a.down, false);
    assert.deepEqual(
      events.map((e) => e.type),
      ['backend_up'],
    );
    assert.equal(chooseBackend(c, [])?.id, 'a');
  });
});
