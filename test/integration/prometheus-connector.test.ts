// The Prometheus connector against a fake command socket: exposition format as
// promtool checks it, histogram consistency, single flight and cache, timeout and
// proxy-down answers with the connector's own metrics, reconnect, and the
// per-backend series budget.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { type ConnectorOptions, PrometheusConnector } from '../../connectors/prometheus/main.js';
import type { Family } from '../../connectors/prometheus/render.js';
import { httpGet } from '../helpers/http.js';
import {
  FakeMetricsServer,
  promtoolCheck,
  SAMPLE_FAMILIES,
  spawnConnector,
  until,
} from '../helpers/prometheus.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(
  answer: FakeMetricsServer['answer'],
  opts: Partial<ConnectorOptions> = {},
  listenFake = true,
): Promise<{ fake: FakeMetricsServer; connector: PrometheusConnector; port: number }> {
  const fake = new FakeMetricsServer(answer);
  if (listenFake) await fake.listen();
  const connector = new PrometheusConnector(
    {
      socketPath: fake.path,
      host: '127.0.0.1',
      port: 0,
      cacheMs: 0,
      timeoutMs: 2_000,
      perBackend: false,
      maxBackendSeries: 1_000,
      ...opts,
    },
    silent,
  );
  const port = await connector.listen();
  cleanups.push(
    () => connector.close(),
    () => fake.close(),
  );
  return { fake, connector, port };
}

/** The value of one exact series line (`name{labels}`) in exposition text. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('prometheus connector', () => {
  test('serves /metrics that promtool accepts, with HELP, TYPE and escaped label values', async () => {
    const { port } = await setup(() => ({ families: SAMPLE_FAMILIES }), { perBackend: true });
    const res = await httpGet(port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const check = promtoolCheck(res.body);
    assert.equal(check.status, 0, check.output);
    assert.equal(check.output, '', 'promtool lint output');
    for (const name of [
      'kakehi_http_requests_total',
      'kakehi_http_request_duration_seconds',
      'kakehi_connector_up',
    ]) {
      assert.match(res.body, new RegExp(`^# HELP ${name} .+$`, 'm'));
      assert.match(res.body, new RegExp(`^# TYPE ${name} \\w+$`, 'm'));
    }
    // Quote, backslash and newline escaped as the text format says, not URL-encoded.
    assert.equal(
      value(
        res.body,
        'kakehi_http_requests_total{cluster="we\\"ird\\\\clu\\nster",backend="b-0",code="503"}',
      ),
      1,
    );
    assert.equal(value(res.body, 'kakehi_connections_active'), 3);
    assert.equal(value(res.body, 'kakehi_connector_up'), 1);
  });

  test('histograms are cumulative, end in +Inf and _count equals the +Inf bucket', async () => {
    const { port } = await setup(() => ({ families: SAMPLE_FAMILIES }));
    const { body } = await httpGet(port, '/metrics');
    const h = 'kakehi_http_request_duration_seconds';
    const buckets = ['0.005', '0.05', '0.5', '+Inf'].map((le) =>
      value(body, `${h}_bucket{cluster="api",le="${le}"}`),
    );
    assert.deepEqual(buckets, [3, 5, 6, 7]);
    assert.equal(value(body, `${h}_count{cluster="api"}`), 7);
    assert.equal(value(body, `${h}_sum{cluster="api"}`), 1.234);
    // Every histogram series in the output, not just this one: monotonic, count == +Inf.
    const series = new Map<string, number[]>();
    for (const line of body.split('\n')) {
      const m = /^(\w+)_bucket\{(?:(.*),)?le="([^"]+)"\} (\S+)$/.exec(line);
      if (!m) continue;
      const key = m[2] === undefined ? (m[1] as string) : `${m[1]}{${m[2]}}`;
      series.set(key, [...(series.get(key) ?? []), Number(m[4])]);
      if (m[3] === '+Inf') assert.equal(value(body, key.replace(/^\w+/, `${m[1]}_count`)), Number(m[4]), key);
    }
    assert.ok(series.size >= 3);
    for (const [key, counts] of series) {
      for (let i = 1; i < counts.length; i++) {
        assert.ok((counts[i] as number) >= (counts[i - 1] as number), `${key} not cumulative`);
      }
    }
  });

  test('concurrent scrapes share one query, and a cached answer is reused until cache-ms passes', async () => {
    const { fake, port } = await setup(() => ({ families: SAMPLE_FAMILIES }), { cacheMs: 300 });
    fake.delayMs = 150;
    const results = await Promise.all(Array.from({ length: 10 }, () => httpGet(port, '/metrics')));
    assert.deepEqual(
      results.map((r) => r.status),
      Array(10).fill(200),
    );
    assert.equal(fake.queries, 1);
    await httpGet(port, '/metrics');
    assert.equal(fake.queries, 1, 'answered from the cache');
    await new Promise((r) => setTimeout(r, 350));
    await httpGet(port, '/metrics');
    assert.equal(fake.queries, 2, 'queried again once the cache expired');
  });

  test('a proxy that does not answer within timeout-ms gives 200 with kakehi_proxy_up 0 and a timeout error', async () => {
    const { port } = await setup(() => 'hang', { timeoutMs: 200 });
    const started = Date.now();
    const res = await httpGet(port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.body, /^# proxy timeout: .+\n/);
    assert.equal(value(res.body, 'kakehi_proxy_up'), 0);
    assert.ok(Date.now() - started < 1_500, 'bounded by the timeout');
    const own = (await httpGet(port, '/connector-metrics')).body;
    assert.equal(value(own, 'kakehi_connector_scrape_errors_total{reason="timeout"}'), 1);
    assert.equal(value(own, 'kakehi_connector_up'), 0);
    assert.equal(value(own, 'kakehi_connector_query_seconds_count'), 1);
    assert.equal((await httpGet(port, '/readyz')).status, 503);
  });

  test('proxy down gives 200 with kakehi_proxy_up 0 and the reason, proxy back gives its metrics again', async () => {
    const { fake, port } = await setup(() => ({ families: SAMPLE_FAMILIES }), { timeoutMs: 500 }, false);
    const down = await httpGet(port, '/metrics');
    assert.equal(down.status, 200);
    assert.match(down.body, /^# proxy unreachable: /);
    assert.equal(value(down.body, 'kakehi_proxy_up'), 0);
    assert.equal(promtoolCheck(down.body).status, 0);
    assert.equal((await httpGet(port, '/healthz')).status, 200);
    assert.equal((await httpGet(port, '/readyz')).status, 503);
    let own = (await httpGet(port, '/connector-metrics')).body;
    assert.equal(value(own, 'kakehi_connector_up'), 0);
    assert.equal(value(own, 'kakehi_connector_scrape_errors_total{reason="unreachable"}'), 1);

    await fake.listen();
    const up = await until('the proxy up again', async () => {
      const r = await httpGet(port, '/metrics');
      return value(r.body, 'kakehi_proxy_up') === 1 ? r : undefined;
    });
    assert.equal(value(up.body, 'kakehi_connector_up'), 1);
    assert.equal((await httpGet(port, '/readyz')).status, 200);

    // Lost after being connected: proxy_up 0 while gone, then the client's reconnect brings it back.
    await fake.stop();
    const lost = await httpGet(port, '/metrics');
    assert.equal(lost.status, 200);
    assert.equal(value(lost.body, 'kakehi_proxy_up'), 0);
    own = (await httpGet(port, '/connector-metrics')).body;
    assert.equal(value(own, 'kakehi_connector_up'), 0);
    await fake.listen();
    await until('the proxy back', async () =>
      value((await httpGet(port, '/metrics')).body, 'kakehi_proxy_up') === 1 ? true : undefined,
    );
  });

  test('the proxy refusing query_metrics gives 200 with kakehi_proxy_up 0 and its error code', async () => {
    const { port } = await setup(() => ({ error: 'no metrics here' }));
    const res = await httpGet(port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.body, /^# proxy refused: KKH_TEST: no metrics here\n/);
    assert.equal(value(res.body, 'kakehi_proxy_up'), 0);
  });

  test('per-backend series beyond max-backend-series fold into backend="other" and are counted', async () => {
    const families: Family[] = [
      {
        name: 'kakehi_http_requests_total',
        help: 'HTTP requests answered.',
        type: 'counter',
        samples: Array.from({ length: 5 }, (_, i) => ({
          labels: { cluster: 'c', backend: `b-${i}`, code: '200' },
          value: i + 1,
        })),
      },
      {
        name: 'kakehi_backend_response_seconds',
        help: 'Backend time to first byte.',
        type: 'histogram',
        samples: Array.from({ length: 5 }, (_, i) => ({
          labels: { cluster: 'c', backend: `b-${i}` },
          bounds: [0.1, 1],
          counts: [1, 0, 0],
          sum: 0.05,
          count: 1,
        })),
      },
    ];
    const { port } = await setup(() => ({ families }), { perBackend: true, maxBackendSeries: 2 });
    const { body } = await httpGet(port, '/metrics');
    assert.equal(promtoolCheck(body).status, 0);
    const backends = new Set(
      [...body.matchAll(/^kakehi_http_requests_total\{.*backend="([^"]+)"/gm)].map((m) => m[1]),
    );
    assert.deepEqual([...backends].sort(), ['b-0', 'b-1', 'other']);
    assert.equal(
      value(body, 'kakehi_http_requests_total{cluster="c",backend="other",code="200"}'),
      3 + 4 + 5,
    );
    assert.equal(value(body, 'kakehi_backend_response_seconds_count{cluster="c",backend="other"}'), 3);
    assert.equal(value(body, 'kakehi_connector_series_dropped_total'), 6);

    // Without --per-backend the backend label goes away, summed per cluster.
    const plain = await setup(() => ({ families }));
    const text = (await httpGet(plain.port, '/metrics')).body;
    assert.doesNotMatch(text, /^kakehi_\w+\{[^}]*backend=/m);
    assert.equal(value(text, 'kakehi_http_requests_total{cluster="c",code="200"}'), 15);
    assert.equal(value(text, 'kakehi_connector_series_dropped_total'), 0);
  });

  test('kakehi_backend_up stays 0/1: folded backends are counted per cluster in kakehi_backends_up / kakehi_backends', async () => {
    const families: Family[] = [
      {
        name: 'kakehi_backend_up',
        help: 'Whether the backend is considered up (1) or down (0).',
        type: 'gauge',
        samples: [
          { labels: { cluster: 'api', backend: 'a-0' }, value: 1 },
          { labels: { cluster: 'api', backend: 'a-1' }, value: 1 },
          { labels: { cluster: 'api', backend: 'a-2' }, value: 0 },
          { labels: { cluster: 'web', backend: 'w-0' }, value: 0 },
        ],
      },
    ];
    // Without --per-backend: no summed _up gauge, counts instead.
    const plain = await setup(() => ({ families }));
    const text = (await httpGet(plain.port, '/metrics')).body;
    const check = promtoolCheck(text);
    assert.equal(check.status, 0, check.output);
    assert.doesNotMatch(text, /^kakehi_backend_up\{/m);
    assert.equal(value(text, 'kakehi_backends_up{cluster="api"}'), 2);
    assert.equal(value(text, 'kakehi_backends{cluster="api"}'), 3);
    assert.equal(value(text, 'kakehi_backends_up{cluster="web"}'), 0);
    assert.equal(value(text, 'kakehi_backends{cluster="web"}'), 1);

    // --per-backend over budget: admitted backends keep their own 0/1, none goes to "other".
    const budget = await setup(() => ({ families }), { perBackend: true, maxBackendSeries: 2 });
    const body = (await httpGet(budget.port, '/metrics')).body;
    assert.equal(promtoolCheck(body).status, 0);
    const ups = [...body.matchAll(/^kakehi_backend_up\{.*\} (\d+)$/gm)].map((m) => Number(m[1]));
    assert.equal(ups.length, 2);
    assert.ok(
      ups.every((v) => v === 0 || v === 1),
      body,
    );
    assert.doesNotMatch(body, /^kakehi_backend_up\{[^}]*backend="other"/m);
    assert.equal(value(body, 'kakehi_backends_up{cluster="api"}'), 2);
    assert.equal(value(body, 'kakehi_backends{cluster="api"}'), 3);
  });

  test('as a process: logs the bound port for --listen :0, answers, and exits 0 on SIGTERM', async () => {
    const fake = new FakeMetricsServer(() => ({ families: SAMPLE_FAMILIES }));
    await fake.listen();
    cleanups.push(() => fake.close());
    const c = await spawnConnector(['-s', fake.path, '--listen', '127.0.0.1:0', '--cache-ms', '0']);
    const res = await httpGet(c.port, '/metrics');
    assert.equal(res.status, 200);
    assert.equal(value(res.body, 'kakehi_connections_active'), 3);
    // A reload sent to every kakehi unit: the exporter says so and keeps serving
    // (Node's default for SIGHUP would end it).
    c.kill('SIGHUP');
    await until('the SIGHUP logged', async () =>
      c.stderr().includes('nothing to reload') ? true : undefined,
    );
    assert.equal((await httpGet(c.port, '/metrics')).status, 200);
    assert.equal(await c.stop(), 0);
  });
});
