import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { gatedBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { CLI, startKakehi } from '../helpers/kakehi-process.js';

const run = promisify(execFile);

describe('hot changes leave running traffic alone', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('lets a removed backend finish its in-flight request', async () => {
    const slow = await gatedBackend('slow');
    cleanup.push(() => slow.close());
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'slow', address: slow.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const inFlight = httpGet(kakehi.port, '/', { host: 'a.test' });
    await once(slow.server, 'request');
    await ok(kakehi.socketPath, 'remove_backend', { cluster: 'c', backend: 'slow' });
    // Removed and acknowledged: new requests find no backend...
    assert.equal((await httpGet(kakehi.port, '/', { host: 'a.test' })).status, 503);
    // ...while the one already there completes.
    slow.release();
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'finished');
  });

  it('keeps an open WebSocket through changes, and kakehi ctl drives the real proxy', async () => {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(async () => {
      wss.close();
      server.closeAllConnections();
      server.close();
    });
    const port = (server.address() as AddressInfo).port;
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'ws', backends: [{ id: 'w', address: `127.0.0.1:${port}` }] }],
      frontends: [{ hostname: '*', cluster: 'ws' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const ws = new WebSocket(`ws://127.0.0.1:${kakehi.port}/`);
    await once(ws, 'open');
    const ctl = (...args: string[]) => run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, ...args]);
    await ctl('cluster', 'add', '--id', 'other');
    await ctl('backend', 'add', '--cluster', 'ws', '--id', 'w2', '--address', `127.0.0.1:${port}`);
    await ctl('frontend', 'add', '--hostname', 'other.test', '--cluster', 'other');
    ws.send('still here');
    const [echo] = (await once(ws, 'message')) as [Buffer];
    assert.equal(echo.toString(), 'still here');
    ws.close();
    const { stdout } = await ctl('clusters');
    assert.match(stdout, /other/);
    assert.match(stdout, /ws/);
    // A refused change exits 1 and names the problem.
    const refused = await ctl(
      'backend',
      'add',
      '--cluster',
      'nope',
      '--id',
      'x',
      '--address',
      '127.0.0.1:1',
    ).then(
      () => assert.fail('accepted'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /nope/);
    const json = JSON.parse((await ctl('--json', 'status')).stdout) as { generation: number };
    assert.equal(typeof json.generation, 'number');
  });
});
