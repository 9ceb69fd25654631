// kakehi's PROXY protocol reader and writer against HAProxy 2.6, the protocol's
// own author: what HAProxy sends with send-proxy and send-proxy-v2 reads as the
// connection it relayed, and what kakehi writes HAProxy's accept-proxy takes,
// checksum included, reporting the client kakehi named.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeProxyV2, type ProxyHeader, readProxyHeader, TLV } from '../../src/proxy/proxy-protocol.js';
import { closedPort } from '../helpers/backends.js';
import { HAPROXY_PREAMBLE, type Haproxy, startHaproxy } from '../helpers/haproxy.js';

let haproxy: Haproxy;
let sendV1: number;
let sendV2: number;
let acceptProxy: number;
// By the client port HAProxy names: the readiness probes' connections are relayed
// too, at their own pace, and must not be taken for a test's.
const received = new Map<number, (h: ProxyHeader) => void>();

/** The backend HAProxy relays to: reads the header HAProxy put first, hands it to the test. */
const capture = createServer((s: Socket) => {
  let buf = Buffer.alloc(0);
  s.on('error', () => {});
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    const r = readProxyHeader(buf);
    if (r.kind === 'incomplete') return;
    s.destroy();
    if (r.kind === 'header') received.get(r.header.source?.port ?? -1)?.(r.header);
    else throw new Error(`HAProxy's header refused: ${r.message}`);
  });
});

before(async () => {
  capture.listen(0, '127.0.0.1');
  await once(capture, 'listening');
  const backend = (capture.address() as AddressInfo).port;
  [sendV1, sendV2, acceptProxy] = [await closedPort(), await closedPort(), await closedPort()];
  haproxy = await startHaproxy(
    `${HAPROXY_PREAMBLE}
frontend send_v1
  mode tcp
  bind 127.0.0.1:${sendV1}
  default_backend to_capture_v1
backend to_capture_v1
  mode tcp
  server s 127.0.0.1:${backend} send-proxy
frontend send_v2
  mode tcp
  bind 127.0.0.1:${sendV2}
  default_backend to_capture_v2
backend to_capture_v2
  mode tcp
  server s 127.0.0.1:${backend} send-proxy-v2 proxy-v2-options crc32c,authority
frontend accept
  mode http
  bind 127.0.0.1:${acceptProxy} accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]"
`,
    [sendV1, sendV2, acceptProxy],
  );
});
after(async () => {
  await haproxy?.stop();
  capture.close();
});

/** Connects to HAProxy's sending frontend; resolves with the header the capture saw and our own address. */
async function relayedBy(port: number): Promise<{ header: ProxyHeader; local: AddressInfo }> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  const local = { address: s.localAddress!, port: s.localPort!, family: 'IPv4' };
  const header = new Promise<ProxyHeader>((res) => received.set(local.port, res));
  s.write('hello');
  const h = await header;
  s.destroy();
  return { header: h, local };
}

async function askHaproxy(prefix: Buffer): Promise<string> {
  const s = connect(acceptProxy, '127.0.0.1');
  let text = '';
  s.setEncoding('utf8').on('data', (c: string) => {
    text += c;
  });
  // A refusal is a reset: the answer is then what arrived before it (nothing).
  const closed = new Promise<void>((res) => s.once('close', () => res()));
  s.on('error', () => {});
  await once(s, 'connect');
  s.end(Buffer.concat([prefix, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
  await closed;
  return text;
}

describe('PROXY protocol with HAProxy', () => {
  it('reads the v1 line HAProxy sends (send-proxy) as the connection it relayed', async () => {
    const { header, local } = await relayedBy(sendV1);
    assert.equal(header.version, 1);
    assert.deepEqual(header.source, { address: local.address, port: local.port, family: 'IPv4' });
    assert.deepEqual(header.destination, { address: '127.0.0.1', port: sendV1, family: 'IPv4' });
  });

  it('reads the v2 header HAProxy sends (send-proxy-v2, with CRC32C and authority TLVs)', async () => {
    const { header, local } = await relayedBy(sendV2);
    assert.equal(header.version, 2);
    assert.equal(header.command, 'proxy');
    assert.deepEqual(header.source, { address: local.address, port: local.port, family: 'IPv4' });
    assert.deepEqual(header.destination, { address: '127.0.0.1', port: sendV2, family: 'IPv4' });
    assert.ok(
      header.tlvs.some((t) => t.type === TLV.CRC32C),
      'HAProxy sent a checksum, and it matched',
    );
  });

  it("writes v2 headers HAProxy's accept-proxy takes, IPv4 and IPv6, with and without a checksum", async () => {
    const v4 = encodeProxyV2({
      source: { address: '203.0.113.7', port: 4242, family: 'IPv4' },
      destination: { address: '198.51.100.1', port: 443, family: 'IPv4' },
    });
    assert.match(await askHaproxy(v4), /\r\n\r\n203\.0\.113\.7 4242 198\.51\.100\.1 443$/);
    const v6 = encodeProxyV2(
      {
        source: { address: '2001:db8::7', port: 1, family: 'IPv6' },
        destination: { address: '2001:db8::1', port: 8443, family: 'IPv6' },
      },
      [{ type: TLV.AUTHORITY, value: Buffer.from('example.com') }],
      { checksum: true },
    );
    assert.match(await askHaproxy(v6), /\r\n\r\n2001:db8::7 1 2001:db8::1 8443$/);
  });

  it('writes a checksum HAProxy checks: a header with one address byte changed is refused', async () => {
    const bad = encodeProxyV2(
      {
        source: { address: '203.0.113.7', port: 4242, family: 'IPv4' },
        destination: { address: '198.51.100.1', port: 443, family: 'IPv4' },
      },
      [],
      { checksum: true },
    );
    const good = Buffer.from(bad);
    bad[16] = 204;
    assert.match(await askHaproxy(good), /^HTTP\/1\.1 200/, 'the same header unchanged is taken');
    assert.equal(await askHaproxy(bad), '');
  });
});
