// The Prometheus connector against a real kakehi (two workers): the requests
// sent come out of /metrics exactly, summed across workers, per backend with
// --per-backend, and the whole output passes promtool.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { echoBackend } from '../helpers/backends.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { promtoolCheck, spawnConnector } from '../helpers/prometheus.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('requests sent through a real kakehi are counted exactly in the connector /metrics', async () => {
  const backend = await echoBackend('b1');
  cleanups.push(() => backend.close());
  const kakehi = await startKakehi({
    workers: 2,
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [{ id: 'c', backends: [{ id: 'b1', address: backend.address }] }],
    frontends: [{ hostname: 'load.test', cluster: 'c' }],
    access_log: 'off',
  });
  cleanups.push(() => kakehi.stop());
  const sent = 25;
  for (let i = 0; i < sent; i++) {
    assert.equal((await httpGet(kakehi.port, '/', { host: 'load.test' })).status, 200);
  }
  const connector = await spawnConnector([
    '-s',
    kakehi.socketPath,
    '--listen',
    '127.0.0.1:0',
    '--per-backend',
  ]);
  cleanups.push(() => connector.stop());

  const res = await httpGet(connector.port, '/metrics');
  assert.equal(res.status, 200, res.body);
  const check = promtoolCheck(res.body);
  assert.equal(check.status, 0, check.output);
  assert.equal(check.output, '', 'promtool lint output');
  const line = res.body
    .split('\n')
    .find((l) => l.startsWith('kakehi_http_requests_total{cluster="c",backend="b1",code="200"} '));
  assert.ok(line, res.body);
  assert.equal(Number(line.split(' ')[1]), sent);
  const count = res.body
    .split('\n')
    .find((l) => l.startsWith('kakehi_http_request_duration_seconds_count{cluster="c"} '));
  assert.equal(Number(count?.split(' ')[1]), sent);
  const inf = res.body
    .split('\n')
    .find((l) => l.startsWith('kakehi_http_request_duration_seconds_bucket{cluster="c",le="+Inf"} '));
  assert.equal(Number(inf?.split(' ')[1]), sent);
});
