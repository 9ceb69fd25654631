// The listening socket handed from one server to another (a listener switching
// protocol), and the worker-wide connection limit over servers that close and
// listen again: real servers and sockets on 127.0.0.1.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import {
  limitConnections,
  listenOn,
  releaseListening,
  workerConnections,
} from '../../src/proxy/listening-server.js';

/** Resolves with what the server wrote before the connection ended. */
function answerOf(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (d: Buffer) => {
      got += d.toString();
    });
    c.on('error', () => {});
    c.on('close', () => resolve(got));
  });
}

/** Server-side closes still to come: the worker-wide count drops on each. */
const closing = new Set<Promise<unknown>>();

function named(name: string): Server {
  return createServer((s: Socket) => {
    const closed = once(s, 'close');
    closing.add(closed);
    void closed.then(() => closing.delete(closed));
    s.end(name);
  });
}

describe('listening sockets handed over', () => {
  const open: Server[] = [];
  after(() => {
    workerConnections.setLimit(undefined);
    for (const s of open) s.close();
  });

  it('hands the open socket to the next server: same port, the next one answers', async () => {
    const first = named('first');
    limitConnections(first, 'k1', undefined);
    const port = await listenOn(first, '127.0.0.1:0');
    assert.equal(await answerOf(port), 'first');
    const handle = releaseListening(first);
    assert.ok(handle);
    const second = named('second');
    open.push(second);
    limitConnections(second, 'k1', undefined);
    assert.equal(await listenOn(second, '127.0.0.1:0', handle), port);
    assert.equal(first.listening, false);
    assert.equal(await answerOf(port), 'second');
  });

  it('keeps the worker-wide limit on a server that closed and listens again (a switch rolled back)', async () => {
    const back = named('back');
    limitConnections(back, 'k2', undefined);
    const port = await listenOn(back, '127.0.0.1:0');
    const handle = releaseListening(back);
    await once(back, 'close');
    await listenOn(back, '127.0.0.1:0', handle);
    assert.equal(await answerOf(port), 'back');

    // Another listener's connection fills the worker: every listener must refuse.
    const other = createServer(() => {});
    open.push(other, back);
    limitConnections(other, 'k3', undefined);
    const otherPort = await listenOn(other, '127.0.0.1:0');
    await Promise.all(closing);
    workerConnections.setLimit(workerConnections.open + 1);
    const held = connect(otherPort, '127.0.0.1');
    await once(other, 'connection');
    const dropped = once(back, 'drop');
    assert.equal(await answerOf(port), '');
    await dropped;
    held.destroy();
  });
});
