// A backend that sends interim (1xx) responses without end, to a client that
// does not read: kakehi must stop reading the backend, as it does for a body,
// rather than buffer everything for the client. Then, once the client reads,
// every interim response and the final one arrive, in order.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { rawBackend } from '../helpers/backends.js';
import { startKakehi } from '../helpers/kakehi-process.js';

const MB = 1024 * 1024;
const TARGET = 32 * MB;
// One 103 Early Hints of about 1 KiB.
const INTERIM = Buffer.from(
  `HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nX-Pad: ${'p'.repeat(930)}\r\n\r\n`,
);
const FINAL = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone');
/**
 * How long the backend's writes must have been held back to count as held. Not a
 * speed bound: without backpressure the proxy reads as fast as it can and the
 * backend reaches TARGET; a proxy starved of CPU for this long can only make the
 * test pass where it should fail, never the reverse.
 */
const HELD_MS = 1_500;

describe('interim responses and backpressure', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('stops reading a backend that floods 1xx responses while the client reads nothing, then delivers all of them', async () => {
    let written = 0;
    let sent = 0;
    let finish!: () => void;
    const finished = new Promise<void>((res) => {
      finish = res;
    });
    let heldResolve!: (bytes: number) => void;
    const held = new Promise<number>((res) => {
      heldResolve = res;
    });
    const be = await rawBackend((s: Socket) => {
      s.once('data', async () => {
        while (written < TARGET) {
          sent += 1;
          written += INTERIM.length;
          if (!s.write(INTERIM)) {
            const timer = setTimeout(() => heldResolve(written), HELD_MS);
            await once(s, 'drain');
            clearTimeout(timer);
          }
        }
        heldResolve(written);
        s.write(FINAL);
        finish();
      });
    });
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
    });
    cleanup.push(() => kakehi.stop());

    const client = connect(kakehi.port, '127.0.0.1');
    await once(client, 'connect');
    client.pause(); // reads nothing until told
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const heldAt = await held;
    assert.ok(
      heldAt < TARGET / 2,
      `the backend wrote ${(heldAt / MB).toFixed(1)} MB of 1xx before the client read a byte`,
    );

    let text = '';
    client.setEncoding('latin1').on('data', (c: string) => {
      text += c;
    });
    client.resume();
    await finished;
    await new Promise<void>((res) => {
      const check = () => (text.endsWith('done') ? res() : client.once('data', check));
      check();
    });
    client.destroy();
    assert.equal(text.split('HTTP/1.1 103 Early Hints').length - 1, sent, 'every interim response arrived');
    assert.match(text, /HTTP\/1\.1 200 OK\r\nContent-Length: 4\r\n\r\ndone$/);
  });
});
