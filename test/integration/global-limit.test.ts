// The top-level max_connections (issue 16 §4, HAProxy's global maxconn): one
// count per worker over all its listeners. Past it, a new connection on any
// listener is closed unserved; every end of a connection gives its place back
// (an abort, a failed TLS handshake); a SIGHUP reload changes it in place.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Family, ScalarSample } from '../../src/metrics/registry.js';
import { rawBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { CLI, startKakehi } from '../helpers/kakehi-process.js';
import { until } from '../helpers/prometheus.js';

async function refusedTotal(socketPath: string): Promise<number> {
  const r = (await ok(socketPath, 'query_metrics')) as unknown as { families: Family[] };
  const f = r.families.find((x) => x.name === 'kakehi_connections_refused_total');
  return ((f?.samples ?? []) as ScalarSample[])
    .filter((s) => s.labels['reason'] === 'global_limit')
    .reduce((a, s) => a + s.value, 0);
}

/**
 * A connection through a tcp listener to the echo backend: resolves with the
 * socket once its bytes came back (served), or with undefined when kakehi
 * closed it without a byte (refused).
 */
function echoed(port: number, word: string, host = '127.0.0.1'): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.on('error', () => {});
    s.once('data', () => resolve(s));
    s.once('close', () => resolve(undefined));
    s.on('connect', () => s.write(word));
  });
}

/** Not events.once: it rejects on the reset a closed connection may see. */
function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => s.once('close', () => resolve()));
}

function config(socketPath: string, max: number, listeners: object[], backend: string) {
  return {
    workers: 1,
    command_socket: socketPath,
    max_connections: max,
    listeners,
    clusters: [{ id: 'c', backends: [{ id: 'b', address: backend }] }],
    access_log: 'off',
  };
}

describe('top-level max_connections', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('3 over two listeners: the 4th on either is closed unserved and counted, one leaving lets one in, and a SIGHUP raising it admits more without dropping the open ones', async () => {
    let seen = 0;
    const echo = await rawBackend((s) => {
      seen++;
      s.on('data', (c: Buffer) => s.write(c));
    });
    cleanup.push(() => echo.close());
    const listeners = [
      { address: '127.0.0.1:0', protocol: 'tcp', cluster: 'c' },
      { address: '127.0.0.2:0', protocol: 'tcp', cluster: 'c' },
    ];
    const kakehi = await startKakehi({
      max_connections: 3,
      listeners,
      clusters: [{ id: 'c', backends: [{ id: 'b', address: echo.address }] }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const [a, b] = kakehi.ports as [number, number];

    const open = [await echoed(a, 'a1'), await echoed(a, 'a2'), await echoed(b, 'b1', '127.0.0.2')];
    for (const s of open) assert.ok(s, 'the first three are served');
    assert.equal(
      await echoed(b, 'b2', '127.0.0.2'),
      undefined,
      'the 4th, on the other listener, gets no byte',
    );
    assert.equal(await echoed(a, 'a3'), undefined, 'and so does one on the first');
    assert.equal(seen, 3, 'the backend never sees a refused one');
    assert.equal(await refusedTotal(kakehi.socketPath), 2);

    // kakehi's close of the one leaving can't be seen from here: a new client
    // tries until it is served (each refusal is immediate).
    open.shift()?.destroy();
    const next = await until('a place freed by a close', () => echoed(b, 'b3', '127.0.0.2'));
    assert.equal(seen, 4);
    assert.equal(await echoed(a, 'a4'), undefined, 'full again at 3');

    writeFileSync(kakehi.configPath, stringify(config(kakehi.socketPath, 5, listeners, echo.address)));
    kakehi.proc.kill('SIGHUP');
    await kakehi.waitLog((l) => l.msg === 'SIGHUP reload applied');
    const more = [await echoed(a, 'a5'), await echoed(b, 'b4', '127.0.0.2')];
    for (const s of more) assert.ok(s, 'the raised limit admits two more');
    assert.equal(await echoed(a, 'a6'), undefined, 'and not a third');
    for (const s of [...open, next]) {
      assert.ok(s);
      s.write('still');
      const [echoedBack] = (await once(s, 'data')) as [Buffer];
      assert.equal(echoedBack.toString(), 'still', 'the open ones carry on through the reload');
    }
    const status = await ok(kakehi.socketPath, 'status');
    assert.equal(status['max_connections_per_worker'], 5);
    assert.deepEqual(
      (status['connections_open'] as { open: number }[]).map((w) => w.open),
      [5],
      'the worker counts the 3 kept through the reload and the 2 let in after',
    );
    for (const s of [...open, next, ...more]) s?.destroy();
  });

  it('failed TLS handshakes and aborted connections give their places back: after 20, the limit still admits 3', async () => {
    const echo = await rawBackend((s) => s.on('data', (c: Buffer) => s.write(c)));
    cleanup.push(() => echo.close());
    const kakehi = await startKakehi({
      max_connections: 3,
      listeners: [
        { address: '127.0.0.1:0', protocol: 'tcp', cluster: 'c' },
        { address: '127.0.0.2:0', protocol: 'tls', cluster: 'c' },
      ],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: echo.address }] }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    const [plain, tls] = kakehi.ports as [number, number];

    const ends: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) {
      // Not a ClientHello: the handshake fails and kakehi closes it.
      const bad = connect(tls, '127.0.0.2');
      bad.on('error', () => {});
      bad.on('connect', () => bad.write('GET / HTTP/1.1\r\n\r\n'));
      ends.push(closed(bad));
      // Connected, then gone before a byte.
      const gone = connect(plain, '127.0.0.1');
      gone.on('error', () => {});
      gone.on('connect', () => gone.destroy());
      ends.push(closed(gone));
    }
    await Promise.all(ends);

    const held: Socket[] = [];
    for (const word of ['x', 'y', 'z'])
      held.push(await until(`place ${word} after the aborts`, () => echoed(plain, word)));
    assert.equal(await echoed(plain, 'over'), undefined, 'the limit still holds at 3');
    for (const s of held) s.destroy();
  });

  it('kakehi validate refuses a max_connections of 0, naming the setting', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kakehi-test-')), 'config.yaml');
    writeFileSync(file, 'max_connections: 0\n');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = execFile(process.execPath, [CLI, 'validate', '-c', file], (_err, _out, stderr) =>
        resolve({ code: p.exitCode, stderr }),
      );
    });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /max_connections: must be from 1 to 10000000 \(got 0\)/);
  });
});
