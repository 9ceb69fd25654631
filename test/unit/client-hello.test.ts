import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from '../../src/tls/client-hello.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);

/** The first flight a real Node (OpenSSL) client sends, captured on a plain TCP server. */
async function captureHello(opts: {
  servername?: string;
  sigalgs?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}) {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      });
    }),
  );
  const client = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  client.on('error', () => {});
  const bytes = await got;
  client.destroy();
  server.close();
  return bytes;
}

/** The same handshake message, re-framed into TLS records of at most `size` bytes. */
function reframe(first: Buffer, size: number): Buffer {
  const msg = first.subarray(5, 5 + first.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const part = msg.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

describe('ClientHello parsing', () => {
  it('reads the SNI name and the signature algorithms of real clients', async () => {
    const modern = await captureHello({ servername: 'Shop.Example.test' });
    assert.deepEqual(parseClientHello(modern), {
      kind: 'hello',
      hello: { servername: 'shop.example.test', ecdsa: true, rsa: true },
    });
    const rsaOnly = await captureHello({
      servername: 'a.test',
      sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256',
    });
    assert.deepEqual(parseClientHello(rsaOnly), {
      kind: 'hello',
      hello: { servername: 'a.test', ecdsa: false, rsa: true },
    });
    const ecOnly = await captureHello({
      servername: 'a.test',
      sigalgs: 'ecdsa_secp256r1_sha256',
      maxVersion: 'TLSv1.2',
    });
    assert.deepEqual(parseClientHello(ecOnly), {
      kind: 'hello',
      hello: { servername: 'a.test', ecdsa: true, rsa: false },
    });
    // An IP literal sends no SNI (RFC 6066 §3).
    const noSni = await captureHello({});
    assert.deepEqual(parseClientHello(noSni), {
      kind: 'hello',
      hello: { servername: undefined, ecdsa: true, rsa: true },
    });
  });

  it('waits for more at every split point, and reassembles a hello spread over records', async () => {
    const hello = await captureHello({ servername: 'split.test' });
    const whole = parseClientHello(hello);
    for (let n = 0; n < hello.length; n++)
      assert.deepEqual(parseClientHello(hello.subarray(0, n)), { kind: 'incomplete' }, `prefix ${n}`);
    for (const size of [1, 7, 64, 300])
      assert.deepEqual(parseClientHello(reframe(hello, size)), whole, `records of ${size}`);
  });

  it('refuses plain HTTP, other record types and oversized hellos', () => {
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), {
      kind: 'invalid',
      reason: 'not_tls',
    });
    assert.deepEqual(parseClientHello(Buffer.from([21, 3, 3, 0, 2, 2, 40])), {
      kind: 'invalid',
      reason: 'not_tls',
    });
    const huge = Buffer.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]);
    assert.deepEqual(parseClientHello(huge), { kind: 'invalid', reason: 'too_large' });
    assert.ok(MAX_CLIENT_HELLO_BYTES < 0xffffff);
  });

  it('never throws on arbitrary bytes, with or without a TLS record header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, framed) => {
        const body = Buffer.from(bytes);
        const buf = framed
          ? Buffer.concat([Buffer.from([22, 3, 1, body.length >> 8, body.length & 0xff]), body])
          : body;
        const r = parseClientHello(buf);
        assert.ok(['incomplete', 'hello', 'invalid'].includes(r.kind));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('a corrupted real hello is refused or read; only a flip in its server_name extension changes the name', async () => {
    const hello = await captureHello({ servername: 'exact.test' });
    fc.assert(
      fc.property(fc.nat(hello.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const copy = Buffer.from(hello);
        copy[at] = (copy[at] as number) ^ xor;
        const r = parseClientHello(copy);
        if (r.kind === 'hello' && r.hello.servername !== undefined && r.hello.servername !== 'exact.test') {
          // Only a flip inside the server_name extension (its 9 bytes of type and
          // lengths, then the name) may change it; OpenSSL then refuses the hello anyway.
          const i = hello.indexOf('exact.test');
          assert.ok(
            at >= i - 9 && at < i + 'exact.test'.length,
            `flip at ${at} changed the name to ${r.hello.servername}`,
          );
        }
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});
