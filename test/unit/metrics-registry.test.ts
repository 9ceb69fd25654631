// The metrics registry and the aggregation query_metrics does: bucket
// placement at the bounds, series reuse by key, sums across processes, filters.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterFamilies, mergeFamilies, retainCounts } from '../../src/metrics/aggregate.js';
import { type HistogramSample, Registry, type ScalarSample } from '../../src/metrics/registry.js';

describe('metrics registry', () => {
  it("places an observation equal to a bound in that bound's bucket, and above the last in +Inf", () => {
    const r = new Registry();
    const h = r.histogram('h_seconds', 'h', [0.1, 1]).get('', () => ({}));
    for (const v of [0, 0.1, 0.1000001, 1, 5]) h.observe(v);
    const s = r.families()[0]!.samples[0] as HistogramSample;
    assert.deepEqual(s.bounds, [0.1, 1]);
    assert.deepEqual(s.counts, [2, 2, 1]);
    assert.equal(s.count, 5);
    assert.ok(Math.abs(s.sum - 6.2000001) < 1e-9);
  });

  it('returns the same series for the same key and builds labels only once', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'x');
    let built = 0;
    const labels = () => {
      built++;
      return { code: '200' };
    };
    c.get('200', labels).add(1);
    c.get('200', labels).add(2);
    assert.equal(built, 1);
    const f = r.families()[0]!;
    assert.equal(f.type, 'counter');
    assert.deepEqual(f.samples, [{ labels: { code: '200' }, value: 3 }]);
  });

  it('hands out copies: a snapshot does not change with later updates', () => {
    const r = new Registry();
    const g = r.gauge('g', 'g').get('', () => ({}));
    g.set(1);
    const snap = r.families();
    g.set(7);
    assert.equal((snap[0]!.samples[0] as ScalarSample).value, 1);
  });

  it('retain drops the series a predicate refuses', () => {
    const r = new Registry();
    const g = r.gauge('g', 'g');
    g.get('a', () => ({ b: 'a' })).set(1);
    g.get('b', () => ({ b: 'b' })).set(1);
    g.retain((k) => k === 'b');
    assert.deepEqual(
      r.families()[0]!.samples.map((s) => s.labels),
      [{ b: 'b' }],
    );
  });
});

describe('metrics aggregation', () => {
  const worker = (n: number) => {
    const r = new Registry();
    r.counter('req_total', 'r')
      .get('c', () => ({ cluster: 'c' }))
      .add(n);
    const h = r.histogram('d_seconds', 'd', [1]).get('c', () => ({ cluster: 'c' }));
    h.observe(0.5);
    h.observe(n);
    r.gauge('up', 'u')
      .get('x', () => ({ cluster: 'd', backend: 'x' }))
      .set(1);
    return r.families();
  };

  it('sums counters, gauges and histogram buckets across processes, per label set', () => {
    const merged = mergeFamilies([worker(1), worker(3)]);
    const req = merged.find((f) => f.name === 'req_total')!;
    assert.deepEqual(req.samples, [{ labels: { cluster: 'c' }, value: 4 }]);
    const d = merged.find((f) => f.name === 'd_seconds')!.samples[0] as HistogramSample;
    assert.deepEqual(d.counts, [3, 1]);
    assert.equal(d.count, 4);
    assert.equal(d.sum, 0.5 + 1 + 0.5 + 3);
    assert.equal((merged.find((f) => f.name === 'up')!.samples[0] as ScalarSample).value, 2);
  });

  it('does not change its inputs', () => {
    const a = worker(1);
    const before = JSON.stringify(a);
    mergeFamilies([a, worker(2)]);
    assert.equal(JSON.stringify(a), before);
  });

  it('filters by name, cluster and backend; a family with no matching sample goes', () => {
    const fams = mergeFamilies([worker(1)]);
    assert.deepEqual(
      filterFamilies(fams, { names: ['up'] }).map((f) => f.name),
      ['up'],
    );
    assert.deepEqual(
      filterFamilies(fams, { cluster: 'c' }).map((f) => f.name),
      ['req_total', 'd_seconds'],
    );
    assert.deepEqual(
      filterFamilies(fams, { backend: 'x' }).map((f) => f.name),
      ['up'],
    );
    assert.deepEqual(filterFamilies(fams, { cluster: 'nope' }), []);
  });

  it('retains the counters and histograms of a process that leaves, not its gauges', () => {
    let retained = retainCounts([], worker(2));
    retained = retainCounts(retained, worker(5));
    assert.deepEqual(
      retained.map((f) => f.name),
      ['req_total', 'd_seconds'],
    );
    assert.deepEqual(retained[0]!.samples, [{ labels: { cluster: 'c' }, value: 7 }]);
    const d = retained[1]!.samples[0] as HistogramSample;
    assert.deepEqual(d.counts, [2, 2]);
    assert.equal(d.count, 4);
    // Summed with a live process: the total is what all of them counted, the gauge only the live one's.
    const total = mergeFamilies([worker(1), retained]);
    assert.deepEqual(total.find((f) => f.name === 'req_total')!.samples, [
      { labels: { cluster: 'c' }, value: 8 },
    ]);
    assert.equal((total.find((f) => f.name === 'up')!.samples[0] as ScalarSample).value, 1);
  });
});
