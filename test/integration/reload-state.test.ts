import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { echoBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';

describe('reload and state file', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('SIGHUP applies the file as a diff, keeps objects added at runtime, and refuses a broken file while serving', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'app', backends: [{ id: 'a', address: be.address }] }],
      frontends: [{ hostname: 'one.test', cluster: 'app' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    await ok(kakehi.socketPath, 'add_http_frontend', {
      frontend: { hostname: 'runtime.test', cluster: 'app' },
    });
    const config = parse(readFileSync(kakehi.configPath, 'utf8')) as { frontends: object[] };
    config.frontends = [{ hostname: 'two.test', cluster: 'app' }];
    writeFileSync(kakehi.configPath, stringify(config));
    kakehi.proc.kill('SIGHUP');
    await kakehi.waitLog((l) => l.msg === 'SIGHUP reload applied');
    assert.equal((await httpGet(kakehi.port, '/', { host: 'two.test' })).status, 200, 'added by the file');
    assert.equal(
      (await httpGet(kakehi.port, '/', { host: 'one.test' })).status,
      404,
      'removed from the file',
    );
    assert.equal(
      (await httpGet(kakehi.port, '/', { host: 'runtime.test' })).status,
      200,
      'added at runtime: survives',
    );
    const before = (await ok(kakehi.socketPath, 'status'))['generation'];
    writeFileSync(kakehi.configPath, 'listeners: [ {address: \n');
    kakehi.proc.kill('SIGHUP');
    const refused = await kakehi.waitLog(
      (l) => l.msg === 'SIGHUP reload refused; the running state keeps serving',
    );
    assert.match(String(refused['err']), /not valid YAML/);
    assert.equal((await httpGet(kakehi.port, '/', { host: 'two.test' })).status, 200);
    assert.equal((await ok(kakehi.socketPath, 'status'))['generation'], before);
  });

  it('saves the state after each change (mode 0600) and resumes runtime objects after a restart', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const first = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'app', backends: [{ id: 'a', address: be.address }] }],
      frontends: [{ hostname: 'config.test', cluster: 'app' }],
      access_log: 'off',
    });
    const stateFile = join(dirname(first.configPath), 'state.json');
    const config = parse(readFileSync(first.configPath, 'utf8')) as Record<string, unknown>;
    await first.stop();
    writeFileSync(first.configPath, stringify({ ...config, state_file: stateFile }));
    const { startKakehi: again } = await import('../helpers/kakehi-process.js');
    const k1 = await again(readFileSync(first.configPath, 'utf8'));
    await ok(String(config['command_socket']), 'add_http_frontend', {
      frontend: { hostname: 'saved.test', cluster: 'app' },
    });
    assert.ok(existsSync(stateFile));
    assert.equal(statSync(stateFile).mode & 0o777, 0o600);
    assert.equal((await httpGet(k1.port, '/', { host: 'saved.test' })).status, 200);
    assert.equal(await k1.stop(), 0);
    const k2 = await again(readFileSync(first.configPath, 'utf8'));
    cleanup.push(() => k2.stop());
    await k2.waitLog((l) => l.msg === 'resumed the saved state');
    assert.equal(
      (await httpGet(k2.port, '/', { host: 'saved.test' })).status,
      200,
      'the runtime frontend came back',
    );
    assert.equal((await httpGet(k2.port, '/', { host: 'config.test' })).status, 200);
  });

  it('save_state then load_state restores every object with the source it had', async () => {
    const kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0' }], access_log: 'off' });
    cleanup.push(() => kakehi.stop());
    await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'from-pki' }, source: 'pki' });
    const path = join(dirname(kakehi.configPath), 'saved.state');
    await ok(kakehi.socketPath, 'save_state', { path });
    await ok(kakehi.socketPath, 'remove_cluster', { cluster: 'from-pki' });
    const loaded = await ok(kakehi.socketPath, 'load_state', { path });
    assert.deepEqual(loaded['applied'], [{ op: 'put_cluster', key: 'from-pki', effect: 'created' }]);
    const clusters = (await ok(kakehi.socketPath, 'list_clusters'))['clusters'] as {
      id: string;
      source: string;
    }[];
    assert.deepEqual(
      clusters.map((c) => [c.id, c.source]),
      [['from-pki', 'pki']],
    );
  });
});
