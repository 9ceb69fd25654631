// `kakehi ctl` as a real child process (the compiled ctl module) against a fake
// command server on a temp Unix socket: what it sends, its tables and --json,
// its help, and exit codes 0 ok, 1 refused, 2 usage, 4 unreachable.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { FakeCommandServer, type FakeHandler } from '../helpers/fake-command-server.js';

const CTL = resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'ctl.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let server: FakeCommandServer;
let entry: string;
// Each test sets what the fake proxy answers.
let answer: FakeHandler = (_req, r) => r.ok({});

before(async () => {
  server = await FakeCommandServer.start((req, r) => answer(req, r));
  // main.ts wires `kakehi ctl` separately; this runs the ctl module the same way.
  entry = join(server.dir, 'ctl-entry.mjs');
  writeFileSync(
    entry,
    `import { runCtl } from ${JSON.stringify(pathToFileURL(CTL).href)};\n` +
      'process.exitCode = await runCtl(process.argv.slice(2));\n',
  );
});
after(() => server.close());

function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [entry, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KAKEHI_SOCKET: '', ...env },
  });
}

function finish(proc: ChildProcess): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    let stdout = '';
    let stderr = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    // A bound, not the thing asserted: a ctl that never exits fails the test.
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

const ctl = (...args: string[]) => finish(start(['-s', server.path, ...args]));
const lastRequest = () => server.requests.at(-1)!;

const live = { active: 1, drain: 0, maintenance: 0, down: 0, in_flight: 0, connections: 0 };
const CLUSTERS = {
  generation: 4,
  workers: 2,
  backends: [],
  clusters: [
    { id: 'api', load_balancing: 'round_robin', source: 'config', backends: 2, ...live, drain: 1 },
    { id: 'static-files', load_balancing: 'power_of_two', source: 'runtime', backends: 1, ...live },
  ],
};

describe('kakehi ctl queries', () => {
  it('prints clusters as an aligned table and exits 0', async () => {
    answer = (_req, r) => r.ok(CLUSTERS);
    const run = await ctl('clusters');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'query_backends');
    assert.equal(
      run.stdout,
      'ID            LOAD_BALANCING  STICKY  HEALTH_CHECK  BACKEND_TLS  BACKENDS  ACTIVE  DRAIN  MAINTENANCE  DOWN  IN_FLIGHT  CONNECTIONS  SOURCE\n' +
        'api           round_robin     -       -             -            2         1       1      0            0     0          0            config\n' +
        'static-files  power_of_two    -       -             -            1         1       0      0            0     0          0            runtime\n' +
        'live numbers from 2 worker(s) at generation 4\n',
    );
  });

  it('prints the raw result with --json, for scripts', async () => {
    answer = (_req, r) => r.ok(CLUSTERS);
    const run = await ctl('clusters', '--json');
    assert.equal(run.code, 0);
    assert.deepEqual(JSON.parse(run.stdout), CLUSTERS);
  });

  it('sends backends --cluster as query_backends {cluster}', async () => {
    answer = (_req, r) =>
      r.ok({
        generation: 3,
        workers: 1,
        clusters: [],
        backends: [{ cluster: 'api', id: 'b1', address: '10.0.0.1:80', state: 'drain', in_flight: 2 }],
      });
    const run = await ctl('backends', '--cluster', 'api');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'query_backends');
    assert.deepEqual(lastRequest().body, { cluster: 'api' });
    assert.match(
      run.stdout,
      /^CLUSTER {2}ID {2}ADDRESS {6}STATE {2}IN_FLIGHT {2}SINCE\napi {6}b1 {2}10\.0\.0\.1:80 {2}drain {2}2 {10}-\nlive numbers from 1 worker\(s\) at generation 3\n$/,
    );
  });

  it('prints status as key: value lines and workers as a table', async () => {
    answer = (_req, r) =>
      r.ok({
        version: '0.1.0',
        generation: 12,
        uptime_s: 30,
        workers: [{ id: 1, pid: 100, state: 'ready', generation: 12 }],
      });
    const run = await ctl('status');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      'version:    0.1.0\ngeneration: 12\nuptime_s:   30\n\nworkers:\n' +
        'ID  PID  STATE  GENERATION\n1   100  ready  12\n',
    );
  });

  it('sends route HOST PATH --method as query_route and says when nothing matches', async () => {
    answer = (req, r) => r.ok({ ...req.body, matches: [] });
    const run = await ctl('route', 'example.com', '/x', '--method', 'POST');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(lastRequest().body, { host: 'example.com', path: '/x', method: 'POST' });
    assert.match(run.stdout, /no frontend matches example\.com\/x/);
  });

  it('prints the state as the generation and one row per change', async () => {
    answer = (_req, r) =>
      r.ok({
        generation: 4,
        changes: [
          { op: 'put_cluster', cluster: { id: 'api' } },
          { op: 'put_backend', backend: { cluster: 'api', id: 'b1', address: '10.0.0.1:80' } },
        ],
      });
    const run = await ctl('state');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'get_state');
    assert.equal(
      run.stdout,
      'generation 4\nOP           OBJECT\nput_cluster  {"id":"api"}\n' +
        'put_backend  {"cluster":"api","id":"b1","address":"10.0.0.1:80"}\n',
    );
  });

  it('prints frontends with their key fields first and - for absent ones', async () => {
    answer = (_req, r) =>
      r.ok({
        frontends: [
          { hostname: 'www.example.com', path_type: 'prefix', path: '/', cluster: 'web', source: 'config' },
          { listener: '0.0.0.0:80', hostname: '*', path_type: 'exact', path: '/admin', deny: true },
        ],
      });
    const run = await ctl('frontends');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      'LISTENER    HOSTNAME         PATH_TYPE  PATH    CLUSTER  DENY  SOURCE\n' +
        '-           www.example.com  prefix     /       web      -     config\n' +
        '0.0.0.0:80  *                exact      /admin  -        true  -\n',
    );
  });

  it('prints processing frames on stderr, keeping stdout for the result', async () => {
    answer = (_req, r) => {
      r.processing('replacing worker 1 of 2');
      r.ok({ upgraded: 2 });
    };
    const run = await ctl('upgrade');
    assert.equal(run.code, 0);
    assert.match(run.stderr, /replacing worker 1 of 2/);
    assert.equal(run.stdout, 'upgraded: 2\n');
  });

  it('uses $KAKEHI_SOCKET when -s is not given', async () => {
    answer = (_req, r) => r.ok({ workers: [] });
    const run = await finish(start(['workers'], { KAKEHI_SOCKET: server.path }));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'list_workers');
    assert.equal(run.stdout, '(none)\n');
  });
});

describe('kakehi ctl changes', () => {
  it('sends backend add with typed fields and prints the generation and what was applied', async () => {
    answer = (_req, r) =>
      r.ok({ generation: 7, live_ms: 3, applied: [{ op: 'put_backend', key: 'api/b2', effect: 'created' }] });
    const run = await ctl(
      'backend',
      'add',
      '--cluster',
      'api',
      '--id',
      'b2',
      '--address',
      '10.0.0.2:8080',
      '--weight',
      '5',
      '--backup',
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'add_backend');
    assert.deepEqual(lastRequest().body, {
      backend: { cluster: 'api', id: 'b2', address: '10.0.0.2:8080', weight: 5, backup: true },
    });
    assert.equal(
      run.stdout,
      'generation 7, live in every worker after 3 ms\nOP           KEY     EFFECT\nput_backend  api/b2  created\n',
    );
  });

  it('applies a YAML file as one transaction with --dry-run and --expect-generation', async () => {
    const file = join(server.dir, 'changes.yaml');
    writeFileSync(
      file,
      'changes:\n  - op: put_cluster\n    cluster: {id: web}\n  - op: delete_cluster\n    id: old\n',
    );
    answer = (_req, r) =>
      r.ok({
        dry_run: true,
        generation: 3,
        diff: [
          { op: 'put_cluster', key: 'web', effect: 'created' },
          { op: 'delete_cluster', key: 'old', effect: 'deleted' },
        ],
      });
    const run = await ctl('apply', file, '--dry-run', '--expect-generation', '3');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'transaction');
    assert.deepEqual(lastRequest().body, {
      changes: [
        { op: 'put_cluster', cluster: { id: 'web' } },
        { op: 'delete_cluster', id: 'old' },
      ],
      dry_run: true,
      expect_generation: 3,
    });
    assert.match(run.stdout, /^dry run at generation 3: 2 change\(s\) would apply, nothing changed\n/);
    assert.match(run.stdout, /delete_cluster {2}old {2}deleted/);
  });

  it('applies a JSON file too', async () => {
    const file = join(server.dir, 'changes.json');
    writeFileSync(file, JSON.stringify({ changes: [{ op: 'delete_backend', cluster: 'a', id: 'b' }] }));
    answer = (_req, r) => r.ok({ generation: 9, live_ms: 1, applied: [] });
    const run = await ctl('apply', file);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(lastRequest().body, { changes: [{ op: 'delete_backend', cluster: 'a', id: 'b' }] });
  });

  it('exits 1 on a rejected transaction, naming the code and every issue path', async () => {
    const file = join(server.dir, 'bad.yaml');
    writeFileSync(
      file,
      'changes:\n  - op: put_backend\n    backend: {cluster: api, id: b, address: nowhere}\n',
    );
    answer = (_req, r) =>
      r.error('KKH_CHANGE_INVALID', 'the transaction has 2 invalid changes; nothing was applied', [
        { path: 'changes[0].backend.address', reason: '"nowhere": expected host:port' },
        { path: 'changes[0].backend.cluster', reason: 'no cluster "api"' },
      ]);
    const run = await ctl('apply', file);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr,
      'kakehi ctl: transaction refused [KKH_CHANGE_INVALID]: the transaction has 2 invalid changes; nothing was applied\n' +
        '  changes[0].backend.address: "nowhere": expected host:port\n' +
        '  changes[0].backend.cluster: no cluster "api"\n',
    );
  });

  it('sends frontend add with --deny and remove by its key fields', async () => {
    answer = (_req, r) => r.ok({ generation: 1, live_ms: 1, applied: [] });
    let run = await ctl('frontend', 'add', '--hostname', '*.example.com', '--path', '/admin', '--deny');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(lastRequest(), {
      id: lastRequest().id,
      type: 'add_http_frontend',
      body: { frontend: { hostname: '*.example.com', path: '/admin', deny: true } },
    });
    run = await ctl('frontend', 'remove', '--hostname', 'a.example', '--path-type', 'exact', '--path', '/x');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(lastRequest().type, 'remove_http_frontend');
    assert.deepEqual(lastRequest().body, {
      frontend: { hostname: 'a.example', path: '/x', path_type: 'exact' },
    });
  });

  it('sends cluster, listener and backend removals with their positional keys', async () => {
    answer = (_req, r) => r.ok({ generation: 2, live_ms: 1, applied: [] });
    const cases: [string[], string, Record<string, unknown>][] = [
      [['cluster', 'remove', 'api'], 'remove_cluster', { cluster: 'api' }],
      [['backend', 'remove', 'api', 'b1'], 'remove_backend', { cluster: 'api', backend: 'b1' }],
      [['listener', 'remove', '0.0.0.0:80'], 'remove_listener', { address: '0.0.0.0:80' }],
      [
        ['listener', 'add', '--address', '[::]:8080'],
        'add_http_listener',
        { listener: { address: '[::]:8080' } },
      ],
      [
        ['cluster', 'add', '--id', 'web', '--load-balancing', 'random'],
        'add_cluster',
        { cluster: { id: 'web', load_balancing: 'random' } },
      ],
      [
        [
          'cluster',
          'add',
          '--id',
          'web',
          '--load-balancing',
          'hash_maglev',
          '--hash-key',
          'path',
          '--sticky-session',
        ],
        'add_cluster',
        { cluster: { id: 'web', load_balancing: 'hash_maglev', hash_key: 'path', sticky_session: true } },
      ],
      [
        ['backend', 'add', '--cluster', 'web', '--id', 'b', '--address', 'h:1', '--sticky-id', 'blue'],
        'add_backend',
        { backend: { cluster: 'web', id: 'b', address: 'h:1', sticky_id: 'blue' } },
      ],
    ];
    for (const [args, type, body] of cases) {
      const run = await ctl(...args);
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(lastRequest().type, type);
      assert.deepEqual(lastRequest().body, body);
    }
  });

  it('takes every remove operand as a flag too, and --protocol on listener add', async () => {
    answer = (_req, r) => r.ok({ generation: 2, live_ms: 1, applied: [] });
    const cases: [string[], string, Record<string, unknown>][] = [
      [
        ['backend', 'remove', '--cluster', 'api', '--id', 'b1'],
        'remove_backend',
        { cluster: 'api', backend: 'b1' },
      ],
      [['cluster', 'remove', '--id', 'api'], 'remove_cluster', { cluster: 'api' }],
      [['listener', 'remove', '--address', '0.0.0.0:80'], 'remove_listener', { address: '0.0.0.0:80' }],
      [
        ['certificate', 'remove', '--listener', '0.0.0.0:443', '--fingerprint', 'ab12'],
        'remove_certificate',
        { listener: '0.0.0.0:443', fingerprint: 'ab12' },
      ],
      [
        ['listener', 'add', '--address', '0.0.0.0:443', '--protocol', 'https'],
        'add_http_listener',
        { listener: { address: '0.0.0.0:443', protocol: 'https' } },
      ],
      [
        ['listener', 'add', '--address', '0.0.0.0:443', '--https'],
        'add_http_listener',
        { listener: { address: '0.0.0.0:443', protocol: 'https' } },
      ],
    ];
    for (const [args, type, body] of cases) {
      const run = await ctl(...args);
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(lastRequest().type, type);
      assert.deepEqual(lastRequest().body, body);
    }
    const sent = server.requests.length;
    const mixed = await ctl('backend', 'remove', 'api', '--id', 'b1');
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /give CLUSTER ID as operands or as flags, not both/);
    const half = await ctl('backend', 'remove', '--cluster', 'api');
    assert.equal(half.code, 2);
    assert.match(half.stderr, /missing --id/);
    const contradiction = await ctl('listener', 'add', '--address', 'a:1', '--protocol', 'http', '--https');
    assert.equal(contradiction.code, 2);
    assert.match(contradiction.stderr, /--https contradicts --protocol http/);
    assert.equal(server.requests.length, sent, 'nothing sent on a usage error');
    const help = await ctl('backend', 'remove', '--help');
    assert.match(help.stdout, /kakehi ctl backend remove --cluster CLUSTER --id ID/);
  });

  it('sends save-state and reload paths absolute, since the proxy runs elsewhere', async () => {
    answer = (req, r) => r.ok({ path: req.body.path, generation: 4, objects: 10 });
    const run = await finish(
      spawn(process.execPath, [entry, '-s', server.path, 'save-state', 'saved.json'], {
        cwd: server.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(lastRequest().body, { path: join(server.dir, 'saved.json') });
    assert.equal(run.stdout, `saved 10 objects at generation 4 to ${join(server.dir, 'saved.json')}\n`);
    answer = (_req, r) => r.ok({ generation: 5, live_ms: 2, applied: [] });
    const reload = await ctl('reload', '--config', '/etc/kakehi.yaml');
    assert.equal(reload.code, 0);
    assert.deepEqual(lastRequest().body, { path: '/etc/kakehi.yaml' });
    assert.equal(reload.stdout, 'generation 5, live in every worker after 2 ms\n');
  });
});

describe('kakehi ctl usage and reachability', () => {
  it('exits 2 naming the problem on usage errors, sending nothing', async () => {
    const before = server.requests.length;
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['bogus'], /unknown command 'bogus'/],
      [['clusters', '--bogus'], /unknown option --bogus/],
      [['backend', 'remove', 'api'], /missing ID/],
      [['cluster', 'remove', 'a', 'b'], /unexpected argument 'b'/],
      [
        ['backend', 'add', '--cluster', 'a', '--id', 'b', '--address', 'h:1', '--weight', 'x'],
        /--weight: "x"/,
      ],
      [['backend', 'add', '--cluster', 'a', '--id', 'b'], /--address is required/],
      [
        ['frontend', 'add', '--hostname', 'h', '--cluster', 'c', '--deny'],
        /exactly one of --cluster C or --deny/,
      ],
      [['cluster', 'rename'], /'cluster' needs add or remove, not 'rename'/],
      [['apply', '/nonexistent/changes.yaml'], /cannot read \/nonexistent\/changes\.yaml/],
      [['clusters', '--timeout', '0'], /--timeout: must be at least 1 ms/],
    ];
    for (const [args, message] of cases) {
      const run = await ctl(...args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.match(run.stderr, /Usage: kakehi ctl/);
    }
    assert.equal(server.requests.length, before);
  });

  it('prints help with -h/--help on every subcommand and exits 0', async () => {
    const top = await ctl('--help');
    assert.equal(top.code, 0);
    for (const c of ['status', 'backend add', 'frontend remove', 'apply FILE', 'save-state PATH', 'events']) {
      assert.ok(top.stdout.includes(`  ${c}`), c);
    }
    assert.match(top.stdout, /4 the proxy is unreachable/);
    const add = await ctl('backend', 'add', '-h');
    assert.equal(add.code, 0);
    assert.match(add.stdout, /Usage: kakehi ctl backend add .*\[--weight N\]/);
    assert.match(add.stdout, /--dry-run/);
    assert.match(add.stdout, /-s, --socket PATH/);
    const group = await ctl('cluster', '--help');
    assert.equal(group.code, 0);
    assert.match(group.stdout, /kakehi ctl cluster add/);
    assert.match(group.stdout, /kakehi ctl cluster remove ID/);
  });

  it('exits 4 with a hint when there is no socket', async () => {
    const path = join(server.dir, 'absent.sock');
    const run = await finish(start(['-s', path, 'status']));
    assert.equal(run.code, 4);
    assert.match(run.stderr, new RegExp(`no command socket at ${path}.*set -s PATH or KAKEHI_SOCKET`));
  });

  it('exits 4 when the proxy does not answer within --timeout', async () => {
    answer = () => {};
    const run = await ctl('status', '--timeout', '300');
    assert.equal(run.code, 4);
    assert.match(run.stderr, /no answer from the proxy in 300 ms/);
  });

  it('reads --timeout as a duration and lets progress frames extend it', async () => {
    // Three progress frames 600 ms apart, then the answer: 1.8 s in all, past the
    // 1s deadline, yet never 1s of silence. Without the re-arm it fails at 1 s.
    answer = (_req, r) => {
      let n = 0;
      const step = () => {
        n += 1;
        if (n <= 3) {
          r.processing(`step ${n}`);
          setTimeout(step, 600);
        } else r.ok({ done: true });
      };
      step();
    };
    const run = await ctl('status', '--timeout', '1s');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /step 3/);
    assert.match(run.stdout, /done: +true/);
    for (const bad of ['5x', '-1s', '0s']) {
      const r = await ctl('status', '--timeout', bad);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--timeout: /, bad);
    }
    const help = await ctl('--help');
    assert.match(help.stdout, /default 10s/);
  });

  it('prints failures as a JSON error object on stdout with --json, same exit codes', async () => {
    answer = (_req, r) =>
      r.error('KKH_CHANGE_INVALID', 'no cluster "nope"', [{ path: 'backend.cluster', reason: 'unknown' }]);
    const refused = await ctl(
      'backend',
      'add',
      '--cluster',
      'nope',
      '--id',
      'b',
      '--address',
      'h:1',
      '--json',
    );
    assert.equal(refused.code, 1);
    const e = JSON.parse(refused.stdout) as { error: Record<string, unknown> };
    assert.equal(e.error.kind, 'refused');
    assert.equal(e.error.code, 'KKH_CHANGE_INVALID');
    assert.equal(e.error.request, 'add_backend');
    assert.deepEqual(e.error.issues, [{ path: 'backend.cluster', reason: 'unknown' }]);
    assert.match(refused.stderr, /refused \[KKH_CHANGE_INVALID\]/, 'humans still get the message');

    const absent = await finish(start(['-s', join(server.dir, 'absent.sock'), 'status', '--json']));
    assert.equal(absent.code, 4);
    assert.equal((JSON.parse(absent.stdout) as { error: { kind: string } }).error.kind, 'unreachable');

    const usage = await ctl('clusters', '--bogus', '--json');
    assert.equal(usage.code, 2);
    const u = JSON.parse(usage.stdout) as { error: { kind: string; message: string } };
    assert.equal(u.error.kind, 'usage');
    assert.match(u.error.message, /unknown option --bogus/);
  });

  it('exits 4 when the proxy closes the connection mid-request', async () => {
    answer = (_req, r) => r.dropConnections();
    const run = await ctl('reload');
    assert.equal(run.code, 4);
    assert.match(run.stderr, /reload \(id 1\): the proxy closed the connection before answering/);
  });
});

describe('kakehi ctl events', () => {
  it('prints each event as a line until the proxy closes, then exits 4', async () => {
    answer = (req, r) => {
      if (req.type !== 'subscribe_events') return r.ok({});
      r.event({ type: 'change_applied', generation: 8 });
      r.event({ type: 'backend_down', cluster: 'api', backend: 'b1' });
      setTimeout(() => r.dropConnections(), 50);
    };
    const run = await ctl('events');
    assert.equal(run.code, 4);
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z change_applied generation=8$/);
    assert.match(lines[1]!, /backend_down cluster=api backend=b1$/);
    assert.match(run.stderr, /events stopped: the proxy closed the connection/);
  });

  it('prints JSON lines with --json and exits 0 on Ctrl-C', async () => {
    answer = (req, r) => {
      if (req.type === 'subscribe_events') r.event({ type: 'worker_restarted', worker: 2 });
    };
    const proc = start(['-s', server.path, 'events', '--json']);
    proc.stdout!.once('data', () => proc.kill('SIGINT'));
    const run = await finish(proc);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { type: 'worker_restarted', worker: 2 });
  });
});
