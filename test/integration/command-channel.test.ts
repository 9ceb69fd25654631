import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { command, ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { startLoad } from '../helpers/load.js';

describe('command channel', () => {
  let a: Backend;
  let b: Backend;
  let kakehi: Kakehi;
  const cleanup: (() => Promise<unknown>)[] = [];

  before(async () => {
    a = await echoBackend('a');
    b = await echoBackend('b');
    kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'app', backends: [{ id: 'a', address: a.address }] }],
      frontends: [{ hostname: 'load.test', cluster: 'app' }],
      access_log: 'off',
    });
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await kakehi.stop();
    await a.close();
    await b.close();
  });

  it('creates the socket with mode 0600', () => {
    assert.equal(statSync(kakehi.socketPath).mode & 0o777, 0o600);
  });

  it('get_state with sources: true names who put each object, and without it names none', async () => {
    await ok(kakehi.socketPath, 'transaction', {
      changes: [{ op: 'put_cluster', cluster: { id: 'by-pulsar' } }],
      source: 'pulsar',
    });
    const withSources = await ok(kakehi.socketPath, 'get_state', { sources: true });
    const changes = withSources['changes'] as { op: string; source?: string; cluster?: { id: string } }[];
    const byId = (id: string) => changes.find((c) => c.op === 'put_cluster' && c.cluster?.id === id);
    assert.equal(byId('by-pulsar')?.source, 'pulsar');
    assert.equal(byId('app')?.source, 'config');
    const plain = await ok(kakehi.socketPath, 'get_state');
    assert.ok((plain['changes'] as { source?: string }[]).every((c) => c.source === undefined));
    await ok(kakehi.socketPath, 'transaction', { changes: [{ op: 'delete_cluster', id: 'by-pulsar' }] });
  });

  it('answers status with the workers and the generation', async () => {
    const s = await ok(kakehi.socketPath, 'status');
    assert.equal((s['workers'] as unknown[]).length, 2);
    assert.equal(typeof s['generation'], 'number');
  });

  it('applies a change on every worker before acknowledging it', async () => {
    const r = await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_cluster', cluster: { id: 'api' } },
        { op: 'put_backend', backend: { cluster: 'api', id: 'b', address: b.address } },
        { op: 'put_frontend', frontend: { hostname: 'api.test', cluster: 'api' } },
      ],
    });
    assert.equal(typeof r['live_ms'], 'number');
    // Acknowledged means live: every worker routes it now, whichever takes the connection.
    for (let i = 0; i < 10; i++) {
      const res = await httpGet(kakehi.port, '/', { host: 'api.test' });
      assert.equal(res.status, 200);
      assert.match(res.body, /"backend":"b"/);
    }
    const status = await ok(kakehi.socketPath, 'status');
    for (const w of status['workers'] as { generation: number }[])
      assert.equal(w.generation, r['generation']);
  });

  it('refuses a transaction with one invalid change, reports every problem, and changes nothing', async () => {
    const before = await ok(kakehi.socketPath, 'status');
    const f = await command(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_cluster', cluster: { id: 'half' } },
        { op: 'put_backend', backend: { cluster: 'half', id: 'x', address: 'no-port' } },
        { op: 'put_frontend', frontend: { hostname: '*.*.bad', cluster: 'half' } },
      ],
    });
    assert.equal(f.status, 'error');
    assert.equal(f.error?.code, 'KKH_CHANGE_INVALID');
    const paths = (f.error?.issues ?? []).map((i) => i.path);
    assert.ok(paths.includes('changes[1].backend.address'), JSON.stringify(paths));
    assert.ok(paths.includes('changes[2].frontend.hostname'), JSON.stringify(paths));
    const after = await ok(kakehi.socketPath, 'status');
    assert.equal(after['generation'], before['generation']);
    const clusters = (await ok(kakehi.socketPath, 'list_clusters'))['clusters'] as { id: string }[];
    assert.ok(!clusters.some((c) => c.id === 'half'));
  });

  it('refuses a delete that would leave a frontend pointing nowhere', async () => {
    const f = await command(kakehi.socketPath, 'remove_cluster', { cluster: 'app' });
    assert.equal(f.status, 'error');
    assert.equal(f.error?.code, 'KKH_CHANGE_INVALID');
    assert.match(JSON.stringify(f.error?.issues), /frontend/);
    assert.equal((await httpGet(kakehi.port, '/', { host: 'load.test' })).status, 200);
  });

  it('returns the diff on dry_run without applying it', async () => {
    const before = await ok(kakehi.socketPath, 'status');
    const r = await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'dry' }, dry_run: true });
    assert.equal(r['dry_run'], true);
    assert.deepEqual(r['diff'], [{ op: 'put_cluster', key: 'dry', effect: 'created' }]);
    assert.equal((await ok(kakehi.socketPath, 'status'))['generation'], before['generation']);
  });

  it('compares and sets with expect_generation', async () => {
    const { generation } = (await ok(kakehi.socketPath, 'status')) as { generation: number };
    const stale = await command(kakehi.socketPath, 'add_cluster', {
      cluster: { id: 'cas' },
      expect_generation: generation - 1,
    });
    assert.equal(stale.error?.code, 'KKH_GENERATION_MISMATCH');
    const fresh = await ok(kakehi.socketPath, 'add_cluster', {
      cluster: { id: 'cas' },
      expect_generation: generation,
    });
    assert.equal(fresh['generation'], generation + 1);
  });

  it('is idempotent: putting the same object again changes nothing', async () => {
    const first = await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'same' } });
    const again = await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'same' } });
    assert.equal(again['generation'], first['generation']);
    assert.deepEqual(again['applied'], [{ op: 'put_cluster', key: 'same', effect: 'unchanged' }]);
  });

  it('serializes concurrent transactions: every one gets its own generation', async () => {
    const { generation } = (await ok(kakehi.socketPath, 'status')) as { generation: number };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ok(kakehi.socketPath, 'add_cluster', { cluster: { id: `conc-${i}` } }),
      ),
    );
    const gens = results.map((r) => r['generation'] as number).sort((x, y) => x - y);
    assert.deepEqual(
      gens,
      Array.from({ length: 20 }, (_, i) => generation + 1 + i),
    );
  });

  it('keeps the connection usable after malformed input, and closes it on an oversized frame', async () => {
    const { connect } = await import('node:net');
    const s = connect(kakehi.socketPath);
    await once(s, 'connect');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
    });
    s.write('not json\n{"id":1}\n{"id":2,"type":"nope"}\n{"id":3,"type":"status"}\n');
    while (!text.includes('"id":3')) await once(s, 'data');
    assert.match(text, /KKH_REQUEST_INVALID_JSON/);
    assert.match(text, /KKH_REQUEST_INVALID"/);
    assert.match(text, /KKH_REQUEST_UNKNOWN_TYPE/);
    const closed = once(s, 'close');
    s.write(Buffer.alloc(5 * 1024 * 1024, 0x61));
    await closed;
    assert.match(text, /KKH_FRAME_TOO_LARGE/);
  });

  it('answers which cluster serves a host and path', async () => {
    const r = await ok(kakehi.socketPath, 'query_route', { host: 'api.test', path: '/x' });
    assert.deepEqual(
      (r['matches'] as { cluster: string }[]).map((m) => m.cluster),
      ['api'],
    );
  });

  it('streams events to a subscriber', async () => {
    const { connect } = await import('node:net');
    const s = connect(kakehi.socketPath);
    await once(s, 'connect');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
    });
    s.write('{"id":"ev","type":"subscribe_events"}\n');
    // The subscription is live once the server has read it; a status on the same connection proves that.
    s.write('{"id":"st","type":"status"}\n');
    while (!text.includes('"id":"st"')) await once(s, 'data');
    await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'evented' } });
    while (!text.includes('change_applied')) await once(s, 'data');
    assert.match(text, /"id":"ev","status":"event","event":\{"type":"change_applied"/);
    s.destroy();
  });

  it('applies 1,000 changes while traffic flows, with zero failed requests', async () => {
    const load = startLoad(kakehi.port, { concurrency: 4, host: 'load.test' });
    for (let i = 0; i < 500; i++) {
      await ok(kakehi.socketPath, 'add_backend', {
        backend: { cluster: 'app', id: `churn-${i}`, address: b.address, weight: 0 },
      });
      await ok(kakehi.socketPath, 'remove_backend', { cluster: 'app', backend: `churn-${i}` });
    }
    const r = await load.stop();
    assert.deepEqual(r.failed.slice(0, 5), []);
    assert.ok(r.ok > 0);
  });

  it('restarts a worker killed with SIGKILL, serving the current generation', async () => {
    const status = await ok(kakehi.socketPath, 'status');
    const [victim] = status['workers'] as { pid: number; id: number }[];
    const restarted = kakehi.waitLog((l) => l.msg === 'worker restarted');
    process.kill(victim!.pid, 'SIGKILL');
    await restarted;
    const after = await ok(kakehi.socketPath, 'status');
    const workers = after['workers'] as { pid: number; generation: number; state: string }[];
    assert.equal(workers.length, 2);
    assert.ok(!workers.some((w) => w.pid === victim!.pid));
    for (const w of workers) assert.equal(w.generation, after['generation']);
    for (let i = 0; i < 6; i++)
      assert.equal((await httpGet(kakehi.port, '/', { host: 'api.test' })).status, 200);
  });

  it('upgrades every worker while traffic flows, with zero failed requests', async () => {
    const before = (await ok(kakehi.socketPath, 'status'))['workers'] as { pid: number }[];
    const load = startLoad(kakehi.port, { concurrency: 4, host: 'load.test' });
    const r = await ok(kakehi.socketPath, 'upgrade');
    assert.equal(r['replaced'], 2);
    // Keep the load on past the old workers' drain.
    for (let i = 0; i < 50; i++)
      assert.equal((await httpGet(kakehi.port, '/', { host: 'load.test' })).status, 200);
    const res = await load.stop();
    assert.deepEqual(res.failed.slice(0, 5), []);
    const afterPids = ((await ok(kakehi.socketPath, 'status'))['workers'] as { pid: number }[]).map(
      (w) => w.pid,
    );
    assert.equal(afterPids.length, 2);
    for (const w of before) assert.ok(!afterPids.includes(w.pid), 'every old worker was replaced');
  });

  it('refuses to start a second kakehi on a live socket, and replaces a stale socket file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-sock-'));
    const config = join(dir, 'c.yaml');
    writeFileSync(
      config,
      stringify({ workers: 1, command_socket: kakehi.socketPath, listeners: [{ address: '127.0.0.1:0' }] }),
    );
    let out = '';
    try {
      execFileSync(
        process.execPath,
        [join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js'), 'run', '-c', config],
        {
          stdio: 'pipe',
          timeout: 20_000,
        },
      );
      assert.fail('second kakehi started');
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      out = e.stderr.toString();
      assert.equal(e.status, 1);
    }
    assert.match(out, /another kakehi is running on the command socket/);
    // A socket file nobody listens on (left by a killed process) is replaced.
    const stale = join(dir, 'stale.sock');
    const holder = createServer();
    holder.listen(stale);
    await once(holder, 'listening');
    // Close the handle without unlinking the file, as a process killed with SIGKILL would.
    (holder as unknown as { _handle: { close(): void } | null })._handle?.close();
    const second = await startKakehi({ command_socket: stale, listeners: [{ address: '127.0.0.1:0' }] });
    cleanup.push(() => second.stop());
    assert.equal((await ok(stale, 'status'))['generation'], 1);
  });
});
