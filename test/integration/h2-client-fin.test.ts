// An HTTP/2 client that closes its side of the connection (FIN) with streams still open,
// as h2load does at the end of a timed run: kakehi's client sockets are half-open, so
// node:http2 alone never noticed, the connection stayed for ever and a drain hung on it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { type GatedBackend, gatedBackend } from '../helpers/backends.js';
import { issueCert, makeCa, type TestCa } from '../helpers/certs.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

const HTTPS = '127.0.0.1:0';

describe('HTTP/2 client closing its side', () => {
  let ca: TestCa;
  let backend: GatedBackend;
  let kakehi: Kakehi;

  before(async () => {
    ca = makeCa({ keyType: 'ec' });
    const cert = issueCert(ca, ['h2.test'], { keyType: 'ec' });
    const dir = join(ca.dir, 'cfg');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'h2.crt'), cert.fullchainPem);
    writeFileSync(join(dir, 'h2.key'), cert.keyPem);
    backend = await gatedBackend('b');
    kakehi = await startKakehi({
      listeners: [{ address: HTTPS, protocol: 'https' }],
      clusters: [{ id: 'app', backends: [{ id: 'b', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'app' }],
      certificates: [
        {
          listener: HTTPS,
          certificate_file: join(dir, 'h2.crt'),
          key_file: join(dir, 'h2.key'),
          default: true,
        },
      ],
      access_log: 'off',
    });
  });
  after(async () => {
    await kakehi?.stop();
    await backend?.close();
  });

  it('ends the connection when the client sends FIN with streams open, and then drains at once', async () => {
    const port = kakehi.port;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'h2.test',
      ca: ca.certPem,
      ALPNProtocols: ['h2'],
    });
    await once(socket, 'secureConnect');
    assert.equal(socket.alpnProtocol, 'h2');
    const client = h2connect(`https://h2.test:${port}`, { createConnection: () => socket });
    // The streams die with the connection: that is the point, not a failure.
    client.on('error', () => {});
    for (let i = 0; i < 4; i++) {
      const req = client.request({ ':path': `/held/${i}` });
      req.on('error', () => {});
      req.end();
    }
    await backend.holding;
    const closed = once(socket, 'close');
    socket.end();
    await closed;
    backend.release();
    assert.equal(await kakehi.stop(), 0);
  });
});
