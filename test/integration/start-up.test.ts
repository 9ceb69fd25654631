// `kakehi run` failing to start, and `kakehi validate` seeing it coming: each
// failure is one plain line naming the configuration key, exit 1 (3 for
// validate), no stack. Also where the command socket lands when nothing names
// it, and that ctl finds it there by the same rule.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI } from '../helpers/kakehi-process.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user (needs root): a read-only directory means nothing to root. */
  uid?: number;
  gid?: number;
  /** Resolve once stderr has this, leaving the process running (killed by the caller). */
  until?: string;
}

function cli(args: string[], opts: RunOptions = {}): Promise<CliResult & { kill(): void }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid ?? opts.uid }),
    });
    let stdout = '';
    let stderr = '';
    const kill = () => proc.kill('SIGKILL');
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    proc.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (opts.until !== undefined && stderr.includes(opts.until))
        resolve({ code: null, stdout, stderr, kill });
    });
    // A bound, not the thing asserted: a command that never exits fails the test.
    const timer = setTimeout(kill, 20_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, kill });
    });
  });
}

/** The lines on stderr that are not JSON log lines: what an operator reads. */
function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
}

/**
 * Exit 1, one fatal JSON line naming `key` and the fix (with its code), nothing
 * on stderr that is not JSON (stderr is a pipe here, as under a supervisor: the
 * plain sentence is for a terminal only), and no stack frame anywhere.
 */
function assertOneLineStartFailure(r: CliResult, key: string): string {
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(plainLines(r.stderr), [], 'nothing but JSON on a stderr that is not a terminal');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  const fatal = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; key?: string; code?: string; msg: string })
    .filter((l) => l.level === 'fatal');
  assert.equal(fatal.length, 1, `one fatal line, got:\n${r.stderr}`);
  assert.equal(typeof fatal[0]!.code, 'string');
  assert.equal(fatal[0]!.key, key);
  assert.doesNotMatch(fatal[0]!.msg, /\n/, 'one line');
  assert.match(fatal[0]!.msg, new RegExp(`^cannot start: ${key.replace(/[[\]]/g, '\\$&')}: `));
  return `kakehi: ${fatal[0]!.msg}`;
}

const root = mkdtempSync(join(tmpdir(), 'kakehi-start-'));
// Readable by the unprivileged user some tests run as.
chmodSync(root, 0o755);
after(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
function config(text: string): string {
  const p = join(root, `config-${++count}.yaml`);
  writeFileSync(p, text, { mode: 0o644 });
  return p;
}
const LISTEN = 'listeners:\n  - address: 127.0.0.1:0\n';
const isRoot = process.getuid?.() === 0;
const NOBODY = 65_534;

describe('kakehi run: a start-up failure is one line naming the key', () => {
  test('a command socket in a read-only directory: exit 1 naming command_socket', async () => {
    const ro = join(root, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    const file = config(`workers: 1\ncommand_socket: ${join(ro, 'k.sock')}\naccess_log: 'off'\n${LISTEN}`);
    const as = isRoot ? { uid: NOBODY, gid: NOBODY } : {};
    const line = assertOneLineStartFailure(await cli(['run', '-c', file], as), 'command_socket');
    assert.match(line, /not writable/);
    const v = await cli(['validate', '-c', file], as);
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stderr, /^command_socket: the directory .*read-only is not writable/m);
  });

  test('a command socket in a missing directory: exit 1 naming command_socket, before any worker starts', async () => {
    const file = config(`workers: 1\ncommand_socket: ${join(root, 'missing', 'k.sock')}\n${LISTEN}`);
    const r = await cli(['run', '-c', file]);
    assertOneLineStartFailure(r, 'command_socket');
    assert.doesNotMatch(r.stderr, /worker ready/);
  });

  test('a listener whose port is taken: exit 1 naming listeners[1].address', async (t) => {
    const held = createServer();
    await new Promise<void>((res) => held.listen(0, '127.0.0.1', res));
    t.after(() => held.close());
    const port = (held.address() as { port: number }).port;
    const file = config(
      `workers: 1\ncommand_socket: ${join(root, 'taken.sock')}\nlisteners:\n  - address: 127.0.0.1:0\n  - address: 127.0.0.1:${port}\n`,
    );
    const line = assertOneLineStartFailure(await cli(['run', '-c', file]), 'listeners[1].address');
    assert.match(line, /EADDRINUSE/);
    assert.ok(!existsSync(join(root, 'taken.sock')), 'no command socket left behind');
  });

  test('a command socket held by a live kakehi: exit 1 naming command_socket, the live one keeps it', async (t) => {
    const sock = join(root, 'live.sock');
    const file = config(`workers: 1\naccess_log: 'off'\ncommand_socket: ${sock}\n${LISTEN}`);
    const first = await cli(['run', '-c', file], { until: '"kakehi ready"' });
    t.after(() => first.kill());
    const second = await cli(['run', '-c', file]);
    const line = assertOneLineStartFailure(second, 'command_socket');
    assert.match(line, /another kakehi is running/);
    assert.match(second.stderr, /"code":"KKH_SOCKET_IN_USE"/);
    const status = await cli(['ctl', '-s', sock, 'status']);
    assert.equal(status.code, 0, 'the first kakehi still answers on its socket');
  });

  test('an access_log in a missing directory: exit 1 naming access_log, and the directory is not created', async () => {
    const missing = join(root, 'no-logs');
    const file = config(
      `workers: 1\ncommand_socket: ${join(root, 'al.sock')}\naccess_log: ${join(missing, 'access.log')}\n${LISTEN}`,
    );
    const line = assertOneLineStartFailure(await cli(['run', '-c', file]), 'access_log');
    assert.match(line, /does not exist/);
    assert.ok(!existsSync(missing), 'kakehi creates no directory');
  });

  test('an unknown command_socket_group is refused by validate (exit 3) and run (exit 1)', async () => {
    const file = config(
      `workers: 1\ncommand_socket: ${join(root, 'grp.sock')}\ncommand_socket_group: no-such-group-kkh\n${LISTEN}`,
    );
    const v = await cli(['validate', '-c', file]);
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stderr, /^command_socket_group: no group named "no-such-group-kkh"/m);
    assertOneLineStartFailure(await cli(['run', '-c', file]), 'command_socket_group');
  });
});

describe('kakehi validate: what run would fail on', () => {
  test('names an access_log and a state_file whose directories do not exist, and creates neither', async () => {
    const file = config(
      `access_log: ${join(root, 'gone-a', 'access.log')}\nstate_file: ${join(root, 'gone-s', 'state.json')}\ncommand_socket: ${join(root, 'gone-c', 'k.sock')}\n${LISTEN}`,
    );
    const r = await cli(['validate', '-c', file]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^access_log: the directory .*gone-a does not exist/m);
    assert.match(r.stderr, /^state_file: the directory .*gone-s does not exist/m);
    assert.match(r.stderr, /^command_socket: the directory .*gone-c does not exist/m);
    assert.equal(r.stdout, '');
    for (const d of ['gone-a', 'gone-s', 'gone-c']) assert.ok(!existsSync(join(root, d)), `${d} not created`);
    // A file meant for another machine is checked on its own with --no-paths.
    const fileOnly = await cli(['validate', '--no-paths', '-c', file]);
    assert.equal(fileOnly.code, 0, fileOnly.stderr);
    assert.match(fileOnly.stdout, /is valid/);
  });

  test('names a state_file that is a directory', async () => {
    mkdirSync(join(root, 'state-dir'));
    const file = config(
      `state_file: ${join(root, 'state-dir')}\ncommand_socket: ${join(root, 's.sock')}\n${LISTEN}`,
    );
    const r = await cli(['validate', '-c', file]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^state_file: .*state-dir is a directory/m);
  });
});

describe('command socket: default place and group', () => {
  test('with no command_socket, run listens at $RUNTIME_DIRECTORY/kakehi.sock and ctl finds it there', async (t) => {
    const runtime = join(root, 'runtime');
    mkdirSync(runtime);
    const file = config(`workers: 1\naccess_log: 'off'\n${LISTEN}`);
    // cwd elsewhere: the socket must not land in the working directory.
    const cwd = join(root, 'cwd');
    mkdirSync(cwd);
    const env = { RUNTIME_DIRECTORY: runtime, KAKEHI_SOCKET: '' };
    const proxy = await cli(['run', '-c', file], { env, cwd, until: '"kakehi ready"' });
    t.after(() => proxy.kill());
    assert.match(proxy.stderr, new RegExp(`"command_socket":"${join(runtime, 'kakehi.sock')}"`));
    assert.ok(statSync(join(runtime, 'kakehi.sock')).isSocket());
    assert.ok(!existsSync(join(cwd, 'kakehi.sock')));
    const status = await cli(['ctl', 'status', '--json'], { env, cwd });
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { workers: unknown[] }).workers.length, 1);
  });

  test('command_socket_group gives the socket that group', async (t) => {
    // As root, a group other than its own shows the chown happened; otherwise our primary group.
    const gid = isRoot ? NOBODY : process.getgid!();
    const sock = join(root, 'grouped.sock');
    const file = config(
      `workers: 1\naccess_log: 'off'\ncommand_socket: ${sock}\ncommand_socket_mode: '0660'\ncommand_socket_group: '${gid}'\n${LISTEN}`,
    );
    const v = await cli(['validate', '-q', '-c', file]);
    assert.equal(v.code, 0, v.stderr);
    const proxy = await cli(['run', '-c', file], { until: '"kakehi ready"' });
    t.after(() => proxy.kill());
    const st = statSync(sock);
    assert.equal(st.gid, gid);
    assert.equal(st.mode & 0o777, 0o660);
  });
});
