import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ClientHelloReader, MAX_CLIENT_HELLO_BYTES, parseClientHello } from '../../src/tls/client-hello.js';
import { captureHello, reframe } from '../helpers/tls-records.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);

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

  it('fed in chunks, reads the same hello at every split point and over any chunking, one byte at a time included', async () => {
    const hello = await captureHello({ servername: 'chunks.test' });
    const whole = parseClientHello(hello);
    const feed = (framed: Buffer, cuts: number[]) => {
      const reader = new ClientHelloReader();
      let r = reader.push(Buffer.alloc(0));
      let at = 0;
      for (const cut of [...cuts.sort((x, y) => x - y), framed.length]) {
        r = reader.push(framed.subarray(at, cut));
        at = cut;
      }
      return r;
    };
    for (let n = 0; n <= hello.length; n++) assert.deepEqual(feed(hello, [n]), whole, `split at ${n}`);
    const bytewise = reframe(hello, 3);
    assert.deepEqual(
      feed(
        bytewise,
        Array.from({ length: bytewise.length }, (_, i) => i),
      ),
      whole,
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.array(fc.nat(), { maxLength: 40 }), (size, cuts) => {
        const framed = reframe(hello, size);
        assert.deepEqual(
          feed(
            framed,
            cuts.map((c) => c % (framed.length + 1)),
          ),
          whole,
        );
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('bounds the hello, not its framing: a 4 KiB hello in 1-byte records is read', async () => {
    const protocols = Array.from({ length: 30 }, (_, i) => `x-${i}-${'p'.repeat(120)}`);
    const hello = await captureHello({ servername: 'big.test', ALPNProtocols: protocols });
    assert.ok(hello.length > 4096);
    const framed = reframe(hello, 1);
    // Its framing alone is over the bound: the old reader counted record headers and refused it.
    assert.ok(framed.length > MAX_CLIENT_HELLO_BYTES);
    assert.deepEqual(parseClientHello(framed), parseClientHello(hello));
    assert.equal(parseClientHello(hello).kind, 'hello');
  });

  it('refuses plain HTTP, other record and message types, empty and oversized records, and oversized hellos', () => {
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), {
      kind: 'invalid',
      reason: 'not_tls',
    });
    // A TLS record of another type (an alert, application data): RFC 8446 §5 unexpected_message.
    assert.deepEqual(parseClientHello(Buffer.from([21, 3, 3, 0, 2, 2, 40])), {
      kind: 'invalid',
      reason: 'unexpected_message',
    });
    // Looks like a record type, but the version is not TLS: no TLS at all.
    assert.deepEqual(parseClientHello(Buffer.from([23, 0x48, 0x54, 0x54, 0x50])), {
      kind: 'invalid',
      reason: 'not_tls',
    });
    // A ServerHello (type 2) where a ClientHello belongs.
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), {
      kind: 'invalid',
      reason: 'unexpected_message',
    });
    // A handshake record, then an application data record before the hello is whole.
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0, 2, 1, 0, 23, 3, 3, 0, 1, 0])), {
      kind: 'invalid',
      reason: 'unexpected_message',
    });
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), {
      kind: 'invalid',
      reason: 'malformed',
    });
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0x40, 0x01])), {
      kind: 'invalid',
      reason: 'record_overflow',
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
