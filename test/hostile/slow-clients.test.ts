// Slow clients against a real kakehi, with Debian's slowhttptest: slow headers
// (Slowloris), slow bodies (R-U-Dead-Yet) and slow reads, each a few thousand
// connections (fewer when the open-file limit is low) for at most 30 s. During
// each attack a probe sends normal requests one after another: every one must
// be answered, and the RSS of main plus worker (from /proc) stays under a
// stated bound. Correctness bounds, not performance thresholds: "answered
// before the attack ends" and "memory does not grow with the attack".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

const SLOWHTTPTEST = '/usr/bin/slowhttptest';
const ATTACK_SECONDS = 20;
/** Main plus worker, whatever the attack: far above their idle ~100 MiB, far below what unbounded buffering of thousands of connections would take. */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;
const BIG_BODY = Buffer.alloc(256 * 1024, 'x');
// A slow body holds a backend connection from its head on (the body streams), and
// so does a slow reader of a response larger than the buffers (backpressure keeps
// the backend's answer waiting); a backend takes at most its max_connections
// (default 1024): above that every request for it waits in its queue, then gets
// 503, until the attack ends. These two attacks stay under it, so what is tested is kakehi
// serving beside them (docs/hostile-testing.md says what happens above).
const BACKEND_HOLDING_ATTACK = 900;

let kakehi: Kakehi;
let backend: Backend;
let connections: number;

function openFileLimit(pid: number | 'self'): number {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = Number(line?.split(/\s+/)[3]);
  return Number.isFinite(soft) ? soft : 1024;
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

before(async () => {
  backend = await echoBackend('slow', (req, res) => {
    if (req.url !== '/big') return undefined;
    res.writeHead(200, { 'content-length': BIG_BODY.length });
    res.end(BIG_BODY);
    return true;
  });
  kakehi = await startKakehi({
    listeners: [{ address: '127.0.0.1:0', request_head_timeout_ms: 5_000, front_timeout_ms: 5_000 }],
    clusters: [{ id: 'slow', backends: [{ id: 'slow-1', address: backend.address }] }],
    frontends: [{ hostname: '*', cluster: 'slow' }],
  });
  // A slow body holds a client and a backend descriptor in the worker, slowhttptest
  // one of its own: stay well inside the lower of the two limits.
  const limit = Math.min(openFileLimit('self'), openFileLimit(kakehi.workerPids()[0]!));
  connections = Math.max(100, Math.min(3000, Math.floor((limit - 256) / 3)));
  console.log(`slow clients: ${connections} connections (open-file limit ${limit})`);
});

after(async () => {
  await kakehi?.stop();
  await backend?.close();
});

interface Watch {
  probes: number;
  failures: string[];
  maxRss: number;
}

/** Runs slowhttptest with `mode` args; meanwhile probes kakehi with normal requests and samples RSS. */
async function underAttack(mode: string[], url: string, count = connections): Promise<Watch> {
  const args = [
    ...mode,
    '-c',
    String(count),
    '-r',
    String(Math.ceil(count / 5)),
    '-l',
    String(ATTACK_SECONDS),
    '-u',
    url,
    '-p',
    '5',
  ];
  const attack = spawn(SLOWHTTPTEST, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  attack.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    if (output.length > 20_000) output = output.slice(-10_000);
  });
  attack.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const ended = new Promise<number | null>((res) => attack.on('exit', (code) => res(code)));
  let done = false;
  void ended.then(() => {
    done = true;
  });
  const watch: Watch = { probes: 0, failures: [], maxRss: 0 };
  const pids = [kakehi.proc.pid!, ...kakehi.workerPids()];
  while (!done) {
    watch.maxRss = Math.max(
      watch.maxRss,
      pids.reduce((sum, p) => sum + rssBytes(p), 0),
    );
    // Each probe on a fresh connection, answered within twice the attack's length:
    // what is asserted is that no normal request is lost or left hanging, not how
    // fast it is served. (A bound of one attack length failed twice in about eight
    // full runs of the slow-read attack with one probe waiting past the attack's
    // end: most likely a backend connection pooled while paused, since fixed; see
    // docs/hostile-testing.md.)
    const r = await rawExchange(
      kakehi.port,
      `GET /probe-${watch.probes} HTTP/1.1\r\nHost: probe.test\r\nConnection: close\r\n\r\n`,
      { timeoutMs: 2 * ATTACK_SECONDS * 1000 },
    ).catch((err: Error) => ({ text: `error: ${err.message}`, closed: false }));
    watch.probes++;
    if (statusCodes(r.text)[0] !== 200) watch.failures.push(r.text.slice(0, 200) || '(nothing)');
    // Sampling, not waiting for an event: a quarter second between probes keeps the probe light.
    await new Promise((res) => setTimeout(res, 250));
  }
  const code = await ended;
  assert.equal(code, 0, `slowhttptest exited ${code}:\n${output.slice(-3000)}`);
  console.log(
    `slow clients ${mode.join(' ')}: ${watch.probes} probes, ${watch.failures.length} failed, max RSS ${Math.round(watch.maxRss / 1048576)} MiB`,
  );
  return watch;
}

function assertServed(w: Watch): void {
  assert.ok(w.probes >= 2, `only ${w.probes} probes ran during the attack`);
  assert.deepEqual(w.failures, [], 'every normal request during the attack was answered 200');
  assert.ok(
    w.maxRss < RSS_BOUND_BYTES,
    `RSS of main + worker reached ${w.maxRss} bytes, over the bound of ${RSS_BOUND_BYTES}`,
  );
}

describe('slow clients (slowhttptest)', () => {
  test('slow headers: normal requests are answered throughout, memory stays bounded', async () => {
    assertServed(await underAttack(['-H', '-i', '3', '-x', '24'], `http://127.0.0.1:${kakehi.port}/`));
  });

  test('slow bodies: normal requests are answered throughout, memory stays bounded', async () => {
    assertServed(
      await underAttack(
        ['-B', '-i', '3', '-x', '24', '-s', '100000'],
        `http://127.0.0.1:${kakehi.port}/upload`,
        Math.min(connections, BACKEND_HOLDING_ATTACK),
      ),
    );
  });

  test('slow reads of a 256 KiB body: normal requests are answered throughout, memory stays bounded', async () => {
    assertServed(
      await underAttack(
        ['-X', '-w', '512', '-y', '1024', '-n', '5', '-z', '32', '-k', '3'],
        `http://127.0.0.1:${kakehi.port}/big`,
        Math.min(connections, BACKEND_HOLDING_ATTACK),
      ),
    );
  });
});
