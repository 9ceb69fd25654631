import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { echoBackend } from '../helpers/backends.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { startLoad } from '../helpers/load.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

describe('access log with several workers', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('writes exactly one whole JSON line per request, never interleaved across workers', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    const total = 3000;
    const load = startLoad(kakehi.port, { concurrency: 16, maxRequests: total });
    await load.done();
    await kakehi.waitAccess(total);
    assert.deepEqual(load.result.failed, []);
    assert.equal(load.result.ok, total);
    const broken = kakehi.access.filter((l) => l['unparsed'] === true);
    assert.deepEqual(broken.slice(0, 3), []);
    assert.equal(kakehi.access.length, total);
    const clients = new Set(kakehi.access.map((l) => l['client']));
    assert.ok(clients.size > 1, 'several client connections were logged');
  });

  it('reopens the access log file on SIGUSR1 (logrotate: rename, signal), in every worker, and opens no inspector', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-accesslog-'));
    const file = join(dir, 'access.log');
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: file,
    });
    cleanup.push(() => kakehi.stop());
    const lines = (path: string) =>
      existsSync(path)
        ? readFileSync(path, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
        : [];
    // Enough requests over fresh connections that both workers log some.
    const before = startLoad(kakehi.port, { concurrency: 8, maxRequests: 200 });
    await before.done();
    await waitUntil(() => lines(file).length === 200);
    renameSync(file, `${file}.1`);
    kakehi.proc.kill('SIGUSR1');
    await kakehi.waitLog((l) => l.msg === 'SIGUSR1: workers reopen the access log');
    await waitUntil(() => kakehi.logs.filter((l) => l.msg === 'access log reopened').length === 2);
    const after = startLoad(kakehi.port, { concurrency: 8, maxRequests: 200 });
    await after.done();
    await waitUntil(() => lines(file).length === 200);
    assert.equal(lines(`${file}.1`).length, 200, 'nothing more went to the renamed file');
    assert.ok(
      !kakehi.logs.some((l) => String(l.msg).includes('Debugger listening')),
      'no inspector was opened',
    );
    assert.equal(kakehi.proc.exitCode, null);
  });
});

describe('access log fields', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('describes each exchange only: a refused request after a served one on the same connection names no cluster or backend', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    // A good request, then bytes that are no request, pipelined on one connection.
    const r = await rawExchange(
      kakehi.port,
      'GET /first HTTP/1.1\r\nHost: a.test\r\n\r\nNOT A REQUEST\r\n\r\n',
    );
    assert.deepEqual(statusCodes(r.text), [200, 400]);
    const [served, refused] = await kakehi.waitAccess(2);
    assert.equal(served?.['cluster'], 'c');
    assert.equal(served?.['backend'], 'b');
    assert.equal(refused?.['status'], 400);
    assert.equal(refused?.['cluster'], undefined, JSON.stringify(refused));
    assert.equal(refused?.['backend'], undefined, JSON.stringify(refused));
    assert.notEqual(refused?.['request_id'], served?.['request_id']);
  });
});

/** Polls a cheap local condition (a file's lines) until it holds; the test's deadline bounds it. */
async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}
