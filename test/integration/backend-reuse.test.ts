// A backend connection goes back to the idle pool only when it can be read
// again. Kakehi stops reading a backend while the client's socket is backed up
// (any write larger than the socket's high-water mark counts), and a response
// can complete inside that very chunk: pooled still paused, the connection
// would carry the next request but never deliver its answer (a 504 at the
// backend timeout).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { rawBackend } from '../helpers/backends.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

// Well above a socket's 16 KiB high-water mark, and with the head in one TCP
// segment on loopback, so kakehi reads the whole answer in one chunk.
const BODY = Buffer.alloc(48 * 1024, 'k');
const ANSWER = Buffer.concat([
  Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n`, 'latin1'),
  BODY,
]);

describe('backend connection reuse', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('answers a second client on the pooled connection of a response a slow client backed up', async () => {
    let connections = 0;
    const written: (() => void)[] = [];
    const be = await rawBackend((s: Socket) => {
      connections++;
      let pending = '';
      s.on('data', (c: Buffer) => {
        pending += c.toString('latin1');
        // Keep-alive: one whole answer, in one write, per request head.
        for (let i = pending.indexOf('\r\n\r\n'); i >= 0; i = pending.indexOf('\r\n\r\n')) {
          pending = pending.slice(i + 4);
          s.write(ANSWER, () => written.shift()?.());
        }
      });
    });
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
    });
    cleanup.push(() => kakehi.stop());

    // The first client reads nothing until the backend has written its whole answer.
    const backendDone = new Promise<void>((res) => written.push(res));
    const slow = connect(kakehi.port, '127.0.0.1');
    await once(slow, 'connect');
    slow.pause();
    slow.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await backendDone;
    let got = 0;
    const whole = ANSWER.length;
    slow.on('data', (c: Buffer) => {
      got += c.length;
    });
    slow.resume();
    await kakehi.waitAccess(1);
    while (got < whole) await once(slow, 'data');
    slow.destroy();

    // Another client, the same backend: its request goes on the pooled connection.
    const second = await rawExchange(kakehi.port, 'GET /next HTTP/1.1\r\nHost: x\r\n\r\n', {
      // Bounded by the answer itself: without the fix it is kakehi's 504 at the backend timeout.
      timeoutMs: 600_000,
      doneWhen: (t) => statusCodes(t).length > 0 && (!t.startsWith('HTTP/1.1 200') || t.length >= whole),
    });
    assert.deepEqual(statusCodes(second.text), [200], second.text.slice(0, 200));
    assert.ok(second.text.length >= whole, 'the whole second answer arrived');
    assert.equal(connections, 1, 'the second request reused the first one’s backend connection');
  });
});
