// The Prometheus connector against a real kakehi (two workers): the requests
// sent come out of /metrics exactly, summed across workers, per backend with
// --per-backend, and the whole output passes promtool.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, test } from 'node:test';
import { echoBackend } from '../helpers/backends.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { promtoolCheck, spawnConnector } from '../helpers/prometheus.js';
import { handshake } from '../helpers/tls-client.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** GET /metrics from the connector; promtool must accept it without a lint remark. */
async function scrapeLinted(port: number) {
  const res = await httpGet(port, '/metrics');
  assert.equal(res.status, 200, res.body);
  const check = promtoolCheck(res.body);
  assert.equal(check.status, 0, check.output);
  assert.equal(check.output, '', 'promtool lint output');
  return res;
}

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

  const res = await scrapeLinted(connector.port);
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

test('TLS handshakes and certificate expiry come out of /metrics, and promtool accepts them', async () => {
  const ca = makeCa({ keyType: 'ec' });
  const leaf = issueCert(ca, ['m.test'], { keyType: 'ec' });
  const kakehi = await startKakehi({
    workers: 2,
    listeners: [{ address: '127.0.0.1:0', protocol: 'https' }],
    access_log: 'off',
  });
  cleanups.push(() => kakehi.stop());
  await ok(kakehi.socketPath, 'add_certificate', {
    certificate: { listener: '127.0.0.1:0', certificate: leaf.fullchainPem, key: leaf.keyPem, default: true },
  });
  for (let i = 0; i < 4; i++) await handshake(kakehi.port, { servername: 'm.test', maxVersion: 'TLSv1.3' });
  const connector = await spawnConnector(['-s', kakehi.socketPath, '--listen', '127.0.0.1:0']);
  cleanups.push(() => connector.stop());
  const res = await scrapeLinted(connector.port);
  const lines = res.body.split('\n');
  const handshakes = lines
    .filter((l) => l.startsWith('kakehi_tls_handshakes_total{') && l.includes('version="TLSv1.3"'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  assert.equal(handshakes, 4);
  const expiry = lines.find((l) => l.startsWith('kakehi_certificate_expiry_timestamp_seconds{'));
  assert.ok(expiry?.includes(`fingerprint="${leaf.fingerprint}"`), res.body);
  assert.equal(
    Number(expiry?.split(' ').at(-1)),
    Date.parse(new X509Certificate(leaf.certPem).validTo) / 1000,
  );
});

test('kakehi_backend_up is 0/1 per backend across two workers; folded, backends are counted per cluster', async () => {
  const b1 = await echoBackend('b1');
  const b2 = await echoBackend('b2');
  cleanups.push(
    () => b1.close(),
    () => b2.close(),
  );
  const kakehi = await startKakehi({
    workers: 2,
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [
      {
        id: 'api',
        backends: [
          { id: 'b1', address: b1.address },
          { id: 'b2', address: b2.address },
        ],
      },
    ],
    frontends: [{ hostname: '*', cluster: 'api' }],
    access_log: 'off',
  });
  cleanups.push(() => kakehi.stop());
  const perBackend = await spawnConnector([
    '-s',
    kakehi.socketPath,
    '--listen',
    '127.0.0.1:0',
    '--per-backend',
  ]);
  cleanups.push(() => perBackend.stop());
  const own = (await scrapeLinted(perBackend.port)).body;
  assert.equal(own.match(/^kakehi_backend_up\{cluster="api",backend="b[12]"\} 1$/gm)?.length, 2, own);

  const folded = await spawnConnector(['-s', kakehi.socketPath, '--listen', '127.0.0.1:0']);
  cleanups.push(() => folded.stop());
  const text = (await scrapeLinted(folded.port)).body;
  assert.doesNotMatch(text, /^kakehi_backend_up/m);
  assert.match(text, /^kakehi_backends_up\{cluster="api"\} 2$/m);
  assert.match(text, /^kakehi_backends\{cluster="api"\} 2$/m);
});

test('with the proxy stopped, the connector process still answers 200: its own metrics, kakehi_proxy_up 0, promtool-clean', async () => {
  const kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0' }], access_log: 'off' });
  cleanups.push(() => kakehi.stop());
  const connector = await spawnConnector([
    '-s',
    kakehi.socketPath,
    '--listen',
    '127.0.0.1:0',
    '--cache-ms',
    '0',
  ]);
  cleanups.push(() => connector.stop());
  assert.match((await scrapeLinted(connector.port)).body, /^kakehi_proxy_up 1$/m);
  assert.equal(await kakehi.stop(), 0);
  const res = await scrapeLinted(connector.port);
  assert.match(res.body, /^kakehi_proxy_up 0$/m);
  assert.match(res.body, /^kakehi_connector_up 0$/m);
  assert.doesNotMatch(res.body, /^kakehi_http_requests_total/m, 'nothing stale from the proxy');
});
