// The client of a connection as send_proxy writes it: the PROXY format wants both
// ends in one family, and a dual-stack listener can see an IPv6 client reach an
// IPv4-mapped address, or the other way round.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxyEndpoints } from '../../src/proxy/connection-peer.js';
import { encodeProxyV2, readProxyHeader } from '../../src/proxy/proxy-protocol.js';

describe('proxyEndpoints', () => {
  it('keeps two ends of one family as they are', () => {
    const peer = {
      client: { address: '203.0.113.7', port: 4242, family: 'IPv4' as const },
      target: { address: '198.51.100.1', port: 443, family: 'IPv4' as const },
    };
    assert.deepEqual(proxyEndpoints(peer), { source: peer.client, destination: peer.target });
  });

  it('writes mixed families as IPv6, the IPv4 end mapped (::ffff:), in a header that reads back', () => {
    const peer = {
      client: { address: '2001:db8::7', port: 1, family: 'IPv6' as const },
      target: { address: '198.51.100.1', port: 8443, family: 'IPv4' as const },
    };
    const r = readProxyHeader(encodeProxyV2(proxyEndpoints(peer)));
    assert.equal(r.kind, 'header');
    if (r.kind !== 'header') return;
    assert.equal(r.header.source?.address, '2001:db8::7');
    assert.equal(r.header.destination?.family, 'IPv6');
    assert.equal(r.header.destination?.port, 8443);
    // However the reader spells it, the mapped address ends in the IPv4 one's bytes.
    assert.match(r.header.destination?.address ?? '', /^::ffff:(198\.51\.100\.1|c633:6401)$/);
  });
});
