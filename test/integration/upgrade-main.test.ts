// `kakehi ctl upgrade --main` against a real kakehi: a new main takes over the
// listening sockets, the state and the command socket while traffic flows, and
// a successor that fails leaves the old main serving.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Backend, echoBackend, gatedBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { startLoad } from '../helpers/load.js';

const run = promisify(execFile);

/**
 * Stands in for systemd's notify socket (Node has no Unix datagram socket):
 * prints each message on one line, then closes the descriptors a BARRIER=1
 * carries, which is how systemd tells systemd-notify it has read everything.
 */
const NOTIFY_RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('bound', flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    print(msg.decode().replace('\\n', ' '), flush=True)
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds:
                os.close(fd)
`;

/** Lines a process prints, and a wait for one that matches (bounded). */
function printedLines(proc: ChildProcess) {
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let rest = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    rest += chunk;
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  return {
    lines,
    wait(pred: (l: string) => boolean, what: string): Promise<string> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what}; got ${JSON.stringify(lines)}`)), 15_000);
        const check = () => {
          const found = lines.find(pred);
          if (found !== undefined) {
            clearTimeout(timer);
            resolve(found);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

function ctl(socket: string, ...args: string[]) {
  return run(process.execPath, [CLI, 'ctl', '-s', socket, ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once every process writing to kakehi's stderr (old main, successor, their workers) is gone. */
function allGone(k: Kakehi): Promise<void> {
  return new Promise((resolve) => {
    if (k.proc.stderr?.readableEnded) resolve();
    else k.proc.stderr?.once('end', () => resolve());
  });
}

/** A port free now (bound once, then let go), for a listener that must come back on the same address. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function config(backend: Backend, extraListener?: string) {
  return {
    workers: 2,
    listeners: [
      { address: '127.0.0.1:0' },
      ...(extraListener === undefined ? [] : [{ address: extraListener }]),
    ],
    clusters: [{ id: 'app', backends: [{ id: 'a', address: backend.address }] }],
    frontends: [{ hostname: 'load.test', cluster: 'app' }],
    access_log: 'off',
  };
}

describe('ctl upgrade --main', () => {
  let backend: Backend;
  before(async () => {
    backend = await echoBackend('a');
  });
  after(() => backend.close());

  it('hands the sockets and state to a new main under load: no failed request, same generation, old processes gone', async () => {
    const extra = `127.0.0.1:${await freePort()}`;
    const kakehi = await startKakehi(config(backend, extra));
    let successor = 0;
    try {
      // A runtime change, so the state and generation are more than the file's.
      await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'extra' } });
      const before = await ok(kakehi.socketPath, 'status');
      const stateBefore = await ok(kakehi.socketPath, 'get_state', { sources: true });
      const oldWorkers = (before['workers'] as { pid: number }[]).map((w) => w.pid);
      assert.equal(oldWorkers.length, 2);

      const keepAlive = startLoad(kakehi.port, { concurrency: 4, host: 'load.test' });
      let fresh = true;
      const freshFailures: string[] = [];
      let freshOk = 0;
      const freshLoop = (async () => {
        while (fresh) {
          await httpGet(kakehi.port, '/', { host: 'load.test' }).then(
            (r) => (r.status === 200 ? freshOk++ : freshFailures.push(`status ${r.status}`)),
            (err: Error) => freshFailures.push(err.message),
          );
        }
      })();

      const up = await ctl(kakehi.socketPath, 'upgrade', '--main', '--json');
      assert.equal(up.code, 0, up.stderr);
      const result = JSON.parse(up.stdout) as { pid: number; previous_pid: number; generation: number };
      successor = result.pid;
      assert.equal(result.previous_pid, before['pid']);
      assert.notEqual(successor, before['pid']);
      assert.equal(result.generation, before['generation']);

      // The old main drains its workers and exits 0 while the load goes on.
      assert.equal(await kakehi.exited, 0);
      for (let i = 0; i < 20; i++)
        assert.equal((await httpGet(kakehi.port, '/', { host: 'load.test' })).status, 200);
      fresh = false;
      await freshLoop;
      const res = await keepAlive.stop();
      assert.deepEqual(res.failed.slice(0, 5), []);
      assert.deepEqual(freshFailures.slice(0, 5), []);
      assert.ok(res.ok > 0 && freshOk > 0);

      const afterStatus = await ok(kakehi.socketPath, 'status');
      assert.equal(afterStatus['pid'], successor, 'the command socket answers from the new main');
      assert.equal(afterStatus['generation'], before['generation']);
      assert.deepEqual(await ok(kakehi.socketPath, 'get_state', { sources: true }), stateBefore);
      const newWorkers = (afterStatus['workers'] as { pid: number; state: string }[]).map((w) => w.pid);
      assert.equal(newWorkers.length, 2);
      assert.ok(!alive(before['pid'] as number), 'the old main is gone');
      for (const pid of oldWorkers) {
        assert.ok(!newWorkers.includes(pid));
        assert.ok(!alive(pid), `old worker ${pid} exited`);
      }
      // The new main is a main like any other: it applies changes. A listener it
      // inherited can go and come back on the same port (main let its copy go).
      await ok(kakehi.socketPath, 'remove_cluster', { cluster: 'extra' });
      assert.equal(
        (await ok(kakehi.socketPath, 'status'))['generation'],
        (before['generation'] as number) + 1,
      );
      await ok(kakehi.socketPath, 'remove_listener', { address: extra });
      await ok(kakehi.socketPath, 'add_http_listener', { listener: { address: extra } });
      const port = Number(extra.split(':')[1]);
      assert.equal((await httpGet(port, '/', { host: 'load.test' })).status, 200);
    } finally {
      const gone = allGone(kakehi);
      if (successor !== 0 && alive(successor)) process.kill(successor, 'SIGTERM');
      await kakehi.stop();
      await gone;
    }
  });

  it('lets a request in flight on an old worker finish, and ends command connections to the old main at once', async () => {
    const gated = await gatedBackend('g', { holds: (req) => req.url === '/slow' });
    const kakehi = await startKakehi(config(gated));
    let successor = 0;
    try {
      const slow = httpGet(kakehi.port, '/slow', { host: 'load.test' });
      await gated.holding;
      const conn = connect(kakehi.socketPath);
      await once(conn, 'connect');
      const ended = once(conn, 'close');
      const up = await ctl(kakehi.socketPath, 'upgrade', '--main', '--json');
      assert.equal(up.code, 0, up.stderr);
      successor = (JSON.parse(up.stdout) as { pid: number }).pid;
      // Ended while the old main still drains the held request: a client does not
      // wait on a main that takes no more changes.
      await Promise.race([
        ended,
        kakehi.exited.then(() => assert.fail('the old main exited before ending its command connections')),
      ]);
      assert.equal(kakehi.proc.exitCode, null);
      gated.release();
      const r = await slow;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'finished');
      assert.equal(await kakehi.exited, 0);
    } finally {
      gated.release();
      const gone = allGone(kakehi);
      if (successor !== 0 && alive(successor)) process.kill(successor, 'SIGTERM');
      await kakehi.stop();
      await gone;
      await gated.close();
    }
  });

  it('keeps the old main serving when the new main fails to start, and ctl reports KKH_UPGRADE_FAILED', async () => {
    const kakehi = await startKakehi(config(backend), { env: { KAKEHI_TEST_SUCCESSOR_EXIT: '7' } });
    try {
      const before = await ok(kakehi.socketPath, 'status');
      const up = await ctl(kakehi.socketPath, 'upgrade', '--main');
      assert.notEqual(up.code, 0);
      assert.match(up.stderr, /KKH_UPGRADE_FAILED/);
      assert.match(up.stderr, /exited \(7\)/);
      const afterStatus = await ok(kakehi.socketPath, 'status');
      assert.equal(afterStatus['pid'], before['pid']);
      assert.deepEqual(
        (afterStatus['workers'] as { pid: number }[]).map((w) => w.pid),
        (before['workers'] as { pid: number }[]).map((w) => w.pid),
      );
      for (let i = 0; i < 10; i++)
        assert.equal((await httpGet(kakehi.port, '/', { host: 'load.test' })).status, 200);
      // The sockets main held for the hand-over were let go: a listener can still move.
      await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'extra' } });
    } finally {
      await kakehi.stop();
    }
  });

  it('keeps the old main serving when the configuration file broke since it started: the new main exits 3 before taking over', async () => {
    const kakehi = await startKakehi(config(backend));
    try {
      const pid = (await ok(kakehi.socketPath, 'status'))['pid'];
      writeFileSync(kakehi.configPath, 'listeners: [{ address: 127.0.0.1:0, no_such_key: 1 }]\n');
      const up = await ctl(kakehi.socketPath, 'upgrade', '--main');
      assert.equal(up.code, 1, up.stderr);
      assert.match(up.stderr, /KKH_UPGRADE_FAILED.*exited \(3\)/);
      assert.equal((await ok(kakehi.socketPath, 'status'))['pid'], pid);
      assert.equal((await httpGet(kakehi.port, '/', { host: 'load.test' })).status, 200);
    } finally {
      await kakehi.stop();
    }
  });

  it('tells systemd through NOTIFY_SOCKET: READY=1 once serving, then the new main pid before the old main exits', async (t) => {
    if (spawnSync('sh', ['-c', 'command -v systemd-notify'], { stdio: 'ignore' }).status !== 0) {
      const install = spawnSync('bash', [join('scripts', 'debian-tools.sh'), 'systemd-notify'], {
        stdio: 'inherit',
        timeout: 240_000,
      });
      assert.equal(install.status, 0, 'could not install systemd-notify (scripts/debian-tools.sh)');
    }
    const sock = join(mkdtempSync(join(tmpdir(), 'kakehi-notify-')), 'notify.sock');
    const receiver = spawn('python3', ['-c', NOTIFY_RECEIVER, sock], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => receiver.kill());
    const got = printedLines(receiver);
    await got.wait((l) => l === 'bound', 'bound notify socket');
    const kakehi = await startKakehi(config(backend), { env: { NOTIFY_SOCKET: sock } });
    let successor = 0;
    try {
      await got.wait((l) => l === `READY=1 MAINPID=${kakehi.proc.pid}`, 'READY=1 from main');
      const up = await ctl(kakehi.socketPath, 'upgrade', '--main', '--json');
      assert.equal(up.code, 0, up.stderr);
      successor = (JSON.parse(up.stdout) as { pid: number }).pid;
      await got.wait((l) => l === `MAINPID=${successor}`, 'MAINPID of the new main');
      assert.equal(await kakehi.exited, 0);
      assert.equal((await ok(kakehi.socketPath, 'status'))['pid'], successor);
    } finally {
      const gone = allGone(kakehi);
      if (successor !== 0 && alive(successor)) process.kill(successor, 'SIGTERM');
      await kakehi.stop();
      await gone;
    }
  });
});
