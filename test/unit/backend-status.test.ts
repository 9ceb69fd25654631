// The sums `ctl backends`, `clusters` and `metrics` show: query_backends adds up
// the workers' views of each backend (health "down" only when every worker that
// answered sees it down), and ctl metrics reads p50/p99 out of histogram buckets.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantile, topRows } from '../../src/cli/ctl-live-output.js';
import { backendsResult } from '../../src/main/backend-status.js';
import type { BackendLive } from '../../src/proxy/backend-runtime.js';
import { emptyState } from '../../src/state/proxy-state.js';
import { applyChanges } from '../../src/state/transaction.js';
import { backend, cluster } from './state-fixtures.js';

function stateOf() {
  const r = applyChanges(
    emptyState(),
    [
      { op: 'put_cluster', cluster: cluster('c') },
      { op: 'put_backend', backend: backend('c', 'a', '127.0.0.1:9001') },
      { op: 'put_backend', backend: backend('c', 'b', '127.0.0.1:9002', { state: 'drain' }) },
    ],
    'config',
  );
  assert.ok(r.ok);
  return r.state;
}

const view = (id: string, over: Partial<BackendLive> = {}): BackendLive => ({
  cluster: 'c',
  id,
  in_flight: 0,
  queued: 0,
  connections: 0,
  failures: 0,
  down: false,
  down_since: null,
  last_error: null,
  last_error_at: null,
  ...over,
});

describe('query_backends sums over workers', () => {
  it('adds in-flight and connections, says down in k/n workers, keeps the latest error and the earliest down time', () => {
    const r = backendsResult(stateOf(), 7, [
      {
        worker: 1,
        backends: [
          view('a', { in_flight: 2, connections: 3 }),
          view('b', {
            failures: 3,
            down: true,
            down_since: '2026-01-01T00:00:02.000Z',
            last_error: 'old',
            last_error_at: '2026-01-01T00:00:02.000Z',
          }),
        ],
      },
      {
        worker: 2,
        backends: [
          view('a', { in_flight: 1, connections: 1 }),
          view('b', {
            failures: 4,
            down: true,
            down_since: '2026-01-01T00:00:01.000Z',
            last_error: 'new',
            last_error_at: '2026-01-01T00:00:05.000Z',
          }),
        ],
      },
    ]);
    const [a, b] = r.backends;
    assert.equal(r.workers, 2);
    assert.deepEqual(
      [a?.state, a?.health, a?.in_flight, a?.connections, a?.source],
      ['active', 'up', 3, 4, 'config'],
    );
    assert.deepEqual(
      [b?.state, b?.health, b?.failures, b?.last_error, b?.down_since],
      ['drain', 'down', 7, 'new', '2026-01-01T00:00:01.000Z'],
    );
    assert.deepEqual(
      r.clusters.map((c) => [c.id, c.backends, c.active, c.drain, c.down, c.in_flight]),
      [['c', 2, 1, 1, 1, 3]],
    );
  });

  it('is partly down when only some workers see it down, and unknown when no worker answered', () => {
    const state = stateOf();
    const mixed = backendsResult(state, 1, [
      { worker: 1, backends: [view('a', { down: true })] },
      { worker: 2, backends: [view('a')] },
    ]);
    assert.equal(mixed.backends[0]?.health, 'down in 1/2 workers');
    const none = backendsResult(state, 1, [], 'c');
    assert.deepEqual(
      none.backends.map((b) => b.health),
      ['unknown', 'unknown'],
    );
    assert.equal(backendsResult(state, 1, [], 'other').backends.length, 0);
  });
});

describe('ctl metrics', () => {
  const h = (counts: number[]) => ({
    labels: {},
    bounds: [0.01, 0.1, 1],
    counts,
    sum: 0,
    count: counts.reduce((a, b) => a + b, 0),
  });

  it('interpolates a quantile inside its bucket, floors it at the last bound above them, and has none when empty', () => {
    assert.ok(Math.abs(quantile(h([0, 10, 0, 0]), 0.5)! - 0.055) < 1e-12, 'halfway into (0.01, 0.1]');
    assert.ok(Math.abs(quantile(h([10, 0, 0, 0]), 0.99)! - 0.0099) < 1e-12, '99% into (0, 0.01]');
    assert.equal(quantile(h([0, 0, 0, 5]), 0.5), 1);
    assert.equal(quantile(h([0, 0, 0, 0]), 0.5), undefined);
  });

  it('counts requests by status class per cluster and backend; unrouted requests are cluster "-"', () => {
    const rows = topRows([
      {
        name: 'kakehi_http_requests_total',
        help: '',
        type: 'counter',
        samples: [
          { labels: { cluster: 'c', backend: 'a', code: '200' }, value: 5 },
          { labels: { cluster: 'c', backend: 'b', code: '503' }, value: 2 },
          { labels: { cluster: '', backend: '', code: '404' }, value: 1 },
        ],
      },
      {
        name: 'kakehi_backend_connect_failures_total',
        help: '',
        type: 'counter',
        samples: [{ labels: { cluster: 'c', backend: 'b' }, value: 3 }],
      },
    ]);
    assert.deepEqual(
      rows.map((r) => [r.cluster, r.backend, r.requests, r['2xx'], r['4xx'], r['5xx'], r.connect_failures]),
      [
        ['-', '*', 1, 0, 1, 0, 0],
        ['c', '*', 7, 5, 0, 2, 3],
        ['c', 'a', 5, 5, 0, 0, 0],
        ['c', 'b', 2, 0, 0, 2, 3],
      ],
    );
  });
});
