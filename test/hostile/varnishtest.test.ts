// Broken backends and broken clients, scripted to the byte with varnishtest
// (Debian's varnish package) against a real kakehi: each test/hostile/*.vtc has
// a `server s1` that is kakehi's only backend and clients that talk to kakehi.
// The scripts assert what the client gets (a correct answer, a 502/504, or a
// close, never a hang or a mixed-up response); here, after each, the worker's
// open file descriptors come back to what they were, so nothing leaked. Two
// breakages varnishtest cannot script (a TCP reset, a client's half-close) are
// done with raw sockets at the end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { rawBackend } from '../helpers/backends.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { eventually, freePort } from '../helpers/pki.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

const run = promisify(execFile);
const VTC_DIR = resolve(import.meta.dirname, '..', '..', '..', 'test', 'hostile');
const VARNISHTEST = '/usr/bin/varnishtest';

let kakehi: Kakehi;
let sport: number;
let workerPid: number;
let baselineFds: number;

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** Waits until the worker holds no more descriptors than before the first scenario. */
async function assertNoLeak(what: string): Promise<void> {
  await eventually(
    () => {
      const n = openFds(workerPid);
      if (n > baselineFds) throw new Error(`${n} open, ${baselineFds} before`);
    },
    { what: `the worker's open descriptors back to ${baselineFds} after ${what}`, timeoutMs: 15_000 },
  );
}

before(async () => {
  sport = await freePort();
  kakehi = await startKakehi({
    // Idle connections stay an hour: a close seen sooner was kakehi's decision.
    listeners: [{ address: '127.0.0.1:0', request_head_timeout_ms: 5_000, keepalive_timeout_ms: 3_600_000 }],
    clusters: [
      {
        id: 'hostile',
        // A stalled backend gets the client a 504 after this long.
        backend_timeout_ms: 2_000,
        backends: [{ id: 'vtc', address: `127.0.0.1:${sport}` }],
      },
    ],
    frontends: [{ hostname: '*', cluster: 'hostile' }],
  });
  workerPid = kakehi.workerPids()[0]!;
  baselineFds = openFds(workerPid);
});

after(async () => {
  await kakehi?.stop();
});

describe('varnishtest scenarios', () => {
  const files = readdirSync(VTC_DIR)
    .filter((f) => f.endsWith('.vtc'))
    .sort();
  test('finds the scenarios', () => assert.ok(files.length >= 9, files.join(', ')));
  for (const file of files) {
    test(file.replace(/\.vtc$/, ''), async () => {
      const args = ['-t', '60', '-D', `sport=${sport}`, '-D', `kport=${kakehi.port}`, join(VTC_DIR, file)];
      try {
        await run(VARNISHTEST, args, { timeout: 90_000 });
      } catch (err) {
        // Verbose again, for the log of what each side sent and got.
        const again = await run(VARNISHTEST, ['-v', ...args], { timeout: 90_000 }).catch(
          (e: { stdout?: string }) => e,
        );
        const log = (again as { stdout?: string }).stdout ?? '';
        assert.fail(`varnishtest ${file} failed: ${(err as Error).message}\n${log.slice(-6000)}`);
      }
      await assertNoLeak(file);
    });
  }
});

describe('raw-socket scenarios', () => {
  test('a backend resets the connection in the middle of its body: the client gets a close, not a hang', async () => {
    const backend = await rawBackend((s, got) => {
      s.on('data', () => {
        if (!got().includes('\r\n\r\n')) return;
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial', () => s.resetAndDestroy());
      });
    }, sport);
    try {
      const r = await rawExchange(kakehi.port, 'GET /rst HTTP/1.1\r\nHost: hostile.test\r\n\r\n', {
        timeoutMs: 20_000,
      });
      assert.equal(r.closed, true, `closed by kakehi, not by our deadline:\n${r.text}`);
      assert.deepEqual(statusCodes(r.text), [200]);
      assert.ok(r.text.endsWith('partial'), r.text);
    } finally {
      await backend.close();
    }
    await assertNoLeak('a backend reset');
  });

  // The bound is the correctness one: closed long before the hour of keep-alive.
  test('a client half-closes after its request: it still gets the whole answer, then a close', {
    timeout: 30_000,
  }, async () => {
    const backend = await rawBackend((s, got) => {
      s.on('data', () => {
        if (got().includes('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    }, sport);
    try {
      const text = await new Promise<string>((res, rej) => {
        const c = connect(kakehi.port, '127.0.0.1');
        let t = '';
        c.on('error', rej);
        c.on('data', (d: Buffer) => {
          t += d.toString('latin1');
        });
        c.on('close', () => res(t));
        c.end('GET /half HTTP/1.1\r\nHost: hostile.test\r\n\r\n');
      });
      assert.deepEqual(statusCodes(text), [200], text);
      assert.ok(text.endsWith('\r\n\r\nok'), text);
    } finally {
      await backend.close();
    }
    await assertNoLeak('a half-closed client');
  });
});
