// State that changes behind the operator's back (issue 13 §3), against a real
// kakehi: a reload names the file objects another source holds; a remove of
// something absent is an error unless --if-exists; every applied or refused
// change is one audit line in main's log; a put_cluster may nest its backends.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { command, ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { CLI, type Kakehi, type LogLine, startKakehi } from '../helpers/kakehi-process.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ctl(kakehi: Kakehi, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const audits = (k: Kakehi): LogLine[] => k.logs.filter((l) => l['audit'] === 'change');

describe('changes behind the operator’s back', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  /** A kakehi whose file has a listener and cluster app with backend a (a real one). */
  const proxy = async (more: object = {}): Promise<{ kakehi: Kakehi; be: Backend }> => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'app', backends: [{ id: 'a', address: be.address }] }],
      access_log: 'off',
      ...more,
    });
    cleanup.push(() => kakehi.stop());
    return { kakehi, be };
  };

  it('a reload names the file objects another source holds, and what the file wanted', async () => {
    const { kakehi, be } = await proxy({ frontends: [{ hostname: 'one.test', cluster: 'app' }] });
    // The file's listener, changed at runtime: from now on 'runtime' holds it.
    const changed = await ctl(kakehi, 'listener', 'add', '--address', '127.0.0.1:0');
    assert.equal(changed.code, 0, changed.stderr);
    await ok(kakehi.socketPath, 'add_http_listener', {
      listener: { address: '127.0.0.1:0', keepalive_timeout_ms: 1234 },
    });
    const listeners = await ctl(kakehi, 'listeners');
    assert.match(listeners.stdout, /^127\.0\.0\.1:0\s+\d+\s+http\s+runtime\s/m);

    const config = parse(readFileSync(kakehi.configPath, 'utf8')) as Record<string, unknown>;
    config['listeners'] = [{ address: '127.0.0.1:0', keepalive_timeout_ms: 5000 }];
    config['clusters'] = [
      { id: 'app', load_balancing: 'random', backends: [{ id: 'a', address: be.address }] },
    ];
    writeFileSync(kakehi.configPath, stringify(config));

    const r = await ok(kakehi.socketPath, 'reload');
    assert.deepEqual(r['applied'], [{ op: 'put_cluster', key: 'app', effect: 'updated' }]);
    const shadowed = r['shadowed'] as Record<string, unknown>[];
    assert.equal(shadowed.length, 1, JSON.stringify(shadowed));
    assert.deepEqual(
      { ...shadowed[0], file_wants: undefined },
      { kind: 'listener', key: '127.0.0.1:0', held_by: 'runtime', differs: true, file_wants: undefined },
    );
    assert.equal((shadowed[0]!['file_wants'] as Record<string, unknown>)['keepalive_timeout_ms'], 5000);
    const logged = await kakehi.waitLog((l) => String(l.msg).startsWith('configuration reloaded;'));
    assert.deepEqual(logged['shadowed'], shadowed);

    const again = await ctl(kakehi, 'reload');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /1 object\(s\) of the file are held by another source and did not follow it/);
    assert.match(again.stdout, /^listener\s+127\.0\.0\.1:0\s+runtime\s+\{.*"keepalive_timeout_ms":5000/m);
    const state = await ctl(kakehi, 'state');
    assert.match(state.stdout, /^put_listener\s+runtime\s+\{"address":"127\.0\.0\.1:0"/m);
    assert.match(state.stdout, /^put_cluster\s+config\s+\{"id":"app"/m);
  });

  it('refuses to remove what does not exist unless --if-exists, with ctl exit 1', async () => {
    const { kakehi } = await proxy();
    const generation = (await ok(kakehi.socketPath, 'status'))['generation'];

    const refused = await command(kakehi.socketPath, 'remove_backend', { cluster: 'app', backend: 'typo' });
    assert.equal(refused.error?.code, 'KKH_OBJECT_NOT_FOUND');
    assert.deepEqual(
      refused.error?.issues?.map((i) => i.path),
      ['changes[0]'],
    );
    assert.match(refused.error?.issues?.[0]?.reason ?? '', /backend app\/typo does not exist/);
    const tolerated = await ok(kakehi.socketPath, 'remove_backend', {
      cluster: 'app',
      backend: 'typo',
      if_exists: true,
    });
    assert.deepEqual(tolerated['applied'], [{ op: 'delete_backend', key: 'app/typo', effect: 'unchanged' }]);

    // In a transaction, each delete says for itself; one refused delete refuses all.
    const txn = await command(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_cluster', cluster: { id: 'new' } },
        { op: 'delete_cluster', id: 'gone', if_exists: true },
        { op: 'delete_frontend', frontend: { hostname: 'nope.test' } },
      ],
    });
    assert.equal(txn.error?.code, 'KKH_OBJECT_NOT_FOUND');
    assert.deepEqual(
      txn.error?.issues?.map((i) => i.path),
      ['changes[2]'],
    );
    assert.equal((await ok(kakehi.socketPath, 'status'))['generation'], generation);
    assert.equal((await ok(kakehi.socketPath, 'status'))['clusters'], 1);

    const cli = await ctl(kakehi, 'cluster', 'remove', 'nope');
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /KKH_OBJECT_NOT_FOUND/);
    assert.match(cli.stderr, /cluster nope does not exist/);
    const cliOk = await ctl(kakehi, 'cluster', 'remove', 'nope', '--if-exists');
    assert.equal(cliOk.code, 0, cliOk.stderr);
    assert.match(cliOk.stdout, /delete_cluster\s+nope\s+unchanged/);
    // A remove of what exists is unchanged by all this.
    const real = await ctl(kakehi, 'backend', 'remove', 'app', 'a');
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /delete_backend\s+app\/a\s+deleted/);
  });

  it('logs exactly one audit line per applied or refused change, from the socket, a reload and SIGHUP', async () => {
    const { kakehi, be } = await proxy();
    const g = (await ok(kakehi.socketPath, 'status'))['generation'] as number;

    // 1. applied from the socket
    await ok(kakehi.socketPath, 'add_backend', { backend: { cluster: 'app', id: 'b', address: be.address } });
    await kakehi.waitLog((l) => l['audit'] === 'change' && l['request'] === 'add_backend');
    // 2. refused inside the transaction (a dangling reference)
    await command(kakehi.socketPath, 'add_http_frontend', {
      frontend: { hostname: 'x.test', cluster: 'none' },
    });
    await kakehi.waitLog((l) => l['audit'] === 'change' && l['request'] === 'add_http_frontend');
    // 3. refused before it (not a change at all), by a connector's source
    await command(kakehi.socketPath, 'transaction', { source: 'pulsar', changes: [{ op: 'put_nothing' }] });
    await kakehi.waitLog((l) => l['audit'] === 'change' && l['request'] === 'transaction');
    // 4. a dry run changes nothing and is not audited; 5. a reload that changes nothing
    await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'dry' }, dry_run: true });
    await ok(kakehi.socketPath, 'reload');
    await kakehi.waitLog((l) => l['audit'] === 'change' && l['request'] === 'reload');
    // 6. a reload refused: the file is broken
    const path = kakehi.configPath;
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, 'listeners: [ {address: \n');
    assert.equal((await command(kakehi.socketPath, 'reload')).error?.code, 'KKH_CONFIG_UNREADABLE');
    await kakehi.waitLog((l) => l['audit'] === 'change' && l['refused'] === 'KKH_CONFIG_UNREADABLE');
    // 7. SIGHUP on a fixed file that removes backend a
    const fixed = parse(good) as Record<string, unknown>;
    fixed['clusters'] = [{ id: 'app', backends: [] }];
    writeFileSync(path, stringify(fixed));
    kakehi.proc.kill('SIGHUP');
    await kakehi.waitLog((l) => l['audit'] === 'change' && l['request'] === 'SIGHUP');

    const fields = audits(kakehi).map((l) => ({
      request: l['request'],
      source: l['source'],
      before: l['generation_before'],
      after: l['generation_after'],
      refused: l['refused'],
      effects: l['effects'],
      keys: (l['changes'] as { key: string }[] | undefined)?.map((c) => c.key) ?? l['keys'],
    }));
    const none = { created: 0, updated: 0, deleted: 0, unchanged: 0 };
    assert.deepEqual(fields, [
      {
        request: 'add_backend',
        source: 'runtime',
        before: g,
        after: g + 1,
        refused: undefined,
        effects: { ...none, created: 1 },
        keys: ['app/b'],
      },
      {
        request: 'add_http_frontend',
        source: 'runtime',
        before: g + 1,
        after: g + 1,
        refused: 'KKH_CHANGE_INVALID',
        effects: undefined,
        keys: ['frontend *;x.test;prefix:/;*'],
      },
      {
        request: 'transaction',
        source: 'pulsar',
        before: g + 1,
        after: g + 1,
        refused: 'KKH_CHANGE_INVALID',
        effects: undefined,
        keys: undefined,
      },
      {
        request: 'reload',
        source: 'config',
        before: g + 1,
        after: g + 1,
        refused: undefined,
        effects: none,
        keys: [],
      },
      {
        request: 'reload',
        source: 'config',
        before: g + 1,
        after: g + 1,
        refused: 'KKH_CONFIG_UNREADABLE',
        effects: undefined,
        keys: undefined,
      },
      {
        request: 'SIGHUP',
        source: 'config',
        before: g + 1,
        after: g + 2,
        refused: undefined,
        effects: { ...none, deleted: 1 },
        keys: ['app/a'],
      },
    ]);
    const refusal = audits(kakehi)[1]!;
    assert.deepEqual(refusal['issues'], ['changes[0].frontend.cluster']);
  });

  it('put_cluster with nested backends makes them the cluster’s backends, over the socket and with ctl apply', async () => {
    const a = await echoBackend('a');
    const c = await echoBackend('c');
    cleanup.push(
      () => a.close(),
      () => c.close(),
    );
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-nested-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const stateFile = join(dir, 'state.json');
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'app', backends: [{ id: 'a', address: a.address }] }],
      frontends: [{ hostname: '*', cluster: 'app' }],
      access_log: 'off',
      state_file: stateFile,
    });
    cleanup.push(() => kakehi.stop());
    await ok(kakehi.socketPath, 'add_backend', { backend: { cluster: 'app', id: 'b', address: a.address } });

    const refused = async (backends: object[]) =>
      (await command(kakehi.socketPath, 'add_cluster', { cluster: { id: 'app', backends } })).error;
    const bad = await refused([{ id: 'c', address: 'nohost' }]);
    assert.equal(bad?.code, 'KKH_CHANGE_INVALID');
    assert.deepEqual(
      bad?.issues?.map((i) => i.path),
      ['changes[0].cluster.backends[0].address'],
    );
    const twice = await refused([
      { id: 'd', address: c.address },
      { id: 'd', address: a.address },
    ]);
    assert.deepEqual(
      twice?.issues?.map((i) => i.path),
      ['changes[0].cluster.backends[1].id'],
    );

    const r = await ok(kakehi.socketPath, 'add_cluster', {
      cluster: { id: 'app', load_balancing: 'random', backends: [{ id: 'c', address: c.address }] },
    });
    assert.deepEqual(r['applied'], [
      { op: 'put_cluster', key: 'app', effect: 'updated' },
      { op: 'delete_backend', key: 'app/a', effect: 'deleted' },
      { op: 'delete_backend', key: 'app/b', effect: 'deleted' },
      { op: 'put_backend', key: 'app/c', effect: 'created' },
    ]);
    const backends = (await ok(kakehi.socketPath, 'list_backends'))['backends'] as { id: string }[];
    assert.deepEqual(
      backends.map((b) => b.id),
      ['c'],
    );
    assert.equal((await httpGet(kakehi.port, '/', { host: 'x.test' })).status, 200);
    assert.equal(c.seen.length, 1);
    // The state file follows: it holds the expanded changes.
    const saved = readFileSync(stateFile, 'utf8');
    assert.match(saved, /"op":"put_backend","backend":\{"cluster":"app","id":"c"/);
    assert.doesNotMatch(saved, /"backends"/);

    const file = join(dir, 'changes.yaml');
    writeFileSync(
      file,
      stringify({
        changes: [
          { op: 'put_cluster', cluster: { id: 'web', backends: [{ id: 'w1', address: a.address }] } },
          { op: 'put_frontend', frontend: { hostname: 'web.test', cluster: 'web' } },
        ],
      }),
    );
    const applied = await ctl(kakehi, 'apply', file);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /^put_backend\s+web\/w1\s+created$/m);
    const seen = a.seen.length;
    assert.equal((await httpGet(kakehi.port, '/', { host: 'web.test' })).status, 200);
    assert.equal(a.seen.length, seen + 1);
  });
});
