// Micro-benchmark of what metrics add to one request: the session builds its
// request:end event and publishes it (as ClientSession.publish does), with a
// worker's metrics subscribed, against the same with nobody subscribed
// (KAKEHI_METRICS=off: the event is not even built). The difference is the
// per-request cost of metrics; docs/performance.md sets it against the CPU a
// whole proxied request takes.

import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { WorkerMetrics } from '../src/metrics/worker-metrics.js';
import { type RequestEnd, requestEnd } from '../src/proxy/request-events.js';

// The data plane's in-flight count, bumped as a session does (DataPlane.requestsInFlight).
const plane = { requestsInFlight: 0 };

/** A request ending, as the session sees it; `i` varies route and status like real traffic. */
function endRequest(i: number, clusters: string[], backends: string[], started: number): void {
  // What the session does for every request, subscribers or not.
  plane.requestsInFlight--;
  if (!requestEnd.hasSubscribers) return;
  const event: RequestEnd = {
    listener: 'http://127.0.0.1:8080',
    client: '127.0.0.1:50000',
    method: 'GET',
    host: 'www.example.com',
    path: '/',
    status: i % 50 === 0 ? 404 : 200,
    cluster: clusters[i % clusters.length],
    backend: backends[i % backends.length],
    bytesIn: 120,
    bytesOut: 160,
    durationMs: performance.now() - started,
    backendMs: 0.4,
    requestId: '3f2b9c1e-77aa-4c0e-9f5e-2d1b5c7a9e10',
    tags: undefined,
    protocol: 'http/1.1',
    error: undefined,
  };
  requestEnd.publish(event);
}

function rows(bench: Bench, label: string) {
  return bench.tasks.map((t) => {
    const r = t.result as unknown as { throughput?: { mean: number } } | undefined;
    const ops = r?.throughput?.mean ?? 0;
    return {
      task: `${label}: ${t.name}`,
      'ops/s': Math.round(ops),
      'ns/op': ops > 0 ? Math.round(1e9 / ops) : 0,
    };
  });
}

async function measure(): Promise<Bench> {
  const one = { clusters: ['bench'], backends: ['b1'] };
  const many = { clusters: ['api', 'web', 'static'], backends: ['b1', 'b2', 'b3', 'b4'] };
  let i = 0;
  const started = performance.now();
  const bench = new Bench({ time: 1000 });
  bench
    .add('one route (as in the load benchmark)', () => {
      plane.requestsInFlight++;
      endRequest(i++, one.clusters, one.backends, started);
    })
    .add('3 clusters x 4 backends, 2% 404', () => {
      plane.requestsInFlight++;
      endRequest(i++, many.clusters, many.backends, started);
    });
  await bench.run();
  return bench;
}

export async function runMetricsBench(): Promise<void> {
  const off = await measure();
  const metrics = new WorkerMetrics().start();
  const on = await measure();
  metrics.stop();
  console.log('Metrics per request (building and publishing request:end, the worker counting it)');
  console.table([...rows(off, 'metrics off'), ...rows(on, 'metrics on')]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runMetricsBench();
}
