// The Pulsar route connector end to end, on the suite's real broker: real kakehi
// processes, real `kakehi pulsar` processes, real backends behind the routes the
// topic describes, and the Python client as an independent control plane.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { OutgoingMessage, PulsarClient } from '../../connectors/pulsar/client/index.js';
import { changeMessage, FORMAT_PROPERTY } from '../../connectors/pulsar/format.js';
import { exportDesiredState, publishChanges, publishTombstones } from '../../connectors/pulsar/publish.js';
import { type Change, parseChanges } from '../../src/state/change.js';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { type ConnectorProcess, eventually, startConnector, withLogs } from '../helpers/connector-process.js';
import { httpGet } from '../helpers/http.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { freePort } from '../helpers/pki.js';
import { promtoolCheck } from '../helpers/prometheus.js';
import { handshake } from '../helpers/tls-client.js';
import { admin, env, newClient, uniqueTopic } from './helpers.js';
import { heldFrom, sample, startProxy, startRouteConnector } from './route-helpers.js';

const run = promisify(execFile);

function changes(raw: unknown[]): Change[] {
  const r = parseChanges(raw, 'changes');
  if ('issues' in r) throw new Error(JSON.stringify(r.issues));
  return r.changes;
}

const routeTo = (id: string, host: string, address: string) =>
  changes([
    { op: 'put_cluster', cluster: { id } },
    { op: 'put_backend', backend: { cluster: id, id: `${id}-1`, address } },
    { op: 'put_frontend', frontend: { hostname: host, cluster: id } },
  ]);

async function served(kakehi: Kakehi, host: string): Promise<string> {
  const r = await httpGet(kakehi.port, '/', { host });
  if (r.status !== 200) throw new Error(`${host}: HTTP ${r.status}`);
  return (JSON.parse(r.body) as { backend: string }).backend;
}

async function notServed(kakehi: Kakehi, host: string): Promise<void> {
  const r = await httpGet(kakehi.port, '/', { host });
  if (r.status !== 404) throw new Error(`${host}: HTTP ${r.status}, expected 404`);
}

describe('pulsar route connector (real broker, real proxies)', () => {
  const broker = {
    get url() {
      return env.url;
    },
    get token() {
      return env.token;
    },
  };
  let client: PulsarClient;
  let a: Backend;
  let b: Backend;
  const cleanup: (() => Promise<unknown>)[] = [];

  before(async () => {
    client = newClient();
    a = await echoBackend('a');
    b = await echoBackend('b');
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await client.close();
    await a.close();
    await b.close();
  });

  async function proxyWithConnector(
    topic: string,
    extra: string[] = [],
  ): Promise<{ kakehi: Kakehi; conn: ConnectorProcess }> {
    const kakehi = await startProxy();
    cleanup.push(() => kakehi.stop());
    const conn = await startRouteConnector(broker, kakehi.socketPath, topic, extra);
    cleanup.push(() => conn.stop());
    await eventually(async () => assert.equal((await conn.get('/readyz')).status, 200), {
      timeoutMs: 60_000,
      what: 'the connector ready',
    });
    return { kakehi, conn };
  }

  it('serves a route published to the topic, through a real backend; ready only after the bootstrap', async () => {
    const topic = uniqueTopic('routes-basic');
    // Published before the connector starts: the bootstrap must find it.
    await publishChanges(client, topic, routeTo('app', 'app.test', a.address));
    const { kakehi, conn } = await proxyWithConnector(topic);
    await withLogs(conn, async () => {
      assert.equal(await served(kakehi, 'app.test'), 'a');
      // And live, after the bootstrap.
      await publishChanges(client, topic, routeTo('api', 'api.test', b.address));
      await eventually(() => served(kakehi, 'api.test').then((x) => assert.equal(x, 'b')), {
        timeoutMs: 30_000,
        what: 'api.test served',
      });
      const held = await heldFrom(kakehi.socketPath);
      assert.equal(held.length, 6);
      const connectors = await ok(kakehi.socketPath, 'list_connectors');
      const mine = (connectors['connectors'] as { connector: string; healthy: boolean }[]).find(
        (c) => c.connector === 'pulsar',
      );
      assert.equal(mine?.healthy, true);
      const m = await conn.metrics();
      assert.equal(sample(m, 'kakehi_pulsar_broker_connected'), 1);
      assert.equal(sample(m, 'kakehi_pulsar_ready'), 1);
      assert.equal(sample(m, 'kakehi_pulsar_queue_depth'), 0);
      // SIGTERM stops it cleanly, and the proxy keeps what it was given.
      assert.equal(await conn.stop(), 0);
      assert.equal(await served(kakehi, 'api.test'), 'b');
    });
  });

  it('a tombstone deletes; a delete op deletes; a transaction lands whole and its tombstone removes what only it put', async () => {
    const topic = uniqueTopic('routes-delete');
    const { kakehi, conn } = await proxyWithConnector(topic);
    await withLogs(conn, async () => {
      await publishChanges(client, topic, routeTo('one', 'one.test', a.address));
      await publishChanges(client, topic, routeTo('two', 'two.test', b.address), { transaction: 'two' });
      await eventually(() => served(kakehi, 'two.test'), { timeoutMs: 30_000, what: 'two.test served' });
      await eventually(() => served(kakehi, 'one.test'), { timeoutMs: 30_000, what: 'one.test served' });

      // A transaction that the proxy refuses (a frontend on a cluster nobody has) lands not at all:
      // its cluster, valid on its own, is not put either.
      const refused = changes([
        { op: 'put_cluster', cluster: { id: 'half' } },
        { op: 'put_frontend', frontend: { hostname: 'half.test', cluster: 'missing' } },
      ]);
      await publishChanges(client, topic, refused, { transaction: 'half' });
      // A good message after it is applied.
      await publishChanges(client, topic, changes([{ op: 'put_cluster', cluster: { id: 'after-half' } }]));
      await eventually(
        async () => assert.ok((await heldFrom(kakehi.socketPath)).some((l) => l.includes('"after-half"'))),
        { timeoutMs: 30_000, what: 'the message after the refused transaction' },
      );
      assert.ok(!(await heldFrom(kakehi.socketPath)).some((l) => l.includes('"half"')));

      await publishTombstones(client, topic, ['frontend:*;one.test;prefix:/;*']);
      await eventually(() => notServed(kakehi, 'one.test'), { timeoutMs: 30_000, what: 'one.test gone' });
      await publishChanges(client, topic, changes([{ op: 'delete_backend', cluster: 'one', id: 'one-1' }]));
      await publishTombstones(client, topic, ['transaction:two']);
      await eventually(() => notServed(kakehi, 'two.test'), { timeoutMs: 30_000, what: 'two.test gone' });
      await eventually(
        async () => {
          const held = await heldFrom(kakehi.socketPath);
          assert.deepEqual(
            held
              .map((l) => JSON.parse(l) as { op: string })
              .map((c) => c.op)
              .sort(),
            ['put_cluster', 'put_cluster'],
          );
        },
        { timeoutMs: 30_000, what: 'only clusters one and after-half left' },
      );
    });
  });

  it('skips and counts invalid messages of every kind, applies the next good one, and forwards them to a dead-letter topic', async () => {
    const topic = uniqueTopic('routes-bad');
    const dlq = uniqueTopic('routes-bad-dlq');
    const { kakehi, conn } = await proxyWithConnector(topic, [
      '--dead-letter-topic',
      dlq,
      '--no-certificates',
    ]);
    const producer = await client.createProducer({ topic });
    const v1 = { [FORMAT_PROPERTY]: '1' };
    const good = changeMessage(changes([{ op: 'put_cluster', cluster: { id: 'good' } }])[0]!);
    const bad: OutgoingMessage[] = [
      { payload: JSON.stringify({ op: 'put_cluster', cluster: { id: 'nokey' } }), properties: v1 },
      { key: 'cluster:x', payload: '{"op":"put_cluster","cluster":{"id":"x"}}', properties: {} },
      {
        key: 'cluster:x',
        payload: '{"op":"put_cluster","cluster":{"id":"x"}}',
        properties: { [FORMAT_PROPERTY]: '9' },
      },
      { key: 'cluster:x', payload: 'not json', properties: v1 },
      {
        key: 'cluster:x',
        payload: '{"op":"put_cluster","cluster":{"id":"x","load_balancing":"fastest"}}',
        properties: v1,
      },
      { key: 'cluster:y', payload: '{"op":"put_cluster","cluster":{"id":"x"}}', properties: v1 },
      {
        key: 'certificate:z',
        payload:
          '{"op":"put_certificate","certificate":{"listener":"127.0.0.1:1","certificate":"-","key":"-"}}',
        properties: v1,
      },
      {
        key: 'frontend:*;f.test;prefix:/;*',
        payload: '{"op":"put_frontend","frontend":{"hostname":"f.test","cluster":"nowhere"}}',
        properties: v1,
      },
    ];
    for (const m of bad) await producer.send(m);
    await producer.send(good);
    await producer.close();
    await withLogs(conn, async () => {
      await eventually(
        async () => assert.ok((await heldFrom(kakehi.socketPath)).some((l) => l.includes('"good"'))),
        {
          timeoutMs: 30_000,
          what: 'the good message after the bad ones',
        },
      );
      const metrics = await eventually(
        async () => {
          const m = await conn.metrics();
          const rejected = [
            'no_key',
            'format_version',
            'not_json',
            'invalid_change',
            'key_mismatch',
            'refused_by_proxy',
          ].map((r) => sample(m, `kakehi_pulsar_messages_rejected_total{reason="${r}"}`) ?? 0);
          assert.deepEqual(rejected, [1, 2, 1, 2, 1, 1]);
          return m;
        },
        { timeoutMs: 15_000, what: 'every rejection counted' },
      );
      // The certificate message is refused by --no-certificates or by its schema, never applied.
      assert.ok(!(await heldFrom(kakehi.socketPath)).some((l) => l.includes('certificate')));
      const check = promtoolCheck(metrics);
      assert.equal(check.status, 0, check.output);
      const status = JSON.parse((await conn.get('/status')).text) as { problems: { reason: string }[] };
      assert.ok(status.problems.length >= 8, JSON.stringify(status.problems));
      // Reports are throttled to one a second: the last one names them all.
      await eventually(
        async () => {
          const listed = await ok(kakehi.socketPath, 'list_connectors');
          const mine = (listed['connectors'] as { connector: string; problems: unknown[] }[]).find(
            (c) => c.connector === 'pulsar',
          );
          assert.equal(mine?.problems.length, 8);
        },
        { timeoutMs: 10_000, what: 'the problems reported to the proxy' },
      );
      // Every skipped message reached the dead-letter topic with its reason.
      const reader = await client.createReader({ topic: dlq });
      const reasons: string[] = [];
      for (let i = 0; i < bad.length; i++) {
        const m = await reader.readNext(AbortSignal.timeout(30_000));
        reasons.push(m.properties['kakehi-error-reason'] ?? '?');
        assert.equal(m.properties['kakehi-origin-topic'], topic);
      }
      await reader.close();
      assert.deepEqual(reasons, [
        'no_key',
        'format_version',
        'format_version',
        'not_json',
        'invalid_change',
        'key_mismatch',
        'invalid_change',
        'refused_by_proxy',
      ]);
    });
  });

  it('re-feeds the whole state to a proxy restarted under it', async () => {
    const topic = uniqueTopic('routes-restart');
    const { kakehi, conn } = await proxyWithConnector(topic);
    await publishChanges(client, topic, routeTo('app', 'app.test', a.address));
    await eventually(() => served(kakehi, 'app.test'), { timeoutMs: 30_000, what: 'app.test served' });
    const before = await heldFrom(kakehi.socketPath);
    // A new proxy on the same socket, knowing nothing of the topic.
    await kakehi.stop();
    const again = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      access_log: 'off',
      command_socket: kakehi.socketPath,
    });
    cleanup.push(() => again.stop());
    await withLogs(conn, async () => {
      await eventually(() => served(again, 'app.test'), {
        timeoutMs: 30_000,
        what: 'the route on the new proxy',
      });
      // The new proxy answers on the socket the connector follows (the old one's path).
      assert.deepEqual(await heldFrom(kakehi.socketPath), before);
      assert.equal(sample(await conn.metrics(), 'kakehi_pulsar_reconnects_total{peer="proxy"}'), 1);
    });
  });

  it('applies a change published by the Python client in the documented format', async () => {
    const topic = uniqueTopic('routes-python');
    const { kakehi, conn } = await proxyWithConnector(topic);
    const script = fileURLToPath(new URL('../../../test/pulsar/route_publish.py', import.meta.url));
    const [cluster, backend, frontend] = routeTo('py', 'py.test', b.address) as [Change, Change, Change];
    for (const c of [cluster, backend, frontend]) {
      const m = changeMessage(c);
      await run(process.env.PYTHON ?? 'python3', [script, env.url, env.token, topic, m.key, m.payload], {
        timeout: 120_000,
      });
    }
    await withLogs(conn, () =>
      eventually(() => served(kakehi, 'py.test').then((x) => assert.equal(x, 'b')), {
        timeoutMs: 30_000,
        what: 'py.test served',
      }),
    );
  });

  it('kakehi pulsar publish validates the whole file first, and export prints the topic as a file publish and ctl apply take', async () => {
    const topic = uniqueTopic('routes-cli');
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-pulsar-cli-'));
    const file = join(dir, 'changes.yaml');
    const cli = (...args: string[]) =>
      run(process.execPath, [
        CLI,
        'pulsar',
        ...args,
        '--service-url',
        env.url,
        '--token',
        env.token,
        '--topic',
        topic,
      ]).then(
        (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({
          code: e.code,
          out: e.stdout,
          err: e.stderr,
        }),
      );
    writeFileSync(
      file,
      'changes:\n  - {op: put_cluster, cluster: {id: app}}\n  - {op: put_backend, backend: {cluster: app, id: b1, address: "nowhere"}}\n',
    );
    const refused = await cli('publish', file);
    assert.equal(refused.code, 3);
    assert.match(refused.err, /changes\[1\]\.backend\.address/);
    assert.match(refused.err, /nothing was sent/);
    writeFileSync(
      file,
      `changes:\n  - {op: put_cluster, cluster: {id: app}}\n  - {op: put_backend, backend: {cluster: app, id: b1, address: "${a.address}"}}\n  - {op: put_backend, backend: {cluster: app, id: b2, address: "${b.address}"}}\n`,
    );
    const dry = await cli('publish', file, '--dry-run');
    assert.equal(dry.code, 0);
    assert.match(dry.out, /^cluster:app\t/m);
    assert.match(dry.out, /3 messages .*dry run/);
    assert.equal((await exportDesiredState(client, topic, { idleMs: 2_000 })).changes.length, 0);
    const sent = await cli('publish', file);
    assert.equal(sent.code, 0, sent.err);
    const del = await cli('publish', '--delete', 'backend:app/b2');
    assert.equal(del.code, 0, del.err);
    const exported = await cli('export');
    assert.equal(exported.code, 0, exported.err);
    const doc = parseYaml(exported.out) as { changes: { op: string; backend?: { id: string } }[] };
    assert.deepEqual(
      doc.changes.map((c) => `${c.op}${c.backend ? ` ${c.backend.id}` : ''}`),
      ['put_cluster', 'put_backend b1'],
    );
    // What export prints, ctl apply takes.
    const kakehi = await startProxy();
    cleanup.push(() => kakehi.stop());
    writeFileSync(join(dir, 'exported.yaml'), exported.out);
    await run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, 'apply', join(dir, 'exported.yaml')]);
    assert.deepEqual(
      ((await ok(kakehi.socketPath, 'list_backends'))['backends'] as { id: string }[]).map((x) => x.id),
      ['b1'],
    );
    const usage = await cli('publish');
    assert.equal(usage.code, 2);
  });

  it('serves a certificate published to the topic, keyed by listener and fingerprint; --no-certificates refuses it', async () => {
    const topic = uniqueTopic('routes-cert');
    const port = await freePort();
    const listener = `127.0.0.1:${port}`;
    const ca = makeCa();
    const leaf = issueCert(ca, ['cert.pulsar.test']);
    const cert = changes([
      { op: 'put_certificate', certificate: { listener, certificate: leaf.fullchainPem, key: leaf.keyPem } },
    ])[0]!;
    assert.equal(changeMessage(cert).key, `certificate:${listener} ${leaf.fingerprint}`);
    const kakehi = await startKakehi({
      listeners: [{ address: listener, protocol: 'https' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const refusing = await startRouteConnector(broker, kakehi.socketPath, topic, ['--no-certificates']);
    cleanup.push(() => refusing.stop());
    await publishChanges(client, topic, [cert]);
    await withLogs(refusing, async () => {
      await eventually(
        async () =>
          assert.equal(
            sample(
              await refusing.metrics(),
              'kakehi_pulsar_messages_rejected_total{reason="certificates_refused"}',
            ),
            1,
          ),
        { timeoutMs: 30_000, what: 'the certificate refused' },
      );
      assert.notEqual(
        (await handshake(port, { servername: 'cert.pulsar.test' })).fingerprint,
        leaf.fingerprint,
      );
      assert.equal(await refusing.stop(), 0);
    });
    const taking = await startRouteConnector(broker, kakehi.socketPath, topic);
    cleanup.push(() => taking.stop());
    await withLogs(taking, () =>
      eventually(
        async () =>
          assert.equal(
            (await handshake(port, { servername: 'cert.pulsar.test' })).fingerprint,
            leaf.fingerprint,
          ),
        { timeoutMs: 30_000, what: 'the certificate served' },
      ),
    );
    // What the proxy answers never carries the key, whoever put it.
    const listed = await ok(kakehi.socketPath, 'list_certificates');
    assert.ok(!JSON.stringify(listed).includes('PRIVATE KEY'));
  });

  it('a periodic resync heals what was changed behind its back, and counts it', async () => {
    const topic = uniqueTopic('routes-resync');
    await publishChanges(client, topic, routeTo('heal', 'heal.test', a.address));
    const { kakehi, conn } = await proxyWithConnector(topic, ['--resync-interval-ms', '1000']);
    await withLogs(conn, async () => {
      assert.equal(await served(kakehi, 'heal.test'), 'a');
      // Drift: someone deletes the route with ctl, and moves the backend to another address.
      await ok(kakehi.socketPath, 'transaction', {
        changes: [
          { op: 'delete_frontend', frontend: { hostname: 'heal.test' } },
          { op: 'put_backend', backend: { cluster: 'heal', id: 'heal-1', address: b.address } },
        ],
      });
      await notServed(kakehi, 'heal.test');
      await eventually(() => served(kakehi, 'heal.test').then((x) => assert.equal(x, 'a')), {
        timeoutMs: 30_000,
        what: 'the route healed by a resync',
      });
      assert.ok((sample(await conn.metrics(), 'kakehi_pulsar_resyncs_total{result="changed"}') ?? 0) >= 1);
    });
  });

  it('reads its settings from a file (TLS to the broker, a token file) and takes a SIGHUP: batch settings change, the broker may not', async () => {
    const topic = uniqueTopic('routes-settings');
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-pulsar-settings-'));
    writeFileSync(join(dir, 'token'), `${env.token}\n`);
    const kakehi = await startProxy();
    cleanup.push(() => kakehi.stop());
    const settings = (batchMax: number, url = env.tlsUrl) =>
      `service_url: ${url}\ntopic: [${topic}]\ntoken_file: token\ntls_ca: ${env.caFile}\nsocket: ${kakehi.socketPath}\nbatch_max: ${batchMax}\n`;
    writeFileSync(join(dir, 'pulsar.yaml'), settings(50));
    const conn = await startConnector('pulsar', ['-c', join(dir, 'pulsar.yaml')]);
    cleanup.push(() => conn.stop());
    await withLogs(conn, async () => {
      await publishChanges(client, topic, routeTo('tls', 'tls.test', a.address));
      await eventually(() => served(kakehi, 'tls.test'), {
        timeoutMs: 30_000,
        what: 'a route read over TLS',
      });
      writeFileSync(join(dir, 'pulsar.yaml'), settings(7));
      conn.proc.kill('SIGHUP');
      await eventually(
        () => assert.ok(conn.logs.some((l) => l.msg === 'settings reloaded' && l['batch_max'] === 7)),
        {
          what: 'the new batch size taken',
        },
      );
      writeFileSync(join(dir, 'pulsar.yaml'), settings(7, env.url));
      conn.proc.kill('SIGHUP');
      await eventually(
        () =>
          assert.ok(conn.logs.some((l) => l['setting'] === 'serviceUrl' && /restart/.test(String(l.msg)))),
        { what: 'the broker change refused' },
      );
      // Still following, over TLS.
      await publishChanges(client, topic, routeTo('tls2', 'tls2.test', b.address));
      await eventually(() => served(kakehi, 'tls2.test'), { timeoutMs: 30_000, what: 'still following' });
    });
  });

  it('refuses a partitioned topic, whose partitions have no order between them: exit 1, saying why', async () => {
    const topic = uniqueTopic('routes-partitioned');
    await admin('PUT', `/${topic.replace('persistent://', 'persistent/')}/partitions`, 2);
    const kakehi = await startProxy();
    cleanup.push(() => kakehi.stop());
    const conn = await startRouteConnector(broker, kakehi.socketPath, topic);
    cleanup.push(() => conn.stop());
    assert.equal(await conn.exited, 1);
    assert.ok(
      conn.logs.some((l) => String(l['err']).includes('is a partitioned topic')),
      JSON.stringify(conn.logs),
    );
  });

  it('takes the topic compacted by the broker: deleted keys gone, the latest value kept', async () => {
    const topic = uniqueTopic('routes-compacted');
    await publishChanges(client, topic, routeTo('c', 'c.test', a.address));
    await publishChanges(client, topic, routeTo('c', 'c.test', b.address));
    await publishChanges(client, topic, routeTo('gone', 'gone.test', a.address));
    await publishTombstones(client, topic, [
      'frontend:*;gone.test;prefix:/;*',
      'backend:gone/gone-1',
      'cluster:gone',
    ]);
    const path = topic.replace('persistent://', '/persistent/');
    await admin('PUT', `${path}/compaction`);
    await eventually(async () => assert.match(await admin('GET', `${path}/compaction`), /SUCCESS/), {
      timeoutMs: 60_000,
      what: 'compaction done',
    });
    const { kakehi, conn } = await proxyWithConnector(topic);
    await withLogs(conn, async () => {
      assert.equal(await served(kakehi, 'c.test'), 'b');
      await notServed(kakehi, 'gone.test');
      assert.equal((await heldFrom(kakehi.socketPath)).length, 3);
    });
  });
});
