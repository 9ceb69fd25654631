// A real Prometheus (Debian's package, loopback, 1 s scrape interval, temp TSDB)
// scrapes the connector running as its own process; a PromQL query through the
// HTTP API must return the request count the proxy reported. Not skipped when
// prometheus is missing: it fails saying what to install.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { httpGet } from '../helpers/http.js';
import {
  FakeMetricsServer,
  PROMETHEUS,
  requireBinary,
  SAMPLE_FAMILIES,
  spawnConnector,
  until,
} from '../helpers/prometheus.js';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

test('a real Prometheus scrapes the connector and PromQL returns the request count served', async () => {
  requireBinary(PROMETHEUS);
  const fake = new FakeMetricsServer(() => ({ families: SAMPLE_FAMILIES }));
  await fake.listen();
  cleanups.push(() => fake.close());
  const connector = await spawnConnector(['-s', fake.path, '--listen', '127.0.0.1:0']);
  cleanups.push(() => connector.stop());
  const sent = SAMPLE_FAMILIES[0]?.samples.reduce((n, s) => n + ('value' in s ? s.value : 0), 0);
  assert.equal(sent, 8);

  const dir = mkdtempSync(join(tmpdir(), 'kakehi-prometheus-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: kakehi
    static_configs:
      - targets: ['127.0.0.1:${connector.port}']
`,
  );
  const port = await freePort();
  let log = '';
  const prom: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prom.stderr?.setEncoding('utf8');
  prom.stderr?.on('data', (c: string) => {
    log = (log + c).slice(-20_000);
  });
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        if (prom.exitCode !== null) return r();
        prom.once('exit', () => r());
        prom.kill('SIGTERM');
      }),
  );

  const query = encodeURIComponent('sum(kakehi_http_requests_total)');
  const got = await until(
    'Prometheus to answer the PromQL query with a scraped value',
    async () => {
      if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${log}`);
      const res = await httpGet(port, `/api/v1/query?query=${query}`);
      if (res.status !== 200) return undefined;
      const body = JSON.parse(res.body) as { data: { result: { value: [number, string] }[] } };
      const v = body.data.result[0]?.value[1];
      return v === undefined ? undefined : Number(v);
    },
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nprometheus log tail:\n${log.slice(-3_000)}`);
  });
  assert.equal(got, sent);

  // The scrape itself was healthy, as Prometheus saw it.
  const up = JSON.parse(
    (await httpGet(port, `/api/v1/query?query=${encodeURIComponent('up{job="kakehi"}')}`)).body,
  );
  assert.equal(up.data.result[0]?.value[1], '1');
});
