// The PROXY protocol on kakehi's own connections, with HAProxy 2.6 as the peer:
// behind HAProxy's send-proxy / send-proxy-v2 (HTTP, and TLS passed through in
// mode tcp), kakehi reports the client HAProxy relayed, not HAProxy; in front of
// HAProxy's accept-proxy, kakehi's send_proxy names kakehi's own client, one
// backend connection per client. Clients connect from 127.0.0.2 so that their
// address differs from HAProxy's (127.0.0.1).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { ScalarSample } from '../../src/metrics/registry.js';
import { encodeProxyV2 } from '../../src/proxy/proxy-protocol.js';
import { type Backend, closedPort, echoBackend } from '../helpers/backends.js';
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
/** HAProxy: send-proxy-v2 and send-proxy to `http`, send-proxy-v2 to `https` (mode tcp), accept-proxy. */
let sendV2: number;
let sendV1: number;
let sendTls: number;
let acceptProxy: number;

before(async () => {
  backend = await echoBackend('echo');
  ca = makeCa();
  const sni = issueCert(ca, ['sni.test']);
  const fallback = issueCert(ca, ['default.test']);
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
    ],
    clusters: [
      { id: 'echo', backends: [{ id: 'b', address: backend.address }] },
      { id: 'hap', send_proxy: true, backends: [{ id: 'h', address: `127.0.0.1:${acceptProxy}` }] },
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
    ],
    access_log: 'stdout',
  });
  haproxy = await startHaproxy(
    `${HAPROXY_PREAMBLE}
frontend send_v2
  mode tcp
  bind 127.0.0.1:${sendV2}
  default_backend kakehi_v2
backend kakehi_v2
  mode tcp
  server k 127.0.0.1:${http} send-proxy-v2
frontend send_v1
  mode tcp
  bind 127.0.0.1:${sendV1}
  default_backend kakehi_v1
backend kakehi_v1
  mode tcp
  server k 127.0.0.1:${http} send-proxy
frontend send_tls
  mode tcp
  bind 127.0.0.1:${sendTls}
  default_backend kakehi_tls
backend kakehi_tls
  mode tcp
  server k 127.0.0.1:${https} send-proxy-v2
frontend accept
  mode http
  bind 127.0.0.1:${acceptProxy} accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]"
`,
    [sendV2, sendV1, sendTls, acceptProxy],
  );
});

after(async () => {
  await haproxy?.stop();
  await kakehi?.stop();
  await backend?.close();
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
