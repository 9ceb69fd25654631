// query_metrics against real kakehi processes: counts equal the traffic sent,
// histograms agree with the counters, two workers add up, filters narrow the
// answer, and a backend that refuses connections is reported down.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Family, HistogramSample, ScalarSample } from '../../src/metrics/registry.js';
import { echoBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { startLoad } from '../helpers/load.js';
import { driveUntilBackendDown, startRefusingCluster } from '../helpers/refusing-backend.js';

interface MetricsResult {
  generation: number;
  families: Family[];
  workers?: { worker: number; pid: number; families: Family[] }[];
}

async function metrics(socketPath: string, body: Record<string, unknown> = {}): Promise<MetricsResult> {
  return (await ok(socketPath, 'query_metrics', body)) as unknown as MetricsResult;
}

function family(families: Family[], name: string): Family {
  const f = families.find((x) => x.name === name);
  assert.ok(f, `family ${name} is present`);
  return f;
}

function scalars(families: Family[], name: string): ScalarSample[] {
  return family(families, name).samples as ScalarSample[];
}

function total(families: Family[], name: string): number {
  return scalars(families, name).reduce((a, s) => a + s.value, 0);
}

describe('query_metrics', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  /** A kakehi with `workers` workers routing every host to cluster c, backend b1; stopped after the suite. */
  async function oneBackendProxy(workers: number) {
    const backend = await echoBackend('b1');
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      workers,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b1', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    return kakehi;
  }

  it('counts exactly the requests sent, with their codes, and a 404 under cluster ""', async () => {
    const backend = await echoBackend('b1');
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b1', address: backend.address }] }],
      frontends: [{ hostname: 'load.test', cluster: 'c' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const load = startLoad(kakehi.port, { maxRequests: 300, concurrency: 8 });
    const r = await load.done();
    assert.equal(r.ok, 300);
    assert.equal((await httpGet(kakehi.port, '/', { host: 'nowhere.test' })).status, 404);

    const m = await metrics(kakehi.socketPath);
    const req = scalars(m.families, 'kakehi_http_requests_total');
    assert.equal(family(m.families, 'kakehi_http_requests_total').type, 'counter');
    assert.deepEqual(
      req.map((s) => [s.labels, s.value]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        [{ cluster: '', backend: '', code: '404' }, 1],
        [{ cluster: 'c', backend: 'b1', code: '200' }, 300],
      ],
    );
    // Histograms agree with the counter: one observation per request, buckets summing to the count.
    const dur = family(m.families, 'kakehi_http_request_duration_seconds');
    assert.equal(dur.type, 'histogram');
    const byCluster = new Map((dur.samples as HistogramSample[]).map((s) => [s.labels['cluster'], s]));
    for (const [cluster, want] of [
      ['c', 300],
      ['', 1],
    ] as const) {
      const h = byCluster.get(cluster)!;
      assert.equal(h.count, want);
      assert.equal(
        h.counts.reduce((a, b) => a + b, 0),
        want,
      );
      assert.equal(h.counts.length, h.bounds.length + 1);
      assert.ok(h.sum > 0);
    }
    const be = family(m.families, 'kakehi_backend_response_seconds').samples as HistogramSample[];
    assert.equal(be.length, 1);
    assert.deepEqual(be[0]!.labels, { cluster: 'c', backend: 'b1' });
    assert.equal(be[0]!.count, 300);
    assert.equal(total(m.families, 'kakehi_requests_active'), 0);
    assert.ok(total(m.families, 'kakehi_client_bytes_sent_total') > 0);
    assert.deepEqual(
      scalars(m.families, 'kakehi_backend_up').map((s) => [s.labels, s.value]),
      [[{ cluster: 'c', backend: 'b1' }, 1]],
    );
    assert.equal(total(m.families, 'kakehi_workers'), 1);
    assert.equal(total(m.families, 'kakehi_config_generation'), m.generation);
  });

  it('sums two workers: the per-worker families add up to the aggregate', async () => {
    const kakehi = await oneBackendProxy(2);
    // Many short connections so both workers accept some.
    let sent = 0;
    for (let i = 0; i < 4; i++) {
      const r = await startLoad(kakehi.port, { maxRequests: 100, concurrency: 16 }).done();
      sent += r.ok;
    }
    assert.equal(sent, 400);

    const m = await metrics(kakehi.socketPath, { per_worker: true });
    assert.equal(m.workers?.length, 2);
    assert.equal(total(m.families, 'kakehi_http_requests_total'), 400);
    const perWorker = m.workers!.map((w) => total(w.families, 'kakehi_http_requests_total'));
    assert.equal(
      perWorker.reduce((a, b) => a + b, 0),
      400,
    );
    const hist = (fams: Family[]) =>
      (family(fams, 'kakehi_http_request_duration_seconds').samples as HistogramSample[])[0]!;
    const agg = hist(m.families);
    assert.equal(agg.count, 400);
    const summed = agg.counts.map((_, i) => m.workers!.reduce((a, w) => a + hist(w.families).counts[i]!, 0));
    assert.deepEqual(agg.counts, summed);
    // backend_up is a state, not an amount: two workers seeing the backend up make 1, not 2.
    assert.deepEqual(
      scalars(m.families, 'kakehi_backend_up').map((s) => s.value),
      [1],
    );
    assert.deepEqual(
      m.workers!.map((w) => total(w.families, 'kakehi_backend_up')),
      [1, 1],
    );
    assert.equal(total(m.families, 'kakehi_workers'), 2);
  });

  it('keeps the counts of workers replaced on upgrade: totals never go back', async () => {
    const kakehi = await oneBackendProxy(1);
    assert.equal((await startLoad(kakehi.port, { maxRequests: 120, concurrency: 4 }).done()).ok, 120);
    assert.equal(total((await metrics(kakehi.socketPath)).families, 'kakehi_http_requests_total'), 120);

    const drained = kakehi.waitLog((l) => l.msg === 'worker drained');
    await ok(kakehi.socketPath, 'upgrade');
    // Draining or drained, the old worker's requests are still in the total.
    assert.equal(total((await metrics(kakehi.socketPath)).families, 'kakehi_http_requests_total'), 120);
    await drained;
    const m = await metrics(kakehi.socketPath, { per_worker: true });
    assert.equal(total(m.families, 'kakehi_http_requests_total'), 120);
    assert.equal(m.workers?.length, 1);
    assert.equal(total(m.workers![0]!.families, 'kakehi_http_requests_total'), 0);
    // Gauges are not kept: only the live worker reports the backend up.
    assert.equal(total(m.families, 'kakehi_backend_up'), 1);

    assert.equal((await startLoad(kakehi.port, { maxRequests: 30, concurrency: 2 }).done()).ok, 30);
    const next = await metrics(kakehi.socketPath);
    assert.deepEqual(
      scalars(next.families, 'kakehi_http_requests_total').map((s) => [s.labels, s.value]),
      [[{ cluster: 'c', backend: 'b1', code: '200' }, 150]],
    );
    const dur = family(next.families, 'kakehi_http_request_duration_seconds').samples as HistogramSample[];
    assert.equal(dur.length, 1);
    assert.equal(dur[0]!.count, 150);
    assert.equal(
      dur[0]!.counts.reduce((a, b) => a + b, 0),
      150,
    );
  });

  it('keeps the counts of a crashed worker as of the last query: sums never go back', async () => {
    const kakehi = await oneBackendProxy(2);
    assert.equal((await startLoad(kakehi.port, { maxRequests: 200, concurrency: 16 }).done()).ok, 200);
    // This query is the last word from the worker about to die.
    const before = await metrics(kakehi.socketPath, { per_worker: true });
    assert.equal(total(before.families, 'kakehi_http_requests_total'), 200);
    const victim = [...before.workers!].sort(
      (a, b) =>
        total(b.families, 'kakehi_http_requests_total') - total(a.families, 'kakehi_http_requests_total'),
    )[0]!;
    const share = total(victim.families, 'kakehi_http_requests_total');
    assert.ok(share > 0);
    const restarted = kakehi.waitLog((l) => l.msg === 'worker restarted');
    process.kill(victim.pid, 'SIGKILL');
    await restarted;
    const after = await metrics(kakehi.socketPath, { per_worker: true });
    assert.equal(after.workers?.length, 2);
    assert.ok(!after.workers!.some((w) => w.pid === victim.pid));
    assert.equal(
      total(after.families, 'kakehi_http_requests_total'),
      200,
      `the killed worker's ${share} requests are still in the sum`,
    );
    const dur = family(after.families, 'kakehi_http_request_duration_seconds').samples as HistogramSample[];
    assert.equal(dur[0]!.count, 200);
    assert.equal((await startLoad(kakehi.port, { maxRequests: 30, concurrency: 2 }).done()).ok, 30);
    assert.equal(total((await metrics(kakehi.socketPath)).families, 'kakehi_http_requests_total'), 230);
  });

  it('stays up when metrics queries race workers that drain and exit (upgrades under a stream of queries)', async () => {
    const kakehi = await oneBackendProxy(2);
    let stop = false;
    let answered = 0;
    const queries = (async () => {
      while (!stop) {
        await metrics(kakehi.socketPath, { per_worker: true });
        answered++;
      }
    })();
    try {
      // waitLog also finds lines already logged: wait for this upgrade's own two
      // drains (one per replaced worker), counted from all the drains so far.
      const drains = () => kakehi.logs.filter((l) => l.msg === 'worker drained');
      for (let i = 0; i < 6; i++) {
        const want = drains().length + 2;
        await ok(kakehi.socketPath, 'upgrade');
        await kakehi.waitLog((l) => l.msg === 'worker drained' && drains().indexOf(l) === want - 1);
      }
    } finally {
      stop = true;
      await queries;
    }
    assert.ok(answered > 0);
    assert.equal(kakehi.proc.exitCode, null, 'main is still running');
    const m = await metrics(kakehi.socketPath, { per_worker: true });
    assert.equal(m.workers?.length, 2);
    assert.equal((await httpGet(kakehi.port, '/')).status, 200);
  });

  it('filters by cluster, backend and family name', async () => {
    const b1 = await echoBackend('b1');
    const b2 = await echoBackend('b2');
    cleanup.push(
      () => b1.close(),
      () => b2.close(),
    );
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [
        { id: 'one', backends: [{ id: 'b1', address: b1.address }] },
        { id: 'two', backends: [{ id: 'b2', address: b2.address }] },
      ],
      frontends: [
        { hostname: 'one.test', cluster: 'one' },
        { hostname: 'two.test', cluster: 'two' },
      ],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    assert.equal((await startLoad(kakehi.port, { maxRequests: 30, host: 'one.test' }).done()).ok, 30);
    assert.equal((await startLoad(kakehi.port, { maxRequests: 20, host: 'two.test' }).done()).ok, 20);

    const names = await metrics(kakehi.socketPath, { names: ['kakehi_http_requests_total'] });
    assert.deepEqual(
      names.families.map((f) => f.name),
      ['kakehi_http_requests_total'],
    );
    assert.equal(total(names.families, 'kakehi_http_requests_total'), 50);

    const two = await metrics(kakehi.socketPath, { cluster: 'two' });
    assert.equal(total(two.families, 'kakehi_http_requests_total'), 20);
    for (const f of two.families) {
      assert.ok(f.samples.length > 0);
      for (const s of f.samples) assert.equal(s.labels['cluster'], 'two', `${f.name} holds only cluster two`);
    }
    const b1only = await metrics(kakehi.socketPath, { backend: 'b1', per_worker: true });
    assert.equal(total(b1only.families, 'kakehi_http_requests_total'), 30);
    assert.equal(total(b1only.workers![0]!.families, 'kakehi_http_requests_total'), 30);
    assert.deepEqual(
      scalars(b1only.families, 'kakehi_backend_up').map((s) => s.labels),
      [{ cluster: 'one', backend: 'b1' }],
    );
  });

  it('reports a backend that refuses connections down (0), with its failures and the retries', async () => {
    const { kakehi } = await startRefusingCluster(cleanup);
    await driveUntilBackendDown(kakehi);
    const m = await metrics(kakehi.socketPath);
    const up = new Map(scalars(m.families, 'kakehi_backend_up').map((s) => [s.labels['backend'], s.value]));
    assert.equal(up.get('flaky'), 0);
    assert.equal(up.get('good'), 1);
    const failures = scalars(m.families, 'kakehi_backend_connect_failures_total');
    assert.deepEqual(
      failures.map((s) => s.labels),
      [{ cluster: 'c', backend: 'flaky' }],
    );
    assert.ok(failures[0]!.value >= 1);
    // Every failed connect was retried on the good backend (two backends, default attempts).
    assert.equal(total(m.families, 'kakehi_backend_retries_total'), failures[0]!.value);
    // No request failed: each is counted 200 on the backend that answered.
    const req = scalars(m.families, 'kakehi_http_requests_total');
    assert.ok(req.every((s) => s.labels['code'] === '200' && s.labels['backend'] === 'good'));
  });

  it('refuses names that are not an array of strings', async () => {
    const kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0' }], access_log: 'off' });
    cleanup.push(() => kakehi.stop());
    await assert.rejects(
      ok(kakehi.socketPath, 'query_metrics', { names: 'kakehi_workers' }),
      /KKH_REQUEST_INVALID/,
    );
  });
});
