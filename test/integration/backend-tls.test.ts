// TLS to backends (a cluster's backend_tls) against real HTTPS backends on
// 127.0.0.1 with certificates of a private CA: the right name and CA are
// served over one reused connection and resumed sessions; a wrong name, an
// unknown CA or a missing client certificate get 502 with a log line naming
// the backend and why; verify: false is served and warned about; a PROXY
// header goes in clear before the handshake; a hot change from plain to TLS
// never hands a plain pooled connection; a tcp listener's connection is
// carried over TLS too; health checks probe over TLS.

import assert from 'node:assert/strict';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createSecureContext, TLSSocket, type TLSSocketOptions } from 'node:tls';
import { issueCert, makeCa, type TestCa, type TestCert } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { ctl, ctlRow } from '../helpers/ctl-table.js';
import { type HttpResult, httpGet, readWhole } from '../helpers/http.js';
import { type Kakehi, type LogLine, startKakehi } from '../helpers/kakehi-process.js';

/** What the backend saw of one request. */
interface Seen {
  tls: boolean;
  servername: string | null;
  /** The client certificate's subject CN, when one was presented. */
  client: string | null;
  /** The PROXY v2 header's source port, when one came first. */
  proxySourcePort: number | null;
  userAgent: string | undefined;
}

interface DualBackend {
  port: number;
  address: string;
  requests: Seen[];
  /** Per TLS handshake: whether it resumed a session. */
  handshakes: boolean[];
  /** Resolves with the first request seen (before or after the call) that matches. */
  waitRequest(pred: (s: Seen) => boolean): Promise<Seen>;
  close(): void;
}

const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/**
 * One port speaking HTTP and HTTPS (told apart by the first byte: 0x16 opens a
 * TLS record), after an optional PROXY v2 header: so a test sees which one
 * kakehi used, and what came in clear before TLS.
 */
async function dualBackend(
  cert: TestCert,
  opts: { ca?: TestCa; requireClientCert?: boolean } = {},
): Promise<DualBackend> {
  const requests: Seen[] = [];
  const handshakes: boolean[] = [];
  const waiters: (() => void)[] = [];
  /** The PROXY header's source port, by the socket the request arrived on. */
  const proxyPorts = new WeakMap<object, number>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as Socket & Partial<TLSSocket>;
    const tls = typeof socket.getPeerCertificate === 'function';
    const peer = tls ? socket.getPeerCertificate!() : undefined;
    requests.push({
      tls,
      servername: tls && typeof socket.servername === 'string' ? socket.servername : null,
      client: typeof peer?.subject?.CN === 'string' ? peer.subject.CN : null,
      proxySourcePort: proxyPorts.get(socket) ?? null,
      userAgent: req.headers['user-agent'],
    });
    for (const w of waiters.splice(0)) w();
    const close = req.url === '/close';
    res.writeHead(200, { 'content-type': 'text/plain', ...(close ? { connection: 'close' } : {}) });
    res.end(tls ? 'over tls' : 'in clear');
  };
  const http = createHttpServer(handler);
  const https = createHttpsServer({}, handler);
  https.on('secureConnection', (s: TLSSocket) => handshakes.push(s.isSessionReused()));
  // One context for every connection: its ticket keys let a session resume.
  const context = createSecureContext({ key: cert.keyPem, cert: cert.certPem, ca: opts.ca?.certPem });
  const mutual = opts.requireClientCert === true;
  /**
   * TLS over what follows the sniffed bytes: a TLS socket on the raw socket
   * would read its handle and miss the bytes already read, so it reads
   * through a JS stream fed with them first.
   */
  const serveTls = (socket: Socket, first: Buffer, proxyPort: number | undefined) => {
    const feed = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        socket.write(chunk, cb);
      },
      final(cb) {
        socket.end();
        cb();
      },
      destroy(err, cb) {
        socket.destroy();
        cb(err);
      },
    });
    feed.push(first);
    socket.on('data', (d: Buffer) => feed.push(d));
    socket.on('end', () => feed.push(null));
    socket.on('close', () => feed.destroy());
    const secure = new TLSSocket(feed, {
      isServer: true,
      secureContext: context,
      requestCert: mutual,
      rejectUnauthorized: mutual,
      server: https,
    } as TLSSocketOptions);
    secure.on('error', () => {});
    if (proxyPort !== undefined) proxyPorts.set(secure, proxyPort);
    // What tls.Server does for the sockets it makes (OpenSSL itself refuses a
    // missing client certificate under requestCert + rejectUnauthorized).
    secure.on('secure', () => https.emit('secureConnection', secure));
  };
  const sockets = new Set<Socket>();
  const front: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let proxyPort: number | undefined;
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 16) return;
      let rest = buf;
      if (buf.subarray(0, 12).equals(PROXY_V2_SIGNATURE)) {
        const len = buf.readUInt16BE(14);
        if (buf.length < 16 + len) return;
        // IPv4 over TCP: source address (4), destination (4), source port (2).
        proxyPort = buf.readUInt16BE(16 + 8);
        rest = buf.subarray(16 + len);
        if (rest.length === 0) {
          buf = rest;
          return;
        }
      }
      socket.off('data', onData);
      if (rest[0] === 0x16) {
        serveTls(socket, rest, proxyPort);
        return;
      }
      socket.pause();
      socket.unshift(rest);
      if (proxyPort !== undefined) proxyPorts.set(socket, proxyPort);
      http.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const port = (front.address() as { port: number }).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    requests,
    handshakes,
    waitRequest: (pred) =>
      new Promise((resolve) => {
        const test = () => {
          const hit = requests.find(pred);
          if (hit !== undefined) resolve(hit);
          else waiters.push(test);
        };
        test();
      }),
    close: () => {
      for (const s of sockets) s.destroy();
      front.close();
    },
  };
}

describe('TLS to backends', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let good: DualBackend;
  let byIp: DualBackend;
  let mtls: DualBackend;
  let hot: DualBackend;
  let proxied: DualBackend;
  let checked: DualBackend;
  let client: TestCert;
  let kakehi: Kakehi;
  const clusters: Record<string, unknown>[] = [];
  const frontends: Record<string, unknown>[] = [];
  /** A cluster with one backend, served for Host `<id>.test`. */
  const route = (id: string, address: string, extra: Record<string, unknown>) => {
    clusters.push({ id, backends: [{ id: `${id}-1`, address }], ...extra });
    frontends.push({ hostname: `${id}.test`, cluster: id });
  };
  const get = (id: string, path = '/') => httpGet(kakehi.port, path, { host: `${id}.test` });
  const tlsErrorOf = (cluster: string) =>
    kakehi.waitLog((l: LogLine) => l['event'] === 'backend_tls_error' && l['cluster'] === cluster);

  before(async () => {
    ca = makeCa({ name: 'kakehi backend test CA' });
    otherCa = makeCa({ name: 'someone else' });
    const named = issueCert(ca, ['backend.internal']);
    client = issueCert(ca, ['kakehi-client'], { clientAuth: true });
    good = await dualBackend(named);
    byIp = await dualBackend(issueCert(ca, ['127.0.0.1']));
    mtls = await dualBackend(named, { ca, requireClientCert: true });
    hot = await dualBackend(named);
    proxied = await dualBackend(named);
    checked = await dualBackend(named);
    const trusted = { ca: ca.certPem, server_name: 'backend.internal' };
    route('right', good.address, { backend_tls: trusted });
    route('wrongname', good.address, { backend_tls: { ca: ca.certPem, server_name: 'other.internal' } });
    route('ip', byIp.address, { backend_tls: { ca: ca.certPem } });
    route('ipnoname', good.address, { backend_tls: { ca: ca.certPem } });
    route('unknownca', good.address, {
      backend_tls: { ca: otherCa.certPem, server_name: 'backend.internal' },
    });
    route('roots', good.address, { backend_tls: { server_name: 'backend.internal' } });
    route('noverify', good.address, { backend_tls: { ca: otherCa.certPem, verify: false } });
    route('nocert', mtls.address, { backend_tls: trusted });
    route('withcert', mtls.address, {
      // From files, as an operator writes it in the config file.
      backend_tls: {
        ca_file: ca.certPath,
        server_name: 'backend.internal',
        client_certificate_file: client.certPath,
        client_key_file: client.keyPath,
      },
    });
    route('hot', hot.address, {});
    route('proxied', proxied.address, { send_proxy: true, backend_tls: trusted });
    // Long enough a timeout that a loaded machine's handshake never fails a probe by time.
    const check = { interval_ms: 2000, timeout_ms: 2000, rise: 1, fall: 3 };
    route('checked', checked.address, { backend_tls: trusted, health_check: check });
    route('checkedbad', checked.address, {
      backend_tls: { ca: ca.certPem, server_name: 'other.internal' },
      health_check: { ...check, fall: 1 },
    });
    clusters.push({
      id: 'tcptls',
      backends: [{ id: 'tcptls-1', address: good.address }],
      backend_tls: trusted,
    });
    kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }, { address: '127.0.0.2:0', protocol: 'tcp', cluster: 'tcptls' }],
      clusters,
      frontends,
    });
  });

  after(async () => {
    await kakehi?.stop();
    for (const b of [good, byIp, mtls, hot, proxied, checked]) b?.close();
  });

  it('serves over TLS with the right name and CA, and a second request reuses the connection', async () => {
    const before = good.handshakes.length;
    const first = await get('right');
    const second = await get('right');
    assert.equal(first.status, 200);
    assert.equal(first.body, 'over tls');
    assert.equal(second.status, 200);
    assert.equal(good.handshakes.length - before, 1, 'one TLS connection carried both requests');
    assert.equal(good.requests.at(-1)?.servername, 'backend.internal', 'SNI is the server name');
  });

  it('resumes the TLS session on the next connection to the backend', async () => {
    await get('right', '/close'); // the backend closes: the next request needs a new connection
    const before = good.handshakes.length;
    const r = await get('right');
    assert.equal(r.status, 200);
    assert.deepEqual(good.handshakes.slice(before), [true], 'the new handshake resumed a session');
  });

  it('refuses a backend whose certificate does not name the server name: 502 and a log line naming it', async () => {
    const r = await get('wrongname');
    assert.equal(r.status, 502);
    const line = await tlsErrorOf('wrongname');
    assert.equal(line['backend'], 'wrongname-1');
    assert.equal(line['reason'], 'hostname_mismatch');
    assert.equal(line['server_name'], 'other.internal');
    assert.match(String(line['detail']), /Hostname\/IP does not match certificate's altnames/);
  });

  it('checks an IP address against the IP SANs: served when one matches, refused when none does', async () => {
    const r = await get('ip');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'over tls');
    assert.equal(byIp.requests.at(-1)?.servername, null, 'no SNI is sent for an IP address');
    assert.equal((await get('ipnoname')).status, 502);
    assert.equal((await tlsErrorOf('ipnoname'))['reason'], 'hostname_mismatch');
  });

  it('refuses a backend whose certificate no trusted CA signed (a given CA, or the built-in roots)', async () => {
    assert.equal((await get('unknownca')).status, 502);
    assert.equal((await tlsErrorOf('unknownca'))['reason'], 'untrusted_certificate');
    assert.equal((await get('roots')).status, 502);
    assert.equal((await tlsErrorOf('roots'))['reason'], 'untrusted_certificate');
  });

  it('serves with verify: false, and says so with a warning when the state is loaded', async () => {
    const r = await get('noverify');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'over tls');
    const warn = await kakehi.waitLog(
      (l) => l['event'] === 'backend_tls_unverified' && l['cluster'] === 'noverify',
    );
    assert.equal(warn['level'], 'warn');
  });

  it('presents the client certificate to a backend that requires one; without it, 502', async () => {
    assert.equal((await get('nocert')).status, 502);
    assert.equal((await tlsErrorOf('nocert'))['reason'], 'alert');
    const r = await get('withcert');
    assert.equal(r.status, 200);
    assert.equal(mtls.requests.at(-1)?.client, 'kakehi-client');
  });

  it('takes out a backend that refuses every connection after the handshake (TLS 1.3 client certificate)', async () => {
    // The first was refused in the test above; the handshake of each new one succeeds.
    assert.equal((await get('nocert')).status, 502);
    assert.equal((await get('nocert')).status, 502);
    const r = await ok(kakehi.socketPath, 'query_backends', { cluster: 'nocert' });
    const [b] = r['backends'] as { health: string; failures: number }[];
    assert.equal(b?.failures, 3);
    assert.equal(b?.health, 'down');
  });

  it('counts failed handshakes by reason in kakehi_backend_tls_errors_total', async () => {
    const m = await ok(kakehi.socketPath, 'query_metrics', { names: ['kakehi_backend_tls_errors_total'] });
    const families = m['families'] as {
      name: string;
      samples: { labels: Record<string, string>; value: number }[];
    }[];
    const samples = families.find((f) => f.name === 'kakehi_backend_tls_errors_total')?.samples ?? [];
    const of = (cluster: string) => samples.find((s) => s.labels['cluster'] === cluster);
    assert.equal(of('wrongname')?.labels['reason'], 'hostname_mismatch');
    assert.ok((of('wrongname')?.value ?? 0) >= 1);
    assert.equal(of('unknownca')?.labels['reason'], 'untrusted_certificate');
  });

  it('writes the PROXY header in clear before the TLS handshake', async () => {
    const r = await get('proxied');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'over tls');
    const seen = proxied.requests.at(-1);
    assert.equal(typeof seen?.proxySourcePort, 'number', 'the backend read a PROXY header before TLS');
  });

  it('never hands a plain pooled connection to a cluster that changed to TLS', async () => {
    assert.equal((await get('hot')).body, 'in clear'); // leaves a plain connection idle in the pool
    await ok(kakehi.socketPath, 'add_cluster', {
      cluster: { id: 'hot', backend_tls: { ca: ca.certPem, server_name: 'backend.internal' } },
    });
    const r = await get('hot');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'over tls');
  });

  it("carries a tcp listener's connection over TLS to a backend_tls cluster's backend", async () => {
    // On 127.0.0.2: the port 0 of the http listener on 127.0.0.1 is its key already.
    const r = await new Promise<HttpResult>((resolve, reject) =>
      request({ host: '127.0.0.2', port: kakehi.ports[1], agent: false }, (res) =>
        readWhole(res, resolve, reject),
      )
        .on('error', reject)
        .end(),
    );
    assert.equal(r.status, 200);
    assert.equal(r.body, 'over tls');
    assert.equal(good.requests.at(-1)?.servername, 'backend.internal');
  });

  it('probes a backend_tls cluster over TLS: the right name is up, a wrong one down with the reason', async () => {
    const probe = await checked.waitRequest((r) => r.userAgent === 'kakehi-health-check');
    assert.equal(probe.tls, true, 'the probe came over TLS');
    assert.equal(probe.servername, 'backend.internal');
    const down = await kakehi.waitLog(
      (l) => l.msg === 'backend down by health check' && l['cluster'] === 'checkedbad',
    );
    assert.match(String(down['reason']), /does not match certificate's altnames/);
    const { stdout } = await ctl(kakehi.socketPath, 'backends', '--cluster', 'checked');
    assert.equal(ctlRow(stdout, 'checked-1', 1)['CHECK'], 'up');
  });

  it('shows backend TLS in ctl clusters and never the client key', async () => {
    const { stdout } = await ctl(kakehi.socketPath, 'clusters');
    assert.match(
      ctlRow(stdout, 'withcert', 0)['BACKEND_TLS'] ?? '',
      /verify name=backend\.internal ca client-cert/,
    );
    assert.match(ctlRow(stdout, 'noverify', 0)['BACKEND_TLS'] ?? '', /NO-VERIFY/);
    const state = JSON.stringify(await ok(kakehi.socketPath, 'get_state'));
    assert.ok(!state.includes('PRIVATE KEY'), 'get_state shows no private key');
    const listed = JSON.stringify(await ok(kakehi.socketPath, 'list_clusters'));
    assert.ok(!listed.includes('PRIVATE KEY'), 'list_clusters shows no private key');
    assert.ok(!kakehi.rawLogs.some((l) => l.includes('PRIVATE KEY')), 'no log line holds a private key');
  });
});
