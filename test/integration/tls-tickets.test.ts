// Session tickets against a real kakehi with two workers: every resumed TLS
// 1.3 handshake brings a fresh ticket, as nginx does, so a client that uses
// each ticket once (RFC 8446 §C.4) keeps resuming instead of falling back to a
// full handshake once its first tickets are spent.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { issueCert, makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { handshake } from '../helpers/tls-client.js';

const HTTPS = '127.0.0.1:0';

describe('session tickets', () => {
  it('a resumed TLS 1.3 handshake issues a new ticket, and a chain of tickets each used once keeps resuming', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const leaf = issueCert(ca, ['tickets.test'], { keyType: 'ec' });
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: HTTPS, protocol: 'https' }],
      access_log: 'off',
    });
    try {
      await ok(kakehi.socketPath, 'transaction', {
        changes: [
          {
            op: 'put_certificate',
            certificate: { listener: HTTPS, certificate: leaf.fullchainPem, key: leaf.keyPem, default: true },
          },
        ],
      });
      const first = await handshake(kakehi.port, { servername: 'tickets.test', maxVersion: 'TLSv1.3' });
      assert.equal(first.reused, false);
      let ticket = first.session;
      for (let i = 1; i <= 6; i++) {
        assert.ok(ticket, `a ticket to resume connection ${i} with`);
        const again = await handshake(kakehi.port, {
          servername: 'tickets.test',
          maxVersion: 'TLSv1.3',
          session: ticket,
        });
        assert.equal(again.reused, true, `connection ${i} resumed`);
        assert.ok(again.session, `connection ${i} brought a new ticket`);
        assert.notDeepEqual(again.session, ticket);
        ticket = again.session;
      }
    } finally {
      await kakehi.stop();
    }
  });
});
