// A worker's metrics fed with request:end events as the data plane publishes
// them: exact counts per cluster, backend and status code, the series cached
// per route still landing in the right label sets, and requests_active read
// from the data plane's in-flight count.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Family, HistogramSample, ScalarSample } from '../../src/metrics/registry.js';
import { WorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { type RequestEnd, requestEnd } from '../../src/proxy/request-events.js';

function end(over: Partial<RequestEnd>): RequestEnd {
  return {
    listener: 'http://127.0.0.1:0',
    client: '127.0.0.1:1',
    method: 'GET',
    host: 'a.test',
    path: '/',
    status: 200,
    cluster: 'c',
    backend: 'b1',
    bytesIn: 10,
    bytesOut: 100,
    durationMs: 2,
    backendMs: 1,
    requestId: 'r',
    tags: undefined,
    protocol: 'http/1.1',
    error: undefined,
    ...over,
  };
}

function samples(fams: Family[], name: string) {
  const f = fams.find((x) => x.name === name);
  assert.ok(f, name);
  return f.samples;
}

function sorted(fams: Family[], name: string): [Record<string, string>, number][] {
  return (samples(fams, name) as ScalarSample[])
    .map((s): [Record<string, string>, number] => [s.labels, s.value])
    .sort((a, b) => JSON.stringify(a[0]).localeCompare(JSON.stringify(b[0])));
}

describe('worker metrics', () => {
  let m: WorkerMetrics | undefined;
  afterEach(() => {
    m?.stop();
    m = undefined;
  });

  it('counts each request once under its cluster, backend and code', () => {
    m = new WorkerMetrics().start();
    const events = [
      ...Array.from({ length: 5 }, () => end({})),
      ...Array.from({ length: 3 }, () => end({ status: 503 })),
      ...Array.from({ length: 2 }, () => end({ backend: 'b2', status: 200 })),
      ...Array.from({ length: 4 }, () => end({ cluster: 'd', backend: 'b1', status: 200 })),
      end({ cluster: undefined, backend: undefined, status: 404, backendMs: -1 }),
      end({ status: 499, backendMs: -1 }),
    ];
    // Strings equal in content but not the same objects still reach the same series.
    events.push(end({ cluster: ['c'].join(''), backend: `b${1}`, status: 200 }));
    for (const e of events) requestEnd.publish(e);
    const fams = m.families();
    assert.deepEqual(sorted(fams, 'kakehi_http_requests_total'), [
      [{ cluster: '', backend: '', code: '404' }, 1],
      [{ cluster: 'c', backend: 'b1', code: '200' }, 6],
      [{ cluster: 'c', backend: 'b1', code: '499' }, 1],
      [{ cluster: 'c', backend: 'b1', code: '503' }, 3],
      [{ cluster: 'c', backend: 'b2', code: '200' }, 2],
      [{ cluster: 'd', backend: 'b1', code: '200' }, 4],
    ]);
    // One duration histogram per cluster, shared by its backends.
    const dur = samples(fams, 'kakehi_http_request_duration_seconds') as HistogramSample[];
    assert.deepEqual(
      dur.map((h) => [h.labels, h.count]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        [{ cluster: '' }, 1],
        [{ cluster: 'c' }, 12],
        [{ cluster: 'd' }, 4],
      ],
    );
    // Backend time only for requests a backend answered (backendMs >= 0).
    const be = samples(fams, 'kakehi_backend_response_seconds') as HistogramSample[];
    assert.deepEqual(
      be.map((h) => [h.labels, h.count]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        [{ cluster: 'c', backend: 'b1' }, 9],
        [{ cluster: 'c', backend: 'b2' }, 2],
        [{ cluster: 'd', backend: 'b1' }, 4],
      ],
    );
    // 2 ms and 1 ms land in the (0.001, 0.0025] and (0, 0.001] buckets.
    const c = dur.find((h) => h.labels['cluster'] === 'c')!;
    assert.equal(c.counts[1], 12);
    assert.equal(be.find((h) => h.labels['backend'] === 'b2')!.counts[0], 2);
    assert.deepEqual(sorted(fams, 'kakehi_client_bytes_received_total'), [[{}, 10 * events.length]]);
    assert.deepEqual(sorted(fams, 'kakehi_client_bytes_sent_total'), [[{}, 100 * events.length]]);
  });

  it('counts a status outside the 3-digit range without caching it', () => {
    m = new WorkerMetrics().start();
    requestEnd.publish(end({ status: 1000 }));
    requestEnd.publish(end({ status: 1000 }));
    requestEnd.publish(end({ status: 200 }));
    assert.deepEqual(sorted(m.families(), 'kakehi_http_requests_total'), [
      [{ cluster: 'c', backend: 'b1', code: '1000' }, 2],
      [{ cluster: 'c', backend: 'b1', code: '200' }, 1],
    ]);
  });

  it('reads requests_active from the in-flight count, and stops counting once stopped', () => {
    m = new WorkerMetrics().start();
    assert.deepEqual(sorted(m.families(3), 'kakehi_requests_active'), [[{}, 3]]);
    m.stop();
    requestEnd.publish(end({}));
    assert.deepEqual(sorted(m.families(), 'kakehi_http_requests_total'), []);
  });
});
