import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { echoBackend, gatedBackend, rawBackend } from '../helpers/backends.js';
import { httpGet } from '../helpers/http.js';
import { CLI, startKakehi } from '../helpers/kakehi-process.js';
import { driveUntilBackendDown, startRefusingCluster } from '../helpers/refusing-backend.js';

function connectOutcome(port: number): Promise<'refused' | 'connected'> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', () => resolve('refused'));
  });
}

describe('process lifecycle', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('on SIGTERM stops accepting, finishes the in-flight request, and exits 0', async () => {
    const backend = await gatedBackend('slow');
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      drain_timeout_ms: 30_000,
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop('SIGKILL'));
    const inFlight = httpGet(kakehi.port, '/slow');
    await once(backend.server, 'request');
    kakehi.proc.kill('SIGTERM');
    await kakehi.waitLog((l) => l.msg === 'not accepting new connections');
    assert.equal(await connectOutcome(kakehi.port), 'refused', 'no new connections while draining');
    backend.release();
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'finished');
    assert.equal(await kakehi.exited, 0);
  });

  it('a SIGTERM during start-up waits for the start, then drains and exits 0 (not killed by the default action)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-early-stop-'));
    writeFileSync(
      join(dir, 'c.yaml'),
      `workers: 2\ncommand_socket: ${join(dir, 'k.sock')}\naccess_log: 'off'\nlisteners: [{address: '127.0.0.1:0'}]\n`,
    );
    const proc = spawn(process.execPath, [CLI, 'run', '-c', join(dir, 'c.yaml')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr.setEncoding('utf8');
    const firstWorker = new Promise<void>((resolve) => {
      proc.stderr.on('data', (c: string) => {
        err += c;
        if (err.includes('"worker ready"')) resolve();
      });
    });
    const exited = once(proc, 'exit') as Promise<[number | null, string | null]>;
    await firstWorker;
    proc.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.equal(signal, null, err);
    assert.equal(code, 0, err);
    assert.match(err, /"msg":"stopped"/);
  });

  it('cuts what is still running when the drain timeout passes, and still exits 0', async () => {
    const backend = await echoBackend('never', () => true);
    cleanup.push(() => backend.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      drain_timeout_ms: 200,
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop('SIGKILL'));
    const inFlight = httpGet(kakehi.port, '/never').then(
      () => 'answered',
      () => 'cut',
    );
    await once(backend.server, 'request');
    kakehi.proc.kill('SIGTERM');
    assert.equal(await inFlight, 'cut');
    assert.equal(await kakehi.exited, 0);
    assert.ok(
      kakehi.logs.some((l) => l.msg === 'drain timeout passed; connections cut' && l['connections'] === 1),
    );
  });

  it('closes idle keep-alive connections on SIGTERM after a short grace for a last request', async () => {
    const kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0' }], access_log: 'off' });
    cleanup.push(() => kakehi.stop('SIGKILL'));
    // One answered request proves the proxy holds the connection (not just the kernel's backlog).
    const idle = connect(kakehi.port, '127.0.0.1');
    idle.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await once(idle, 'data');
    const closed = once(idle, 'close');
    kakehi.proc.kill('SIGTERM');
    await closed;
    assert.equal(await kakehi.exited, 0);
  });

  it('reports a failing backend down, serves from the others meanwhile, and reports it up when it returns', async () => {
    const { kakehi, flakyPort } = await startRefusingCluster(cleanup);
    await driveUntilBackendDown(kakehi);
    const down = await kakehi.waitLog((l) => l.msg === 'backend down');
    assert.equal(down['backend'], 'flaky');
    // The backend comes back: once its backoff passes, a request reaches it and it is reported up.
    const revived = await rawBackend((s) => {
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 19\r\nConnection: close\r\n\r\n{"backend":"flaky"}');
    }, flakyPort);
    cleanup.push(() => revived.close());
    const up = kakehi.waitLog((l) => l.msg === 'backend up');
    let reached = false;
    const deadline = Date.now() + 60_000;
    while (!reached && Date.now() < deadline) {
      const res = await httpGet(kakehi.port, '/');
      assert.equal(res.status, 200);
      reached = res.body.includes('flaky');
      if (!reached) await new Promise((r) => setTimeout(r, 50)); // pacing a poll, not asserting time
    }
    assert.ok(reached, 'the revived backend got traffic again');
    assert.equal((await up)['backend'], 'flaky');
  });
});
