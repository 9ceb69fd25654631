// tcp and tls listeners against a real kakehi: bytes both ways to the
// listener's cluster, half-closes passed on in both directions, retries on a
// refused backend, hot changes that leave established connections alone, the
// drain on SIGTERM, the access log line and the metrics.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import type { Family, ScalarSample } from '../../src/metrics/registry.js';
import { closedPort } from '../helpers/backends.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { command, ok } from '../helpers/command.js';
import { ctl, ctlRow } from '../helpers/ctl-table.js';
import { CLI, startKakehi } from '../helpers/kakehi-process.js';

const MB = 1024 * 1024;
const run = promisify(execFile);

interface TcpBackend {
  server: Server;
  address: string;
  close(): Promise<void>;
}

/** A raw TCP server on 127.0.0.1, half-open allowed, running `onSocket` for each connection. */
async function tcpBackend(onSocket: (s: Socket) => void): Promise<TcpBackend> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    server,
    address: `127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Echoes every byte, and ends its side once the client ended its own. */
const echo = (s: Socket) => s.pipe(s);

/** Everything a socket receives until it closes, and whether that was a clean end. */
function collect(s: Socket): Promise<{ data: string; ended: boolean }> {
  let data = '';
  let ended = false;
  s.on('data', (c: Buffer) => {
    data += c.toString('latin1');
  });
  s.on('end', () => {
    ended = true;
  });
  s.on('error', () => {});
  return new Promise((resolve) => s.on('close', () => resolve({ data, ended })));
}

async function open(port: number, host = '127.0.0.1'): Promise<Socket> {
  const s = connect({ host, port, allowHalfOpen: true });
  await once(s, 'connect');
  return s;
}

/** Writes `text` and waits for as many bytes back as `expect` has (an echo backend), without ending. */
async function roundTrip(s: Socket, text: string, expect = text): Promise<string> {
  let got = '';
  const done = new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer) => {
      got += c.toString('latin1');
      if (got.length >= expect.length) {
        s.off('data', onData);
        s.off('close', onClose);
        resolve();
      }
    };
    const onClose = () => reject(new Error(`closed after "${got}" while waiting for "${expect}"`));
    s.on('data', onData);
    s.on('close', onClose);
  });
  s.write(text);
  await done;
  return got;
}

function scalarTotal(families: Family[], name: string, cluster?: string): number {
  const f = families.find((x) => x.name === name);
  if (f === undefined) return 0;
  return (f.samples as ScalarSample[])
    .filter((s) => cluster === undefined || s.labels['cluster'] === cluster)
    .reduce((a, s) => a + s.value, 0);
}

async function metricFamilies(socketPath: string): Promise<Family[]> {
  return (await ok(socketPath, 'query_metrics'))['families'] as Family[];
}

async function listenerPort(socketPath: string, address: string): Promise<number> {
  const list = (await ok(socketPath, 'list_listeners'))['listeners'] as { address: string; port: number }[];
  return list.find((l) => l.address === address)!.port;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

describe('tcp listeners', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  /** An echo backend behind one tcp listener (cluster c), both stopped after the suite. */
  async function echoThroughKakehi(extra: Record<string, unknown> = {}) {
    const be = await tcpBackend(echo);
    cleanup.push(() => be.close());
    return startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'tcp', cluster: 'c' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      access_log: 'off',
      ...extra,
    });
  }
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('carries bytes both ways, passes each side’s end on, logs the connection and counts it', async () => {
    const be = await tcpBackend(echo);
    // Speaks first and ends at once, then reads what the client still sends.
    let lateResolve: (s: string) => void = () => {};
    const late = new Promise<string>((r) => {
      lateResolve = r;
    });
    const banner = await tcpBackend((s) => {
      let got = '';
      s.on('data', (c: Buffer) => {
        got += c.toString('latin1');
      });
      s.on('end', () => lateResolve(got));
      s.end('banner\n');
    });
    cleanup.push(
      () => be.close(),
      () => banner.close(),
    );
    const kakehi = await startKakehi({
      listeners: [
        { address: '127.0.0.1:0', protocol: 'tcp', cluster: 'echo' },
        { address: '127.0.0.2:0', protocol: 'tcp', cluster: 'banner' },
      ],
      clusters: [
        { id: 'echo', backends: [{ id: 'e1', address: be.address }] },
        { id: 'banner', backends: [{ id: 'b1', address: banner.address }] },
      ],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());

    // The client ends first: the backend sees the end, answers, then ends too.
    const c = await open(kakehi.ports[0]!);
    assert.equal(await roundTrip(c, 'hello'), 'hello');
    const result = collect(c);
    c.end('bye');
    assert.deepEqual(await result, { data: 'bye', ended: true });

    // The backend ends first: the client reads the end and can still send.
    const d = await open(kakehi.ports[1]!, '127.0.0.2');
    const fromBanner = collect(d);
    await once(d, 'end');
    d.end('still talking');
    assert.equal(await late, 'still talking');
    assert.deepEqual(await fromBanner, { data: 'banner\n', ended: true });

    const line = await kakehi.waitAccessLine((l) => l['cluster'] === 'echo');
    assert.equal(line['protocol'], 'tcp');
    assert.equal(line['backend'], 'e1');
    assert.equal(line['bytes_in'], 8);
    assert.equal(line['bytes_out'], 8);
    assert.equal(line['error'], undefined);
    assert.equal(line['method'], undefined);
    assert.equal(typeof line['duration_ms'], 'number');
    assert.match(String(line['client']), /^127\.0\.0\.1:\d+$/);
    await kakehi.waitAccessLine((l) => l['cluster'] === 'banner');

    const m = await metricFamilies(kakehi.socketPath);
    assert.equal(scalarTotal(m, 'kakehi_tcp_connections_total', 'echo'), 1);
    assert.equal(scalarTotal(m, 'kakehi_tcp_connections_total', 'banner'), 1);
    assert.equal(scalarTotal(m, 'kakehi_tcp_connections_active'), 0);
    assert.equal(scalarTotal(m, 'kakehi_tcp_bytes_received_total', 'echo'), 8);
    assert.equal(scalarTotal(m, 'kakehi_tcp_bytes_sent_total', 'banner'), 7);
    const duration = m.find((f) => f.name === 'kakehi_tcp_connection_duration_seconds');
    assert.ok(duration !== undefined, 'connection durations are recorded');
    // HTTP request metrics stay for HTTP.
    assert.equal(scalarTotal(m, 'kakehi_http_requests_total'), 0);
  });

  it('passes on the end of a client that ends before its backend is connected', async () => {
    // Greets, then ends once the client's end has come through.
    const greeter = await tcpBackend((s) => {
      s.write('hello\n');
      s.resume();
      s.on('end', () => s.end());
    });
    cleanup.push(() => greeter.close());
    const kakehi = await startKakehi({
      // The idle timeout bounds the failure: without the end passed on, nothing moves.
      listeners: [{ address: '127.0.0.1:0', protocol: 'tcp', cluster: 'g', keepalive_timeout_ms: 10_000 }],
      clusters: [{ id: 'g', backends: [{ id: 'g1', address: greeter.address }] }],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    const c = connect({ host: '127.0.0.1', port: kakehi.port, allowHalfOpen: true });
    const r = collect(c);
    // Nothing sent: the end reaches kakehi while its backend is still being connected.
    c.end();
    assert.deepEqual(await r, { data: 'hello\n', ended: true });
    const line = await kakehi.waitAccessLine((l) => l['cluster'] === 'g');
    assert.equal(line['error'], undefined);
  });

  it('carries 100 MB with bounded proxy memory', async () => {
    let received = 0;
    const sink = await tcpBackend((s) => {
      s.on('data', (c: Buffer) => {
        received += c.length;
      });
      s.on('end', () => s.end(String(received)));
    });
    cleanup.push(() => sink.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'tcp', cluster: 'sink' }],
      clusters: [{ id: 'sink', backends: [{ id: 's', address: sink.address }] }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const pid = kakehi.workerPids()[0]!;
    const base = rssBytes(pid);
    let peak = base;
    const c = await open(kakehi.port);
    const answer = collect(c);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const total = 100 * MB;
    for (let sent = 0; sent < total; sent += chunk.length) {
      if (!c.write(chunk)) await once(c, 'drain');
      if (sent % (4 * MB) === 0) peak = Math.max(peak, rssBytes(pid));
    }
    c.end();
    assert.deepEqual(await answer, { data: String(total), ended: true });
    const growth = peak - base;
    assert.ok(growth < 48 * MB, `proxy RSS grew by ${(growth / MB).toFixed(1)} MB for 100 MB`);
  });

  it('retries a refused backend on another, and closes the client when none connects', async () => {
    const be = await tcpBackend(echo);
    cleanup.push(() => be.close());
    const refused = `127.0.0.1:${await closedPort()}`;
    const kakehi = await startKakehi({
      listeners: [
        { address: '127.0.0.1:0', protocol: 'tcp', cluster: 'mixed' },
        { address: '127.0.0.2:0', protocol: 'tcp', cluster: 'down' },
      ],
      clusters: [
        {
          id: 'mixed',
          connect_attempts: 2,
          backends: [
            { id: 'bad', address: refused },
            { id: 'good', address: be.address },
          ],
        },
        { id: 'down', connect_attempts: 2, backends: [{ id: 'gone', address: refused }] },
      ],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    // Round robin over two fresh backends: one of two connections meets the refused one first.
    for (const text of ['one', 'two']) {
      const c = await open(kakehi.ports[0]!);
      const r = collect(c);
      c.end(text);
      assert.deepEqual(await r, { data: text, ended: true });
    }
    const m = await metricFamilies(kakehi.socketPath);
    assert.equal(scalarTotal(m, 'kakehi_backend_connect_failures_total', 'mixed'), 1);
    assert.equal(scalarTotal(m, 'kakehi_backend_retries_total', 'mixed'), 1);

    // No backend connects: the client is closed without a byte (its socket, half-open, sees the end).
    const d = await open(kakehi.ports[1]!, '127.0.0.2');
    const r = collect(d);
    await once(d, 'end');
    d.destroy();
    assert.deepEqual(await r, { data: '', ended: true });
    const line = await kakehi.waitAccessLine((l) => l['cluster'] === 'down');
    assert.equal(line['backend'], undefined);
    assert.match(String(line['error']), /connecting to .* failed/);
    assert.equal(scalarTotal(await metricFamilies(kakehi.socketPath), 'kakehi_tcp_connections_active'), 0);
  });

  it('keeps established connections through hot changes of listeners, clusters and backends', async () => {
    const one = await tcpBackend(echo);
    const two = await tcpBackend((s) => {
      s.write('two:');
      s.pipe(s);
    });
    cleanup.push(
      () => one.close(),
      () => two.close(),
    );
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'tcp', cluster: 'one' }],
      clusters: [
        { id: 'one', backends: [{ id: 'o', address: one.address }] },
        { id: 'two', backends: [{ id: 't', address: two.address }] },
      ],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const first = await open(kakehi.port);
    assert.equal(await roundTrip(first, 'a'), 'a');

    // A tcp listener added at run time (with kakehi ctl) serves at once.
    const added = '127.0.0.3:0';
    const ctl = ['ctl', '-s', kakehi.socketPath, 'listener', 'add', '--address', added];
    await run(process.execPath, [CLI, ...ctl, '--protocol', 'tcp', '--cluster', 'one']);
    const third = await open(await listenerPort(kakehi.socketPath, added), '127.0.0.3');
    assert.equal(await roundTrip(third, 'c'), 'c');

    // The first listener now sends new connections to cluster two; the open one stays on one.
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_listener', listener: { address: '127.0.0.1:0', protocol: 'tcp', cluster: 'two' } },
      ],
    });
    const second = await open(kakehi.port);
    assert.equal(await roundTrip(second, 'b', 'two:b'), 'two:b');
    assert.equal(await roundTrip(first, 'a2'), 'a2');

    // The backend carrying the first connection is removed: it carries on.
    await ok(kakehi.socketPath, 'remove_backend', { cluster: 'one', backend: 'o' });
    assert.equal(await roundTrip(first, 'a3'), 'a3');
    assert.equal(await roundTrip(third, 'c2'), 'c2');

    // Both listeners removed: they stop accepting, and their open connections go on.
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'delete_listener', address: '127.0.0.1:0' },
        { op: 'delete_listener', address: added },
      ],
    });
    const refused = connect({ host: '127.0.0.1', port: kakehi.port });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    assert.equal(await roundTrip(first, 'a4'), 'a4');
    assert.equal(await roundTrip(second, 'b2'), 'b2');
    assert.equal(await roundTrip(third, 'c3'), 'c3');
    for (const s of [first, second, third]) {
      const r = collect(s);
      s.end();
      assert.equal((await r).ended, true);
    }
  });

  it('switches a listener between http and tcp on its one socket, in both workers, leaving open connections on the protocol they came in on', async () => {
    const be = await tcpBackend(echo);
    cleanup.push(() => be.close());
    const address = `127.0.0.1:${await closedPort()}`;
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const port = kakehi.port;
    /** The status line an HTTP request on a new connection gets (no frontend: kakehi's 404). */
    const statusLine = async (s: Socket) => {
      const answer = collect(s);
      s.end('GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n');
      return (await answer).data.split('\r\n')[0];
    };
    const held = await open(port);
    held.write('GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n');
    await once(held, 'data');

    await ok(kakehi.socketPath, 'transaction', {
      changes: [{ op: 'put_listener', listener: { address, protocol: 'tcp', cluster: 'c' } }],
    });
    const relayed = await open(port);
    assert.equal(await roundTrip(relayed, 'GET / HTTP/1.1\r\n\r\n'), 'GET / HTTP/1.1\r\n\r\n');
    // The keep-alive HTTP connection from before the switch is still served as HTTP.
    assert.equal(await statusLine(held), 'HTTP/1.1 404 Not Found');

    await ok(kakehi.socketPath, 'transaction', {
      changes: [{ op: 'put_listener', listener: { address, protocol: 'http' } }],
    });
    assert.equal(await statusLine(await open(port)), 'HTTP/1.1 404 Not Found');
    // The relayed connection from the tcp period still reaches its backend.
    assert.equal(await roundTrip(relayed, 'still relayed'), 'still relayed');
    const r = collect(relayed);
    relayed.end();
    assert.equal((await r).ended, true);
  });

  it('drops the kakehi_tcp_* series of a cluster removed with its listener', async () => {
    const kakehi = await echoThroughKakehi({ access_log: 'stdout' });
    cleanup.push(() => kakehi.stop());
    const c = await open(kakehi.port);
    const r = collect(c);
    c.end('counted');
    assert.deepEqual(await r, { data: 'counted', ended: true });
    const tcpSeries = (families: Family[], cluster: string) =>
      families
        .filter((f) => f.name.startsWith('kakehi_tcp_'))
        .flatMap((f) => f.samples.filter((s) => s.labels['cluster'] === cluster).map(() => f.name));
    // Counted by the same event that writes the access log line.
    await kakehi.waitAccessLine((l) => l['cluster'] === 'c');
    assert.equal(tcpSeries(await metricFamilies(kakehi.socketPath), 'c').length, 5);
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'delete_listener', address: '127.0.0.1:0' },
        { op: 'delete_backend', cluster: 'c', id: 'b' },
        { op: 'delete_cluster', id: 'c' },
      ],
    });
    assert.deepEqual(tcpSeries(await metricFamilies(kakehi.socketPath), 'c'), []);
  });

  it('refuses a tcp listener without a cluster, or naming none, and a cluster still used by one', async () => {
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'tcp', cluster: 'c' }],
      clusters: [{ id: 'c' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const refusal = async (changes: unknown[]) => {
      const f = await command(kakehi.socketPath, 'transaction', { changes });
      assert.equal(f.status, 'error');
      return (f.error?.issues ?? []).map((i) => `${i.path}: ${i.reason}`).join('\n');
    };
    assert.match(
      await refusal([{ op: 'put_listener', listener: { address: '127.0.0.9:1', protocol: 'tcp' } }]),
      /cluster: a tcp listener needs the cluster its connections go to/,
    );
    assert.match(
      await refusal([{ op: 'put_listener', listener: { address: '127.0.0.9:1', cluster: 'c' } }]),
      /cluster: an http listener routes by its frontends/,
    );
    assert.match(
      await refusal([
        { op: 'put_listener', listener: { address: '127.0.0.9:1', protocol: 'tcp', cluster: 'nope' } },
      ]),
      /listener\.cluster: cluster "nope" does not exist/,
    );
    assert.match(
      await refusal([{ op: 'delete_cluster', id: 'c' }]),
      /cluster c is still used by listener 127\.0\.0\.1:0/,
    );
  });

  it('lets an open connection finish while draining on SIGTERM', async () => {
    const kakehi = await echoThroughKakehi({ drain_timeout_ms: 60_000 });
    cleanup.push(() => kakehi.stop());
    const c = await open(kakehi.port);
    assert.equal(await roundTrip(c, 'before'), 'before');
    const exited = kakehi.stop('SIGTERM');
    await kakehi.waitLog((l) => l.msg === 'draining');
    assert.equal(await roundTrip(c, 'during'), 'during');
    const r = collect(c);
    c.end();
    assert.equal((await r).ended, true);
    assert.equal(await exited, 0);
  });

  it('hands a tcp listener to a new main (ctl upgrade --main) while an open connection finishes on the old worker', async () => {
    const kakehi = await echoThroughKakehi();
    // The successor writes to the same stderr: once it ends, every process is gone.
    const gone = new Promise<void>((resolve) => kakehi.proc.stderr?.once('end', () => resolve()));
    let successor = 0;
    try {
      const old = await open(kakehi.port);
      assert.equal(await roundTrip(old, 'old'), 'old');
      const up = await ctl(kakehi.socketPath, 'upgrade', '--main', '--json');
      assert.equal(up.code, 0, up.stderr);
      successor = (JSON.parse(up.stdout) as { pid: number }).pid;
      // The same port, never closed, now served by the successor's workers.
      const fresh = await open(kakehi.port);
      assert.equal(await roundTrip(fresh, 'new'), 'new');
      assert.equal(await roundTrip(old, 'still'), 'still');
      for (const s of [old, fresh]) {
        const r = collect(s);
        s.end();
        assert.equal((await r).ended, true);
      }
      // The old main exits once its worker has drained the old connection.
      assert.equal(await kakehi.exited, 0);
    } finally {
      if (successor !== 0) process.kill(successor, 'SIGTERM');
      await kakehi.stop();
      await gone;
    }
  });

  it('terminates TLS on a tls listener with the SNI certificate store, then carries plain bytes', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const cert = issueCert(ca, ['tcp.example.test']);
    const be = await tcpBackend(echo);
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0', protocol: 'tls', cluster: 'c' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    await ok(kakehi.socketPath, 'add_certificate', {
      certificate: { listener: '127.0.0.1:0', certificate: cert.fullchainPem, key: cert.keyPem },
    });
    const s = tlsConnect({
      host: '127.0.0.1',
      port: kakehi.port,
      servername: 'tcp.example.test',
      ca: ca.certPem,
    });
    await once(s, 'secureConnect');
    assert.equal(s.authorized, true, String(s.authorizationError));
    assert.equal(s.alpnProtocol, false);
    const r = collect(s);
    s.end('over tls');
    assert.deepEqual(await r, { data: 'over tls', ended: true });
    const line = await kakehi.waitAccessLine((l) => l['protocol'] === 'tls');
    assert.equal(line['bytes_in'], 8);
    assert.equal(line['backend'], 'b');
  });

  it('passes TLS through unopened on a tls_passthrough listener, to the cluster its server name maps to', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const tlsEcho = async (name: string) => {
      const cert = issueCert(ca, [name]);
      const server = createTlsServer(
        { cert: cert.fullchainPem, key: cert.keyPem, allowHalfOpen: true },
        (s) => s.pipe(s),
      );
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      cleanup.push(() => new Promise((r) => server.close(r)));
      return `127.0.0.1:${(server.address() as { port: number }).port}`;
    };
    const a = await tlsEcho('a.pass.test');
    const w = await tlsEcho('x.wild.test');
    const kakehi = await startKakehi({
      listeners: [
        {
          address: '127.0.0.1:0',
          protocol: 'tls_passthrough',
          sni_clusters: { 'a.pass.test': 'a', '*.wild.test': 'w' },
        },
      ],
      clusters: [
        { id: 'a', backends: [{ id: 'a1', address: a }] },
        { id: 'w', backends: [{ id: 'w1', address: w }] },
      ],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    const through = async (servername: string) => {
      const s: TLSSocket = tlsConnect({ host: '127.0.0.1', port: kakehi.port, servername, ca: ca.certPem });
      await once(s, 'secureConnect');
      // The backend's own certificate: kakehi never terminated the handshake.
      const cn = s.getPeerCertificate().subjectaltname;
      const r = collect(s);
      s.end(`to ${servername}`);
      return { cn, ...(await r) };
    };
    assert.deepEqual(await through('a.pass.test'), {
      cn: 'DNS:a.pass.test',
      data: 'to a.pass.test',
      ended: true,
    });
    assert.deepEqual(await through('x.wild.test'), {
      cn: 'DNS:x.wild.test',
      data: 'to x.wild.test',
      ended: true,
    });
    // A name with no cluster and no fallback cluster: closed before any byte of a handshake.
    const lost = tlsConnect({
      host: '127.0.0.1',
      port: kakehi.port,
      servername: 'none.test',
      ca: ca.certPem,
    });
    const [err] = (await once(lost, 'error')) as [NodeJS.ErrnoException];
    assert.match(err.code ?? err.message, /ECONNRESET|socket disconnected/);
    const line = await kakehi.waitAccessLine((l) => l['cluster'] === 'w');
    assert.equal(line['protocol'], 'tls_passthrough');
    assert.equal(line['backend'], 'w1');
    // ctl shows where the listener's connections go, by server name.
    const shown = await ctl(kakehi.socketPath, 'listeners');
    assert.equal(shown.code, 0, shown.stderr);
    const row = ctlRow(shown.stdout, '127.0.0.1:0', 0);
    assert.equal(row['SNI_CLUSTERS'], 'a.pass.test=a,*.wild.test=w');
  });
});
