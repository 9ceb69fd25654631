// Backend admin states (active, drain, maintenance) against a real kakehi and
// real backends: set from the config file, from `kakehi ctl backend …` and over
// the socket; open requests finish, new ones avoid the backend, all out is 503;
// `ctl backends` shows in-flight requests gathered from the workers; a state
// set at runtime comes back after a restart through the state file.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { echoBackend, gatedBackend } from '../helpers/backends.js';
import { command, ok } from '../helpers/command.js';
import { ctl, ctlRow } from '../helpers/ctl-table.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { servedByEach } from '../helpers/served-by.js';

interface LiveBackend {
  id: string;
  state: string;
  health: string;
  in_flight: number;
  source: string;
}

async function liveBackends(socket: string): Promise<Map<string, LiveBackend>> {
  const r = await ok(socket, 'query_backends');
  return new Map((r['backends'] as LiveBackend[]).map((b) => [b.id, b]));
}

/** One cluster `c` of `backends`, served for every host on one listener. */
function oneCluster(backends: object[], cluster: object = {}): object {
  return {
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [{ id: 'c', ...cluster, backends }],
    frontends: [{ hostname: '*', cluster: 'c' }],
    access_log: 'off',
  };
}

describe('backend states: drain, maintenance, ready', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('drain: the open request finishes, new requests go to the other backend; a config-file drain holds from the start', async () => {
    const slow = await gatedBackend('slow', { holds: (req) => req.url === '/slow' });
    const other = await echoBackend('other');
    cleanup.push(
      () => slow.close(),
      () => other.close(),
    );
    const kakehi = await startKakehi(
      oneCluster([
        { id: 'slow', address: slow.address },
        { id: 'other', address: other.address, state: 'drain' },
      ]),
    );
    cleanup.push(() => kakehi.stop());
    const sock = kakehi.socketPath;

    assert.deepEqual(await servedByEach(kakehi.port, 4), ['slow', 'slow', 'slow', 'slow']);
    assert.equal((await liveBackends(sock)).get('other')?.state, 'drain');

    const held = request({ host: '127.0.0.1', port: kakehi.port, path: '/slow', agent: false });
    held.end();
    const response = once(held, 'response');
    await slow.holding;
    const during = await ctl(sock, 'backends');
    assert.equal(during.code, 0, during.stderr);
    assert.equal(ctlRow(during.stdout, 'slow')['IN_FLIGHT'], '1', during.stdout);
    assert.equal(ctlRow(during.stdout, 'slow')['STATE'], 'active');

    const ready = await ctl(sock, 'backend', 'ready', '--cluster', 'c', '--id', 'other');
    assert.equal(ready.code, 0, ready.stderr);
    const drained = await ctl(sock, 'backend', 'drain', '--cluster', 'c', '--id', 'slow');
    assert.equal(drained.code, 0, drained.stderr);
    assert.deepEqual(await servedByEach(kakehi.port, 4), ['other', 'other', 'other', 'other']);
    assert.equal((await liveBackends(sock)).get('slow')?.in_flight, 1, 'the held request is still open');

    slow.release();
    const [res] = (await response) as [import('node:http').IncomingMessage];
    let body = '';
    for await (const c of res) body += String(c);
    assert.equal(res.statusCode, 200);
    assert.equal(body, 'finished');
    const afterwards = ctlRow((await ctl(sock, 'backends')).stdout, 'slow');
    assert.equal(afterwards['IN_FLIGHT'], '0');
    assert.equal(afterwards['STATE'], 'drain');
    assert.equal(afterwards['SOURCE'], 'runtime');
  });

  it('maintenance takes a backend out; every backend out answers 503 with the answer page; ready brings it back', async () => {
    const a = await echoBackend('a');
    const b = await echoBackend('b');
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    const kakehi = await startKakehi(
      oneCluster(
        [
          { id: 'a', address: a.address },
          { id: 'b', address: b.address, backup: true },
        ],
        { load_balancing: 'least_connections' },
      ),
    );
    cleanup.push(() => kakehi.stop());
    const sock = kakehi.socketPath;
    const set = (backend: string, state: string) =>
      ok(sock, 'set_backend_state', { cluster: 'c', backend, state });

    await set('a', 'maintenance');
    assert.deepEqual(await servedByEach(kakehi.port, 3), ['b', 'b', 'b'], 'the backup serves');
    await set('b', 'maintenance');
    const seenBefore = a.seen.length + b.seen.length;
    const out = await httpGet(kakehi.port, '/');
    assert.equal(out.status, 503);
    assert.match(out.body, /<h1>503 Service Unavailable<\/h1>/);
    assert.match(out.body, /no backend is available/);
    assert.equal(a.seen.length + b.seen.length, seenBefore, 'no backend got the request');
    const clusters = await ctl(sock, 'clusters');
    assert.equal(clusters.code, 0, clusters.stderr);
    const row = ctlRow(clusters.stdout, 'c', 0);
    assert.equal(row['MAINTENANCE'], '2', clusters.stdout);
    const top = await ctl(sock, 'top', '--cluster', 'c');
    assert.equal(top.code, 0, top.stderr);
    const total = ctlRow(top.stdout.split('\n').slice(1).join('\n'), '*');
    assert.deepEqual([total['REQUESTS'], total['2XX'], total['5XX']], ['4', '3', '1'], top.stdout);

    await set('a', 'active');
    assert.deepEqual(await servedByEach(kakehi.port, 2), ['a', 'a']);
  });

  it('refuses an unknown state or backend, naming what is wrong, and changes nothing', async () => {
    const kakehi = await startKakehi(oneCluster([{ id: 'a', address: '127.0.0.1:1' }]));
    cleanup.push(() => kakehi.stop());
    const before = (await ok(kakehi.socketPath, 'status'))['generation'];
    const badState = await command(kakehi.socketPath, 'set_backend_state', {
      cluster: 'c',
      backend: 'a',
      state: 'sleeping',
    });
    assert.equal(badState.error?.code, 'KKH_REQUEST_INVALID');
    assert.equal(badState.error?.issues?.[0]?.path, 'state');
    const missing = await ctl(kakehi.socketPath, 'backend', 'drain', '--cluster', 'c', '--id', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /KKH_CHANGE_INVALID/);
    assert.match(missing.stderr, /backend "c\/nope" does not exist/);
    assert.equal((await ok(kakehi.socketPath, 'status'))['generation'], before);
  });

  it('a state set at runtime survives a restart through the state file', async () => {
    const a = await echoBackend('a');
    const b = await echoBackend('b');
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    const first = await startKakehi(
      oneCluster([
        { id: 'a', address: a.address },
        { id: 'b', address: b.address },
      ]),
    );
    const config = parse(readFileSync(first.configPath, 'utf8')) as Record<string, unknown>;
    await first.stop();
    const stateFile = join(dirname(first.configPath), 'state.json');
    const text = stringify({ ...config, state_file: stateFile });
    writeFileSync(first.configPath, text);

    const k1 = await startKakehi(text);
    const socket = String(config['command_socket']);
    await ok(socket, 'set_backend_state', { cluster: 'c', backend: 'a', state: 'drain' });
    assert.equal(await k1.stop(), 0);

    const k2 = await startKakehi(text);
    cleanup.push(() => k2.stop());
    await k2.waitLog((l) => l.msg === 'resumed the saved state');
    const live = await liveBackends(socket);
    assert.equal(live.get('a')?.state, 'drain');
    assert.equal(live.get('b')?.state, 'active');
    assert.deepEqual(await servedByEach(k2.port, 3), ['b', 'b', 'b']);
  });
});
