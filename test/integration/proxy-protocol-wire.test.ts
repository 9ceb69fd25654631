// The PROXY protocol on kakehi's own connections, with HAProxy 2.6 as the peer:
// behind HAProxy's send-proxy / send-proxy-v2 (HTTP, and TLS passed through in
// mode tcp), kakehi reports the client HAProxy relayed, not HAProxy; in front of
// HAProxy's accept-proxy, kakehi's send_proxy names kakehi's own client, one
// backend connection per client. The same for tcp, tls and tls_passthrough
// listeners: the header read before TLS or the ClientHello, the client it names
// in the access log and in send_proxy's header. Clients connect from 127.0.0.2
// so that their address differs from HAProxy's (127.0.0.1).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { ScalarSample } from '../../src/metrics/registry.js';
import { encodeProxyV2, readProxyHeader } from '../../src/proxy/proxy-protocol.js';
import { type Backend, closedPort, echoBackend, rawBackend } from '../helpers/backends.js';
import { issueCert, makeCa, type TestCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { HAPROXY_PREAMBLE, type Haproxy, startHaproxy } from '../helpers/haproxy.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

const CLIENT = '127.0.0.2';

let backend: Backend;
let kakehi: Kakehi;
let haproxy: Haproxy;
let ca: TestCa;
/** kakehi: http with expect_proxy, https with expect_proxy, http towards HAProxy with send_proxy. */
let http: number;
let https: number;
let toHaproxy: number;
/** http with expect_proxy and a short head timeout. */
let quick: number;
/**
 * kakehi's byte listeners: tcp with expect_proxy to an echo; tcp with expect_proxy
 * to `reader` (send_proxy); tcp to HAProxy's accept-proxy in mode tcp (send_proxy);
 * tls and tls_passthrough with expect_proxy.
 */
let tcpExpect: number;
let tcpToReader: number;
let tcpToHaproxy: number;
let tlsExpect: number;
let passExpect: number;
/** HAProxy mode tcp: send-proxy-v2 to `tcpExpect`; accept-proxy, then send-proxy-v2 to `reader`. */
let sendTcp: number;
let acceptTcp: number;
let tcpEcho: Backend;
/** A backend behind send_proxy: answers with the connection its PROXY header names, then echoes. */
let reader: Server;
/** A TLS echo with its own certificate (sni.test), behind the passthrough listener. */
let tlsEcho: Server;
/** HAProxy: send-proxy-v2 and send-proxy to `http`, send-proxy-v2 to `https` (mode tcp), accept-proxy. */
let sendV2: number;
let sendV1: number;
let sendTls: number;
let acceptProxy: number;

/** Reads the header at the start of each connection, writes "vN SRC:PORT -> DST:PORT\n", then echoes the rest. */
async function headerReader(): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => {});
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const r = readProxyHeader(buf);
      if (r.kind === 'incomplete') return;
      s.off('data', onData);
      s.off('end', noHeader);
      if (r.kind === 'invalid') {
        s.end(`no header: ${r.reason}`);
        return;
      }
      const { source: src, destination: dst } = r.header;
      s.write(`v${r.header.version} ${src?.address}:${src?.port} -> ${dst?.address}:${dst?.port}\n`);
      s.write(buf.subarray(r.length));
      s.pipe(s);
    };
    const noHeader = () => s.end('no header: ended');
    s.on('data', onData);
    s.on('end', noHeader);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** A HAProxy frontend in mode tcp bound to 127.0.0.1:`bind`, relaying every connection to `server`. */
function tcpRelay(name: string, bind: string, server: string): string {
  return `frontend ${name}
  mode tcp
  bind 127.0.0.1:${bind}
  default_backend ${name}_to
backend ${name}_to
  mode tcp
  server s ${server}`;
}

before(async () => {
  backend = await echoBackend('echo');
  tcpEcho = await rawBackend((s) => s.pipe(s));
  reader = await headerReader();
  ca = makeCa();
  const sni = issueCert(ca, ['sni.test']);
  const fallback = issueCert(ca, ['default.test']);
  tlsEcho = createTlsServer({ cert: sni.fullchainPem, key: sni.keyPem, allowHalfOpen: true }, (s) =>
    s.pipe(s),
  );
  tlsEcho.listen(0, '127.0.0.1');
  await once(tlsEcho, 'listening');
  [tcpExpect, tcpToReader, tcpToHaproxy, tlsExpect, passExpect, sendTcp, acceptTcp] = [
    await closedPort(),
    await closedPort(),
    await closedPort(),
    await closedPort(),
    await closedPort(),
    await closedPort(),
    await closedPort(),
  ];
  const readerAddress = `127.0.0.1:${(reader.address() as AddressInfo).port}`;
  [http, https, toHaproxy, quick] = [
    await closedPort(),
    await closedPort(),
    await closedPort(),
    await closedPort(),
  ];
  [sendV2, sendV1, sendTls, acceptProxy] = [
    await closedPort(),
    await closedPort(),
    await closedPort(),
    await closedPort(),
  ];
  kakehi = await startKakehi({
    listeners: [
      { address: `127.0.0.1:${http}`, expect_proxy: true },
      { address: `127.0.0.1:${https}`, protocol: 'https', expect_proxy: true },
      { address: `127.0.0.1:${toHaproxy}` },
      { address: `127.0.0.1:${quick}`, expect_proxy: true, request_head_timeout_ms: 300 },
      { address: `127.0.0.1:${tcpExpect}`, protocol: 'tcp', cluster: 'tcp-echo', expect_proxy: true },
      { address: `127.0.0.1:${tcpToReader}`, protocol: 'tcp', cluster: 'reader', expect_proxy: true },
      { address: `127.0.0.1:${tcpToHaproxy}`, protocol: 'tcp', cluster: 'hap-tcp' },
      { address: `127.0.0.1:${tlsExpect}`, protocol: 'tls', cluster: 'tcp-echo', expect_proxy: true },
      {
        address: `127.0.0.1:${passExpect}`,
        protocol: 'tls_passthrough',
        sni_clusters: { 'sni.test': 'tls-echo' },
        expect_proxy: true,
      },
    ],
    clusters: [
      { id: 'echo', backends: [{ id: 'b', address: backend.address }] },
      { id: 'hap', send_proxy: true, backends: [{ id: 'h', address: `127.0.0.1:${acceptProxy}` }] },
      { id: 'tcp-echo', backends: [{ id: 'te', address: tcpEcho.address }] },
      { id: 'reader', send_proxy: true, backends: [{ id: 'r', address: readerAddress }] },
      { id: 'hap-tcp', send_proxy: true, backends: [{ id: 'ht', address: `127.0.0.1:${acceptTcp}` }] },
      {
        id: 'tls-echo',
        backends: [{ id: 'tl', address: `127.0.0.1:${(tlsEcho.address() as AddressInfo).port}` }],
      },
    ],
    frontends: [
      { hostname: 'hap.test', cluster: 'hap' },
      { hostname: '*', cluster: 'echo' },
    ],
    certificates: [
      {
        listener: `127.0.0.1:${https}`,
        certificate_file: fallback.fullchainPath,
        key_file: fallback.keyPath,
        default: true,
      },
      { listener: `127.0.0.1:${https}`, certificate_file: sni.fullchainPath, key_file: sni.keyPath },
      {
        listener: `127.0.0.1:${tlsExpect}`,
        certificate_file: fallback.fullchainPath,
        key_file: fallback.keyPath,
        default: true,
      },
    ],
    access_log: 'stdout',
  });
  haproxy = await startHaproxy(
    `${HAPROXY_PREAMBLE}
${tcpRelay('send_v2', `${sendV2}`, `127.0.0.1:${http} send-proxy-v2`)}
${tcpRelay('send_v1', `${sendV1}`, `127.0.0.1:${http} send-proxy`)}
${tcpRelay('send_tls', `${sendTls}`, `127.0.0.1:${https} send-proxy-v2`)}
frontend accept
  mode http
  bind 127.0.0.1:${acceptProxy} accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]"
${tcpRelay('send_tcp', `${sendTcp}`, `127.0.0.1:${tcpExpect} send-proxy-v2`)}
${tcpRelay('accept_tcp', `${acceptTcp} accept-proxy`, `${readerAddress} send-proxy-v2`)}
`,
    [sendV2, sendV1, sendTls, acceptProxy, sendTcp, acceptTcp],
  );
});

after(async () => {
  await haproxy?.stop();
  await kakehi?.stop();
  await backend?.close();
  await tcpEcho?.close();
  reader?.close();
  tlsEcho?.close();
});

/** A connection from CLIENT, and its local port. */
async function open(port: number): Promise<{ socket: Socket; port: number }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: CLIENT });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return { socket, port: socket.localPort! };
}

/** Reads one response with a Content-Length body from `socket`, leaving it open. */
function readResponse(socket: Socket): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? -1);
      if (text.length < end + 4 + length) return;
      done();
      resolve({ head: text.slice(0, end), body: text.slice(end + 4, end + 4 + length) });
    };
    const onClose = () => {
      done();
      reject(new Error(`closed before a whole response; got ${JSON.stringify(text)}`));
    };
    const done = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** The request headers the echo backend saw. */
function echoed(body: string): Record<string, string> {
  return (JSON.parse(body) as { headers: Record<string, string> }).headers;
}

const GET = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

async function proxyErrors(): Promise<ScalarSample[]> {
  const r = (await ok(kakehi.socketPath, 'query_metrics', {})) as unknown as {
    families: { name: string; samples: ScalarSample[] }[];
  };
  return r.families.find((f) => f.name === 'kakehi_proxy_protocol_errors_total')?.samples ?? [];
}

describe('PROXY protocol on the wire, with HAProxy', () => {
  for (const [version, port] of [
    ['send-proxy-v2', () => sendV2],
    ['send-proxy (v1)', () => sendV1],
  ] as const) {
    it(`behind HAProxy ${version}: the backend and the access log see the client, not HAProxy`, async () => {
      const c = await open(port());
      c.socket.write(GET('app.test'));
      const r = await readResponse(c.socket);
      c.socket.destroy();
      assert.match(r.head, /^HTTP\/1\.1 200/);
      const h = echoed(r.body);
      assert.equal(h['x-forwarded-for'], CLIENT);
      assert.equal(h['x-forwarded-port'], String(port()), 'the port the client connected to (HAProxy)');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.match(h['forwarded'] ?? '', new RegExp(`^for=${CLIENT.replaceAll('.', '\\.')};proto=http`));
      await kakehi.waitAccessLine((l) => l['client'] === `${CLIENT}:${c.port}`);
    });
  }

  it('behind HAProxy in mode tcp with send-proxy-v2, TLS passes through and SNI picks the certificate', async () => {
    const raw = await open(sendTls);
    const tls = tlsConnect({ socket: raw.socket, servername: 'sni.test', ca: ca.certPem });
    await once(tls, 'secureConnect');
    assert.deepEqual(tls.getPeerCertificate().subjectaltname, 'DNS:sni.test');
    tls.write(GET('sni.test'));
    const r = await readResponse(tls as unknown as Socket);
    tls.destroy();
    const h = echoed(r.body);
    assert.equal(h['x-forwarded-for'], CLIENT);
    assert.equal(h['x-forwarded-proto'], 'https');
    await kakehi.waitAccessLine((l) => l['client'] === `${CLIENT}:${raw.port}`);
  });

  it('closes a connection without a PROXY header, unanswered, and counts it', async () => {
    const before = await proxyErrors();
    const c = await open(http);
    let got = '';
    c.socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    c.socket.on('error', () => {});
    c.socket.write(GET('app.test'));
    await once(c.socket, 'close');
    assert.equal(got, '', 'no HTTP answer: the peer should have been a load balancer');
    const count = (s: ScalarSample[]) =>
      s.find(
        (x) => x.labels['listener'] === `127.0.0.1:${http}` && x.labels['reason'] === 'not_proxy_protocol',
      )?.value ?? 0;
    assert.equal(count(await proxyErrors()), count(before) + 1);
    await kakehi.waitLog(
      (l) => l.msg?.includes('PROXY header') === true && l['reason'] === 'not_proxy_protocol',
    );
  });

  it('closes, and counts, a header cut short by the peer and one not whole by the head timeout', async () => {
    const count = (s: ScalarSample[], reason: string) =>
      s.find((x) => x.labels['listener'] === `127.0.0.1:${quick}` && x.labels['reason'] === reason)?.value ??
      0;
    const before = await proxyErrors();
    const cut = await open(quick);
    // Read (and drop) whatever comes, so that the close is seen whatever kakehi sends.
    cut.socket.resume();
    cut.socket.end('PROXY TCP4 198.51.100.4 ');
    await once(cut.socket, 'close');
    const stalled = await open(quick);
    stalled.socket.resume();
    stalled.socket.write(encodeProxyV2('local').subarray(0, 10));
    // The peer never finishes its header: kakehi closes at the listener's head timeout.
    await once(stalled.socket, 'close');
    const now = await proxyErrors();
    assert.equal(count(now, 'truncated'), count(before, 'truncated') + 1);
    assert.equal(count(now, 'timeout'), count(before, 'timeout') + 1);
  });

  it('reads a v2 header arriving one byte at a time', async () => {
    const header = encodeProxyV2({
      source: { address: '203.0.113.9', port: 4711, family: 'IPv4' },
      destination: { address: '198.51.100.2', port: 8080, family: 'IPv4' },
    });
    const c = await open(http);
    for (const byte of header) {
      await new Promise<void>((res, rej) => c.socket.write(Buffer.from([byte]), (e) => (e ? rej(e) : res())));
    }
    c.socket.write(GET('app.test'));
    const r = await readResponse(c.socket);
    c.socket.destroy();
    const h = echoed(r.body);
    assert.equal(h['x-forwarded-for'], '203.0.113.9');
    assert.equal(h['x-forwarded-port'], '8080');
    await kakehi.waitAccessLine((l) => l['client'] === '203.0.113.9:4711');
  });

  it('reads a v1 header and the request that follows it in the same packet', async () => {
    const c = await open(http);
    c.socket.write(`PROXY TCP4 198.51.100.4 127.0.0.1 5555 80\r\n${GET('app.test')}`);
    const r = await readResponse(c.socket);
    c.socket.destroy();
    const h = echoed(r.body);
    assert.equal(h['x-forwarded-for'], '198.51.100.4');
    assert.equal(h['x-forwarded-port'], '80');
    await kakehi.waitAccessLine((l) => l['client'] === '198.51.100.4:5555');
  });

  it("keeps the socket's own addresses for a LOCAL header (a balancer's health check)", async () => {
    const c = await open(http);
    c.socket.write(Buffer.concat([encodeProxyV2('local'), Buffer.from(GET('app.test'))]));
    const r = await readResponse(c.socket);
    c.socket.destroy();
    assert.equal(echoed(r.body)['x-forwarded-for'], CLIENT);
    await kakehi.waitAccessLine((l) => l['client'] === `${CLIENT}:${c.port}`);
  });

  it("with send_proxy, HAProxy's accept-proxy sees kakehi's client; two clients never share a backend connection", async () => {
    const expected = (port: number) => `${CLIENT} ${port} 127.0.0.1 ${toHaproxy}`;
    const first = await open(toHaproxy);
    first.socket.write(GET('hap.test'));
    assert.equal((await readResponse(first.socket)).body, expected(first.port));
    // The first client's backend connection is idle now, kept alive: the second must not get it.
    const second = await open(toHaproxy);
    second.socket.write(GET('hap.test'));
    assert.equal((await readResponse(second.socket)).body, expected(second.port));
    first.socket.write(GET('hap.test'));
    assert.equal((await readResponse(first.socket)).body, expected(first.port));
    first.socket.destroy();
    second.socket.destroy();
  });
});

/** Everything a socket receives until it closes. */
function received(s: Socket | TLSSocket): Promise<string> {
  let data = '';
  s.on('data', (c: Buffer) => {
    data += c.toString('latin1');
  });
  s.on('error', () => {});
  return new Promise((resolve) => s.on('close', () => resolve(data)));
}

/** Writes `header`, then speaks TLS on the same connection: the certificate's names and what came back. */
async function tlsAfterHeader(
  port: number,
  header: string | Buffer,
  servername: string,
): Promise<{ san: string | undefined; echoed: string }> {
  const c = await open(port);
  c.socket.write(header);
  const tls = tlsConnect({ socket: c.socket, servername, ca: ca.certPem });
  await once(tls, 'secureConnect');
  const san = tls.getPeerCertificate().subjectaltname;
  const got = received(tls);
  tls.end('over tls');
  return { san, echoed: await got };
}

describe('PROXY protocol on tcp, tls and tls_passthrough listeners', () => {
  it('behind HAProxy send-proxy-v2 (mode tcp), a tcp listener passes the bytes after the header and logs the client', async () => {
    const c = await open(sendTcp);
    const got = received(c.socket);
    c.socket.end('through haproxy');
    assert.equal(await got, 'through haproxy', 'the echo saw no PROXY header: kakehi took it off');
    const line = await kakehi.waitAccessLine((l) => l['client'] === `${CLIENT}:${c.port}`);
    assert.equal(line['protocol'], 'tcp');
    assert.equal(line['cluster'], 'tcp-echo');
    assert.equal(line['bytes_in'], 'through haproxy'.length);
  });

  it('closes a tcp connection without a PROXY header before any backend, and counts it', async () => {
    const count = async () =>
      (await proxyErrors()).find(
        (x) =>
          x.labels['listener'] === `127.0.0.1:${tcpExpect}` && x.labels['reason'] === 'not_proxy_protocol',
      )?.value ?? 0;
    const before = await count();
    const c = await open(tcpExpect);
    const got = received(c.socket);
    c.socket.end('no header here');
    assert.equal(await got, '', 'nothing reached the echo backend');
    assert.equal(await count(), before + 1);
  });

  it('send_proxy names the client a PROXY header gave (v1 in, v2 out) before the first byte', async () => {
    const c = await open(tcpToReader);
    const got = received(c.socket);
    c.socket.end('PROXY TCP4 203.0.113.9 198.51.100.2 4711 5432\r\nhello');
    assert.equal(await got, 'v2 203.0.113.9:4711 -> 198.51.100.2:5432\nhello');
    await kakehi.waitAccessLine((l) => l['client'] === '203.0.113.9:4711' && l['cluster'] === 'reader');
  });

  it("send_proxy to HAProxy's accept-proxy in mode tcp: HAProxy takes kakehi's client as its own", async () => {
    const c = await open(tcpToHaproxy);
    const got = received(c.socket);
    c.socket.end('relayed');
    // HAProxy read kakehi's header, then wrote its own to the reader, naming the same connection.
    assert.equal(await got, `v2 ${CLIENT}:${c.port} -> 127.0.0.1:${tcpToHaproxy}\nrelayed`);
  });

  it('a tls listener reads the PROXY header before the ClientHello, then terminates TLS', async () => {
    const header = 'PROXY TCP4 203.0.113.10 198.51.100.2 4712 6380\r\n';
    assert.deepEqual(await tlsAfterHeader(tlsExpect, header, 'default.test'), {
      san: 'DNS:default.test',
      echoed: 'over tls',
    });
    const line = await kakehi.waitAccessLine((l) => l['client'] === '203.0.113.10:4712');
    assert.equal(line['protocol'], 'tls');
  });

  it('a tls_passthrough listener reads the PROXY header before peeking at the ClientHello', async () => {
    const header = encodeProxyV2({
      source: { address: '203.0.113.11', port: 4713, family: 'IPv4' },
      destination: { address: '198.51.100.2', port: 443, family: 'IPv4' },
    });
    // The backend's own certificate: the hello went through unopened.
    assert.deepEqual(await tlsAfterHeader(passExpect, header, 'sni.test'), {
      san: 'DNS:sni.test',
      echoed: 'over tls',
    });
    const line = await kakehi.waitAccessLine((l) => l['client'] === '203.0.113.11:4713');
    assert.equal(line['protocol'], 'tls_passthrough');
    assert.equal(line['cluster'], 'tls-echo');
  });
});
