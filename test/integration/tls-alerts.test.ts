// Fatal TLS errors against a real kakehi: a ClientHello kakehi refuses itself
// gets the alert OpenSSL would send, then EOF; an OpenSSL error after the
// handshake (bad record MAC, record overflow, ChangeCipherSpec after Finished)
// closes the connection at once instead of at the keep-alive timeout. Each is
// counted in kakehi_tls_errors_total and logged at warn.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { captureHello, reframe, tlsRelay } from '../helpers/tls-records.js';

const HTTPS = '127.0.0.1:0';
const alert = (description: number) => Buffer.from([21, 3, 3, 0, 2, 2, description]);

/** Sends `bytes` (then ends, if asked) and reads everything until kakehi closes. */
function exchange(port: number, bytes: Buffer, end = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => (end ? s.end(bytes) : s.write(bytes)));
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
  });
}

describe('fatal TLS errors', () => {
  let backend: Backend;
  let kakehi: Kakehi;
  let port: number;

  const errorCounts = async () => {
    const r = (await ok(kakehi.socketPath, 'query_metrics', { names: ['kakehi_tls_errors_total'] })) as {
      families: { name: string; samples: { labels: Record<string, string>; value: number }[] }[];
    };
    const out: Record<string, number> = {};
    for (const f of r.families)
      for (const s of f.samples)
        out[s.labels['reason'] ?? ''] = (out[s.labels['reason'] ?? ''] ?? 0) + s.value;
    return out;
  };

  before(async () => {
    const ca = makeCa({ keyType: 'ec' });
    const leaf = issueCert(ca, ['alerts.test'], { keyType: 'ec' });
    backend = await echoBackend('b');
    // A long keep-alive timeout: a connection closing is kakehi's answer to the error, not the timer.
    kakehi = await startKakehi({
      listeners: [{ address: HTTPS, protocol: 'https', keepalive_timeout_ms: 600_000 }],
      clusters: [{ id: 'app', backends: [{ id: 'b', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'app' }],
      access_log: 'off',
    });
    port = kakehi.port;
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        {
          op: 'put_certificate',
          certificate: { listener: HTTPS, certificate: leaf.fullchainPem, key: leaf.keyPem, default: true },
        },
      ],
    });
  });
  after(async () => {
    await kakehi?.stop();
    await backend?.close();
  });

  it('answers each malformed ClientHello with its alert (RFC 8446 §6), then EOF, and counts it by reason', async () => {
    const hello = await captureHello({ servername: 'alerts.test' });
    const before = await errorCounts();
    // decode_error: a ClientHello whose body ends inside the random.
    assert.deepEqual(await exchange(port, Buffer.from([22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0])), alert(50));
    // decode_error: half a hello, then the client's FIN.
    assert.deepEqual(await exchange(port, hello.subarray(0, hello.length >> 1), true), alert(50));
    // unexpected_message: application data before any handshake, and a ServerHello from a client.
    assert.deepEqual(await exchange(port, Buffer.from([23, 3, 3, 0, 3, 1, 2, 3])), alert(10));
    assert.deepEqual(await exchange(port, Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), alert(10));
    // record_overflow: a record announcing 2^14 + 1 bytes (RFC 8446 §5.1).
    assert.deepEqual(await exchange(port, Buffer.from([22, 3, 1, 0x40, 0x01])), alert(22));
    // handshake_failure: a hello announcing more than kakehi's 16 KiB bound.
    assert.deepEqual(await exchange(port, Buffer.from([22, 3, 1, 0, 4, 1, 0, 0x50, 0])), alert(40));
    // No TLS at all: no alert, like OpenSSL; the peer would not understand one.
    assert.deepEqual(await exchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), Buffer.alloc(0));
    const now = await errorCounts();
    const delta = (r: string) => (now[r] ?? 0) - (before[r] ?? 0);
    assert.deepEqual(
      ['malformed_hello', 'truncated_hello', 'unexpected_message', 'record_overflow', 'oversized_hello'].map(
        (r) => [r, delta(r)],
      ),
      [
        ['malformed_hello', 1],
        ['truncated_hello', 1],
        ['unexpected_message', 2],
        ['record_overflow', 1],
        ['oversized_hello', 1],
      ],
    );
    await kakehi.waitLog((l) => l['reason'] === 'oversized_hello' && l['level'] === 'warn');
  });

  it('completes a handshake whose 4 KiB hello comes in 1-byte records, as OpenSSL and nginx do', async () => {
    // A long ALPN list makes the hello about 4 KiB; 1-byte records make its framing six times that.
    const protocols = Array.from({ length: 30 }, (_, i) => `x-${i}-${'p'.repeat(120)}`).concat('http/1.1');
    const hello = await captureHello({ ALPNProtocols: protocols });
    assert.ok(hello.length > 4096, `hello of ${hello.length} bytes`);
    const relay = await tlsRelay(port, (first) => reframe(first, 1));
    try {
      const relayed = relay.next();
      const client = connect({
        host: '127.0.0.1',
        port: relay.port,
        rejectUnauthorized: false,
        ALPNProtocols: protocols,
      });
      // Refused, kakehi closes the relay's upstream; the relay keeps the client open, so watch both.
      await new Promise<void>((resolve, reject) => {
        client.once('secureConnect', () => resolve());
        client.once('error', (e) => reject(new Error(`handshake failed: ${String(e)}`)));
        void relayed.then(({ upstream }) =>
          upstream.once('close', () =>
            reject(new Error('kakehi closed the connection during the handshake')),
          ),
        );
      });
      assert.equal(client.alpnProtocol, 'http/1.1');
      client.destroy();
    } finally {
      relay.close();
    }
  });

  for (const [name, bytes, clientError, reason] of [
    [
      'a record whose tag does not authenticate',
      Buffer.concat([Buffer.from([23, 3, 3, 0, 32]), Buffer.alloc(32, 7)]),
      'ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC',
      'bad_record_mac',
    ],
    [
      // The header alone: OpenSSL refuses at the header, and a body left unread would make the close a reset.
      'a record header announcing 2^14 + 256 + 1 bytes',
      Buffer.from([23, 3, 3, 0x41, 0x01]),
      'ERR_SSL_TLSV1_ALERT_RECORD_OVERFLOW',
      'record_overflow',
    ],
    [
      'a ChangeCipherSpec after Finished',
      Buffer.from([20, 3, 3, 0, 1, 1]),
      'ERR_SSL_SSLV3_ALERT_UNEXPECTED_MESSAGE',
      'unexpected_message',
    ],
  ] as const) {
    // The guard only turns a connection left open (the bug: until the keep-alive timeout) into a failure.
    it(`after the handshake, ${name} gets its alert and the connection closes at once`, {
      timeout: 60_000,
    }, async () => {
      const relay = await tlsRelay(port);
      try {
        const before = await errorCounts();
        const relayed = relay.next();
        const client: TLSSocket = connect({
          host: '127.0.0.1',
          port: relay.port,
          rejectUnauthorized: false,
          maxVersion: 'TLSv1.3',
        });
        const gotError = once(client, 'error').then(([e]) => (e as { code?: string }).code);
        // A TLS 1.3 ticket comes after the server read the client's Finished: the handshake is over on both sides.
        await once(client, 'session');
        const { upstream } = await relayed;
        const closed = once(upstream, 'close');
        upstream.write(bytes);
        assert.equal(await gotError, clientError);
        await closed;
        const now = await errorCounts();
        assert.equal((now[reason] ?? 0) - (before[reason] ?? 0), 1);
        await kakehi.waitLog(
          (l) => l['reason'] === reason && l['level'] === 'warn' && typeof l['detail'] === 'string',
        );
      } finally {
        relay.close();
      }
    });
  }
});
