// Active health checks against a real kakehi and real backends: an HTTP probe
// answered 500 takes a backend out after `fall` probes and good ones bring it
// back after `rise`; a TCP probe to a closed port; a probe that hangs times out;
// every backend down fails open (or 503 with fail_open false); probes come from
// main once, not from each worker; the settings change hot; and a backend that
// fails real requests is taken out by its check at once.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { closedPort, echoBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { ctl, ctlRow } from '../helpers/ctl-table.js';
import { httpGet } from '../helpers/http.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { servedBy, servedByEach } from '../helpers/served-by.js';

interface ProxyEventSeen {
  type: string;
  [k: string]: unknown;
}

/** A subscribe_events connection collecting every event, with a wait for one that matches. */
async function subscribe(socketPath: string): Promise<{
  events: ProxyEventSeen[];
  waitFor(pred: (e: ProxyEventSeen) => boolean): Promise<ProxyEventSeen>;
  close(): void;
}> {
  const s: Socket = connect(socketPath);
  const events: ProxyEventSeen[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  let subscribed: () => void = () => {};
  const live = new Promise<void>((r) => {
    subscribed = r;
  });
  s.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const frame = JSON.parse(buf.slice(0, nl)) as { id: string; status: string; event?: ProxyEventSeen };
      buf = buf.slice(nl + 1);
      if (frame.id === 'st') subscribed();
      if (frame.status === 'event' && frame.event !== undefined) events.push(frame.event);
    }
    for (const w of waiters.splice(0)) w();
  });
  s.write('{"id":"ev","type":"subscribe_events"}\n{"id":"st","type":"status"}\n');
  await live; // answered after the subscription was read: it is live
  return {
    events,
    waitFor: (pred) =>
      new Promise((resolve) => {
        const test = () => {
          const e = events.find(pred);
          if (e !== undefined) resolve(e);
          else waiters.push(test);
        };
        test();
      }),
    close: () => s.destroy(),
  };
}

async function metric(
  socket: string,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const r = await ok(socket, 'query_metrics', { names: [name] });
  const families = r['families'] as {
    name: string;
    samples: { labels: Record<string, string>; value: number }[];
  }[];
  const sample = families
    .find((f) => f.name === name)
    ?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return sample?.value;
}

/** An echo backend whose health path answers with `health.status`, changeable while it runs. */
async function checkedBackend(name: string, health: { status: number; hang?: boolean }, path = '/healthz') {
  const probes: { url: string; remotePort: number }[] = [];
  const b = await echoBackend(name, (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['user-agent'] !== 'kakehi-health-check') return undefined;
    probes.push({ url: req.url ?? '', remotePort: req.socket.remotePort ?? 0 });
    if (req.url !== path) return undefined;
    if (health.hang === true) return true; // never answered
    res.writeHead(health.status, { 'content-length': '0' });
    res.end();
    return true;
  });
  return { ...b, probes, health };
}

const CHECK = { path: '/healthz', interval_ms: 100, timeout_ms: 100, rise: 2, fall: 2 };

function config(backends: object[], cluster: object = {}, extra: object = {}): object {
  return {
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [{ id: 'c', health_check: CHECK, ...cluster, backends }],
    frontends: [{ hostname: '*', cluster: 'c' }],
    access_log: 'off',
    ...extra,
  };
}

/** Which process holds the local end of a TCP connection from 127.0.0.1:`port` (Linux /proc). */
function ownerOfLocalPort(port: number, pids: readonly number[]): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`));
  const inode = line?.trim().split(/\s+/)[9];
  if (inode === undefined) return undefined;
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
      } catch {
        // closed while listed
      }
    }
  }
  return undefined;
}

/**
 * A kakehi whose backend "flaky" (a closed port) is down by check through
 * traffic alone: probes so rare (the first within an hour) that none decides.
 */
async function flakyDownByTraffic(cleanup: (() => unknown)[]) {
  const well = await echoBackend('well');
  cleanup.push(() => well.close());
  const port = await closedPort();
  const kakehi = await startKakehi(
    config(
      [
        { id: 'flaky', address: `127.0.0.1:${port}` },
        { id: 'well', address: well.address },
      ],
      { health_check: { type: 'tcp', interval_ms: 3_600_000 } },
    ),
  );
  const events = await subscribe(kakehi.socketPath);
  const byCheck = events.waitFor((e) => e.type === 'backend_down' && e['by'] === 'health_check');
  while (!events.events.some((e) => e.type === 'backend_down' && e['by'] === 'health_check')) {
    assert.equal((await httpGet(kakehi.port, '/')).status, 200);
    await new Promise((r) => setTimeout(r, 20)); // pacing a poll, not asserting time
  }
  return { kakehi, port, events, down: await byCheck };
}

describe('active health checks', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('an HTTP probe answered 500 takes the backend out after fall probes; rise good ones bring it back', async () => {
    const sick = await checkedBackend('sick', { status: 200 });
    const well = await checkedBackend('well', { status: 200 });
    cleanup.push(
      () => sick.close(),
      () => well.close(),
    );
    // A fixed port: the worker restarted below binds it again (port 0 would give it another).
    const port = await closedPort();
    const kakehi = await startKakehi(
      config(
        [
          { id: 'sick', address: sick.address },
          { id: 'well', address: well.address },
        ],
        {},
        { listeners: [{ address: `127.0.0.1:${port}` }] },
      ),
    );
    cleanup.push(() => kakehi.stop());
    const sock = kakehi.socketPath;
    const events = await subscribe(sock);
    cleanup.push(() => events.close());
    const generation = (await ok(sock, 'status'))['generation'];

    sick.health.status = 500;
    const down = await events.waitFor((e) => e.type === 'backend_down' && e['backend'] === 'sick');
    assert.equal(down['by'], 'health_check');
    assert.match(String(down['reason']), /GET \/healthz answered 500, expected 200-399/);
    const failed = sick.probes.filter((p) => p.url === '/healthz').length;
    assert.ok(failed >= CHECK.fall, `down after ${failed} probes`);

    assert.deepEqual(await servedByEach(kakehi.port, 6), ['well', 'well', 'well', 'well', 'well', 'well']);
    assert.equal(await metric(sock, 'kakehi_backend_up', { backend: 'sick' }), 0);
    assert.equal(await metric(sock, 'kakehi_backend_up', { backend: 'well' }), 1);
    const shown = await ctl(sock, 'backends');
    assert.equal(shown.code, 0);
    assert.equal(ctlRow(shown.stdout, 'sick')['CHECK'], 'down', shown.stdout);
    assert.equal(ctlRow(shown.stdout, 'sick')['HEALTH'], 'down', shown.stdout);
    assert.equal(ctlRow(shown.stdout, 'well')['CHECK'], 'up', shown.stdout);
    // Health is not configuration: no generation was spent on it.
    assert.equal((await ok(sock, 'status'))['generation'], generation);

    // A worker started now (this one crashed) learns who is down in its init, before it serves.
    const [pid] = kakehi.workerPids();
    process.kill(pid!, 'SIGKILL');
    await kakehi.waitLog((l) => l.msg === 'worker restarted');
    assert.deepEqual(await servedByEach(kakehi.port, 6), ['well', 'well', 'well', 'well', 'well', 'well']);

    sick.health.status = 204;
    const up = await events.waitFor((e) => e.type === 'backend_up' && e['backend'] === 'sick');
    assert.equal(up['by'], 'health_check');
    const served = new Set(await servedByEach(kakehi.port, 6));
    assert.deepEqual([...served].sort(), ['sick', 'well']);
    assert.equal(await metric(sock, 'kakehi_backend_up', { backend: 'sick' }), 1);
  });

  it('a TCP probe to a closed port takes the backend out; a probe that hangs is timed out', async () => {
    const well = await checkedBackend('well', { status: 200 });
    const hung = await checkedBackend('hung', { status: 200, hang: true });
    cleanup.push(
      () => well.close(),
      () => hung.close(),
    );
    const port = await closedPort();
    const tcpCheck = { type: 'tcp', interval_ms: 100, timeout_ms: 100, rise: 1, fall: 1 };
    // Checks are turned on once the event subscription is live: a first probe
    // failing before it would send its event to nobody, and the wait never end.
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [
        {
          id: 'tcp',
          backends: [
            { id: 'closed', address: `127.0.0.1:${port}` },
            { id: 'well', address: well.address },
          ],
        },
        { id: 'http', backends: [{ id: 'hung', address: hung.address }] },
      ],
      frontends: [{ hostname: '*', cluster: 'tcp' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const events = await subscribe(kakehi.socketPath);
    cleanup.push(() => events.close());
    await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'tcp', health_check: tcpCheck } });
    await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'http', health_check: CHECK } });
    const closed = await events.waitFor((e) => e.type === 'backend_down' && e['backend'] === 'closed');
    assert.match(String(closed['reason']), /tcp connect failed: .*ECONNREFUSED/);
    const timedOut = await events.waitFor((e) => e.type === 'backend_down' && e['backend'] === 'hung');
    assert.match(String(timedOut['reason']), /GET \/healthz timed out after 100 ms/);
    assert.deepEqual(await servedByEach(kakehi.port, 4), ['well', 'well', 'well', 'well']);
  });

  it('every backend down fails open (traffic flows, metric and event say so); fail_open false answers 503, changed hot', async () => {
    const only = await checkedBackend('only', { status: 200 });
    cleanup.push(() => only.close());
    const kakehi = await startKakehi(config([{ id: 'only', address: only.address }]));
    cleanup.push(() => kakehi.stop());
    const sock = kakehi.socketPath;
    const events = await subscribe(sock);
    cleanup.push(() => events.close());
    // Failing only once the subscription is live, so its event cannot go out before it.
    only.health.status = 503;

    const allDown = await events.waitFor((e) => e.type === 'cluster_all_down');
    assert.deepEqual(allDown, { type: 'cluster_all_down', cluster: 'c', fail_open: true });
    assert.equal(await servedBy(kakehi.port), 'only');
    assert.equal(await metric(sock, 'kakehi_cluster_fail_open', { cluster: 'c' }), 1);

    // From ctl, as an operator would; the check changes too (fall 3 by default), and keeps its down.
    const put = await ctl(
      sock,
      ...['cluster', 'add', '--id', 'c', '--health-check', 'http', '--health-check-path', '/healthz'],
      ...['--health-check-interval-ms', '100', '--no-fail-open'],
    );
    assert.equal(put.code, 0, put.stdout);
    const clusters = await ctl(sock, 'clusters');
    assert.equal(ctlRow(clusters.stdout, 'c', 0)['FAIL_OPEN'], 'false', clusters.stdout);
    assert.equal(
      ctlRow(clusters.stdout, 'c', 0)['HEALTH_CHECK'],
      'http GET /healthz 200-399 /100ms rise 2 fall 3',
    );
    assert.equal(await servedBy(kakehi.port), 'status 503');
    assert.equal(await metric(sock, 'kakehi_cluster_fail_open', { cluster: 'c' }), 0);
    assert.equal(
      ctlRow((await ctl(sock, 'backends')).stdout, 'only')['CHECK'],
      'down',
      'the change kept its health',
    );

    // The settings are state and saved with it; the health they found is not.
    const saved = join(dirname(kakehi.configPath), 'saved.state');
    await ok(sock, 'save_state', { path: saved });
    const text = readFileSync(saved, 'utf8');
    assert.match(text, /"health_check":\{"type":"http","path":"\/healthz"/);
    assert.match(text, /"fail_open":false/);
    assert.doesNotMatch(text, /down/);

    only.health.status = 200;
    await events.waitFor((e) => e.type === 'cluster_back_up');
    assert.equal(await servedBy(kakehi.port), 'only');
  });

  it('probes run once per instance, from main, with two workers; a hot change of the path moves them', async () => {
    const b = await checkedBackend('b', { status: 200 });
    cleanup.push(() => b.close());
    // Probes slower than the others here, so each is still open when its owner is looked up.
    const slow = { ...CHECK, interval_ms: 300, timeout_ms: 300 };
    const kakehi = await startKakehi(
      config([{ id: 'b', address: b.address }], { health_check: slow }, { workers: 2 }),
    );
    cleanup.push(() => kakehi.stop());
    const sock = kakehi.socketPath;
    const main = kakehi.proc.pid!;
    const workers = (await ok(sock, 'list_workers'))['workers'] as { pid: number }[];
    assert.equal(workers.length, 2);

    // Each probe's connection is still open while its handler runs: find whose it is.
    const owners: (number | undefined)[] = [];
    const seen = b.probes.length;
    await new Promise<void>((resolve) => {
      const server = b.server;
      const onRequest = (req: IncomingMessage) => {
        if (req.headers['user-agent'] !== 'kakehi-health-check') return;
        owners.push(ownerOfLocalPort(req.socket.remotePort ?? 0, [main, ...workers.map((w) => w.pid)]));
        if (owners.length >= 4) {
          server.off('request', onRequest);
          resolve();
        }
      };
      server.on('request', onRequest);
    });
    // A probe timed out (a loaded machine) has no connection left to own: undefined, not a worker.
    assert.deepEqual(
      owners.filter((o) => o !== main && o !== undefined),
      [],
      `every probe comes from main (${main}), none from a worker: ${owners.join(', ')}`,
    );
    assert.ok(owners.includes(main), `${owners.join(', ')}`);
    assert.ok(b.probes.length > seen);

    await ok(sock, 'add_cluster', { cluster: { id: 'c', health_check: { ...slow, path: '/ready' } } });
    // A probe begun before the change may still land on /healthz; from the first /ready on, only /ready.
    const first = await new Promise<number>((resolve) => {
      const look = () => {
        const i = b.probes.findIndex((p) => p.url === '/ready');
        if (i >= 0 && b.probes.length >= i + 4) resolve(i);
        else setImmediate(look);
      };
      look();
    });
    assert.deepEqual(
      b.probes.slice(first).map((p) => p.url),
      b.probes.slice(first).map(() => '/ready'),
    );
  });

  it('a backend failing real requests is taken out by its check at once; probes bring it back', async () => {
    const { kakehi, port, events, down } = await flakyDownByTraffic(cleanup);
    cleanup.push(
      () => kakehi.stop(),
      () => events.close(),
    );
    const sock = kakehi.socketPath;
    assert.equal(down['backend'], 'flaky');
    assert.match(String(down['reason']), /^traffic: /);
    assert.equal(ctlRow((await ctl(sock, 'backends')).stdout, 'flaky')['CHECK'], 'down');

    // Probing often now, against a port that listens: rise good probes bring it back.
    const reopened = createServer((c) => c.destroy());
    await new Promise<void>((r) => reopened.listen(port, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => reopened.close(() => r())));
    await ok(sock, 'add_cluster', {
      cluster: { id: 'c', health_check: { type: 'tcp', interval_ms: 100, timeout_ms: 100, rise: 2 } },
    });
    await events.waitFor(
      (e) => e.type === 'backend_up' && e['backend'] === 'flaky' && e['by'] === 'health_check',
    );
  });

  it('a backend down by check stays down across a SIGHUP reload and ctl upgrade --main, until probes bring it back', async () => {
    // No probe of the new main can decide for "flaky" within the test: what it shows, it inherited.
    const { kakehi, port, events, down } = await flakyDownByTraffic(cleanup);
    assert.equal(down['backend'], 'flaky');
    let successor: number | undefined;
    cleanup.push(async () => {
      if (successor !== undefined) {
        try {
          process.kill(successor, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      await kakehi.stop();
    });
    const sock = kakehi.socketPath;
    cleanup.push(() => events.close());
    const isDown = async () => {
      const row = ctlRow((await ctl(sock, 'backends')).stdout, 'flaky');
      assert.equal(row['CHECK'], 'down', JSON.stringify(row));
      assert.deepEqual(await servedByEach(kakehi.port, 4), ['well', 'well', 'well', 'well']);
    };
    await isDown();

    kakehi.proc.kill('SIGHUP');
    await kakehi.waitLog((l) => l.msg === 'SIGHUP reload applied');
    await isDown();

    const up = await ctl(sock, 'upgrade', '--main', '--json');
    assert.equal(up.code, 0, up.stderr);
    successor = (JSON.parse(up.stdout) as { pid: number }).pid;
    assert.equal(await kakehi.exited, 0);
    await isDown();

    // The successor's own probes still decide: listening now, it comes back.
    const reopened = createServer((c) => c.destroy());
    await new Promise<void>((r) => reopened.listen(port, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => reopened.close(() => r())));
    const events2 = await subscribe(sock);
    cleanup.push(() => events2.close());
    await ok(sock, 'add_cluster', {
      cluster: { id: 'c', health_check: { type: 'tcp', interval_ms: 100, timeout_ms: 100, rise: 2 } },
    });
    await events2.waitFor((e) => e.type === 'backend_up' && e['backend'] === 'flaky');
  });
});
