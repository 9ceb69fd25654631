import assert from 'node:assert/strict';
import { isIPv6 } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type Endpoint,
  encodeProxyV2,
  MAX_V1_BYTES,
  MAX_V2_BYTES,
  type ProxyHeaderResult,
  readProxyHeader,
  TLV,
  V2_SIGNATURE,
} from '../../src/proxy/proxy-protocol.js';

const endpoint = (family: 'IPv4' | 'IPv6') =>
  fc
    .record({ address: family === 'IPv4' ? fc.ipV4() : fc.ipV6(), port: fc.integer({ min: 0, max: 65535 }) })
    .map((e): Endpoint => ({ ...e, family }));
const endpoints = fc
  .constantFrom('IPv4' as const, 'IPv6' as const)
  .chain((f) => fc.record({ source: endpoint(f), destination: endpoint(f) }));
const tlvs = fc.array(
  fc.record({
    type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== TLV.CRC32C),
    value: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
  }),
  { maxLength: 5 },
);

/** Two spellings of one address are equal when they parse to the same bytes. */
function sameAddress(a: string, b: string): boolean {
  if (!isIPv6(a)) return a === b;
  const bytes = (x: string) => encodeProxyV2({ source: v6(x), destination: v6(x) }).subarray(16, 32);
  return bytes(a).equals(bytes(b));
}
const v6 = (address: string): Endpoint => ({ address, port: 1, family: 'IPv6' });

function header(r: ProxyHeaderResult) {
  assert.equal(r.kind, 'header', JSON.stringify(r));
  return r as Extract<ProxyHeaderResult, { kind: 'header' }>;
}
function refused(r: ProxyHeaderResult, reason: string, message: RegExp) {
  assert.equal(r.kind, 'invalid', JSON.stringify(r));
  const i = r as Extract<ProxyHeaderResult, { kind: 'invalid' }>;
  assert.equal(i.reason, reason);
  assert.match(i.message, message);
}

/** Every proper prefix needs more; the whole header, followed by client bytes, reads as itself. */
function checkEverySplit(bytes: Buffer): Extract<ProxyHeaderResult, { kind: 'header' }> {
  for (let n = 0; n < bytes.length; n++) {
    assert.deepEqual(readProxyHeader(bytes.subarray(0, n)), { kind: 'incomplete' }, `prefix of ${n} bytes`);
  }
  const r = header(readProxyHeader(Buffer.concat([bytes, Buffer.from('GET / HTTP/1.1\r\n')])));
  assert.equal(r.length, bytes.length, 'the client bytes after it are not taken');
  return r;
}

describe('PROXY protocol v2', () => {
  it('reads what it writes, at every split point, for IPv4 and IPv6 with TLVs', () => {
    fc.assert(
      fc.property(endpoints, tlvs, fc.boolean(), (e, t, checksum) => {
        const bytes = encodeProxyV2(e, t, { checksum });
        const { header: h } = checkEverySplit(bytes);
        assert.equal(h.version, 2);
        assert.equal(h.command, 'proxy');
        for (const side of ['source', 'destination'] as const) {
          assert.equal(h[side]!.family, e[side].family);
          assert.equal(h[side]!.port, e[side].port);
          assert.ok(
            sameAddress(h[side]!.address, e[side].address),
            `${h[side]!.address} vs ${e[side].address}`,
          );
        }
        const read = h.tlvs.filter((x) => x.type !== TLV.CRC32C);
        assert.deepEqual(
          read.map((x) => [x.type, x.value.toString('hex')]),
          t.map((x) => [x.type, x.value.toString('hex')]),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('writes IPv6 addresses as the canonical text (RFC 5952)', () => {
    const h = header(
      readProxyHeader(
        encodeProxyV2({
          source: { address: '2001:db8:0:0:1:0:0:1', port: 1, family: 'IPv6' },
          destination: { address: '::ffff:192.0.2.1', port: 2, family: 'IPv6' },
        }),
      ),
    ).header;
    assert.equal(h.source!.address, '2001:db8::1:0:0:1');
    assert.equal(h.destination!.address, '::ffff:c000:201');
  });

  it('reads LOCAL (a health check from the balancer) without addresses', () => {
    const h = checkEverySplit(encodeProxyV2('local')).header;
    assert.equal(h.command, 'local');
    assert.equal(h.source, undefined);
    // LOCAL with addresses present: they are skipped, as the specification says.
    const withAddresses = encodeProxyV2({
      source: { address: '192.0.2.1', port: 1, family: 'IPv4' },
      destination: { address: '192.0.2.2', port: 2, family: 'IPv4' },
    });
    withAddresses[12] = 0x20;
    assert.equal(header(readProxyHeader(withAddresses)).header.source, undefined);
  });

  it('checks a CRC32C TLV: one changed byte anywhere in the header is refused', () => {
    const bytes = encodeProxyV2(
      {
        source: { address: '198.51.100.7', port: 51000, family: 'IPv4' },
        destination: { address: '203.0.113.9', port: 443, family: 'IPv4' },
      },
      [{ type: TLV.AUTHORITY, value: Buffer.from('example.com') }],
      { checksum: true },
    );
    header(readProxyHeader(bytes));
    // Past the fixed part (whose changes fail other checks first) and before the CRC
    // TLV, the last 7 bytes (a changed type byte would make it another TLV: no checksum).
    fc.assert(
      fc.property(
        fc.integer({ min: 16, max: bytes.length - 8 }),
        fc.integer({ min: 1, max: 255 }),
        (at, xor) => {
          const changed = Buffer.from(bytes);
          changed[at]! ^= xor;
          const r = readProxyHeader(changed);
          assert.equal(r.kind, 'invalid');
          assert.ok(['bad_checksum', 'malformed'].includes((r as { reason: string }).reason));
        },
      ),
    );
  });

  it('refuses each malformed or unsupported header, naming what is wrong', () => {
    const good = encodeProxyV2({
      source: { address: '192.0.2.1', port: 1, family: 'IPv4' },
      destination: { address: '192.0.2.2', port: 2, family: 'IPv4' },
    });
    const with_ = (at: number, byte: number) => {
      const b = Buffer.from(good);
      b[at] = byte;
      return b;
    };
    refused(readProxyHeader(with_(12, 0x11)), 'unsupported', /version nibble is 1/);
    refused(readProxyHeader(with_(12, 0x22)), 'unsupported', /command 2/);
    refused(readProxyHeader(with_(13, 0x41)), 'malformed', /family 4 does not exist/);
    refused(readProxyHeader(with_(13, 0x13)), 'malformed', /transport 3 does not exist/);
    refused(readProxyHeader(with_(13, 0x12)), 'unsupported', /DGRAM/);
    const short = Buffer.from(good);
    short.writeUInt16BE(8, 14);
    refused(readProxyHeader(short), 'malformed', /length 8 is shorter than the 12 address bytes/);
    const huge = Buffer.from(good);
    huge.writeUInt16BE(MAX_V2_BYTES, 14);
    refused(readProxyHeader(huge), 'too_large', /at most 4096/);
    const badTlv = Buffer.concat([good, Buffer.from([0x02, 0x00, 0x09, 0x61])]);
    badTlv.writeUInt16BE(12 + 4, 14);
    refused(readProxyHeader(badTlv), 'malformed', /TLV of type 0x2 runs past/);
    const crcShort = Buffer.concat([good, Buffer.from([0x03, 0x00, 0x01, 0x00])]);
    crcShort.writeUInt16BE(12 + 4, 14);
    refused(readProxyHeader(crcShort), 'malformed', /CRC32C TLV must hold 4 bytes/);
  });

  it('refuses a wrong signature at its first wrong byte, not after waiting for more', () => {
    for (let at = 0; at < V2_SIGNATURE.length; at++) {
      const b = Buffer.from(V2_SIGNATURE.subarray(0, at + 1));
      b[at] = b[at]! ^ 0x40;
      refused(readProxyHeader(b), 'not_proxy_protocol', /neither a PROXY v1 line nor a v2 signature/);
    }
  });
});

describe('PROXY protocol v1', () => {
  const line = (s: string) => Buffer.from(s, 'latin1');

  it('reads TCP4, TCP6 and UNKNOWN lines at every split point', () => {
    fc.assert(
      fc.property(endpoints, (e) => {
        const proto = e.source.family === 'IPv4' ? 'TCP4' : 'TCP6';
        const bytes = line(
          `PROXY ${proto} ${e.source.address} ${e.destination.address} ${e.source.port} ${e.destination.port}\r\n`,
        );
        const h = checkEverySplit(bytes).header;
        assert.equal(h.version, 1);
        assert.deepEqual(h.source, e.source);
        assert.deepEqual(h.destination, e.destination);
      }),
      { numRuns: 200 },
    );
    const unknown = checkEverySplit(line('PROXY UNKNOWN\r\n')).header;
    assert.equal(unknown.source, undefined);
    // Whatever follows UNKNOWN on the line is ignored, as the specification asks.
    assert.equal(header(readProxyHeader(line('PROXY UNKNOWN ffff:: ffff:: 1 2\r\n'))).length, 33);
  });

  it('accepts the longest line the specification allows, and refuses one byte more', () => {
    const longest = line(`PROXY UNKNOWN ${'x'.repeat(MAX_V1_BYTES - 16)}\r\n`);
    assert.equal(longest.length, MAX_V1_BYTES);
    assert.equal(header(readProxyHeader(longest)).length, MAX_V1_BYTES);
    const over = line(`PROXY UNKNOWN ${'x'.repeat(MAX_V1_BYTES - 15)}\r\n`);
    refused(readProxyHeader(over), 'too_large', /no CRLF within 107 bytes/);
    // Refused once 107 bytes are in, without waiting for the CRLF that would end it.
    refused(readProxyHeader(over.subarray(0, MAX_V1_BYTES)), 'too_large', /no CRLF/);
  });

  it('refuses each malformed line, naming what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n', /bare LF/],
      ['PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX', /CR not followed by LF/],
      ['PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n', /must be TCP4, TCP6 or UNKNOWN \(got "TCP5"\)/],
      ['PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n', /must be TCP4, TCP6 or UNKNOWN \(got ""\)/],
      ['PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n', /"PROXY TCPx SRC DST SPORT DPORT"/],
      ['PROXY TCP4 ::1 192.0.2.2 1 2\r\n', /IPv4 addresses for TCP4/],
      ['PROXY TCP6 192.0.2.1 ::1 1 2\r\n', /IPv6 addresses for TCP6/],
      ['PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n', /IPv4 addresses/],
      ['PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n', /without leading zeros/],
      ['PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n', /decimal 0-65535/],
      ['PROXY TCP4 192.0.2.1 192.0.2.2 1 -2\r\n', /decimal 0-65535/],
      ['PROXY TCP4 192.0.2.1\t192.0.2.2 1 2\r\n', /not printable ASCII/],
    ];
    for (const [text, message] of cases) refused(readProxyHeader(line(text)), 'malformed', message);
    refused(readProxyHeader(line('PROXI')), 'not_proxy_protocol', /neither/);
    refused(readProxyHeader(line('GET / HTTP/1.1\r\n')), 'not_proxy_protocol', /neither/);
  });
});

describe('PROXY protocol reader on arbitrary bytes', () => {
  it('never throws, and a header it reads lies inside what it was given and its bound', () => {
    const prefixed = fc
      .tuple(
        fc.constantFrom(Buffer.alloc(0), line6('PROXY '), V2_SIGNATURE),
        fc.uint8Array({ maxLength: 300 }),
      )
      .map(([p, rest]) => Buffer.concat([p, Buffer.from(rest)]));
    fc.assert(
      fc.property(prefixed, (bytes) => {
        const r = readProxyHeader(bytes);
        assert.ok(['incomplete', 'header', 'invalid'].includes(r.kind));
        if (r.kind === 'header') {
          assert.ok(r.length <= bytes.length);
          assert.ok(r.length <= Math.max(MAX_V1_BYTES, MAX_V2_BYTES));
        }
        if (r.kind === 'incomplete') assert.ok(bytes.length < MAX_V2_BYTES, 'never waits past the bound');
      }),
      { numRuns: 2000 },
    );
  });
});

function line6(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
