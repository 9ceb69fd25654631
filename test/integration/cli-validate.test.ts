// `kakehi validate` and `kakehi run` on broken input, through the compiled CLI
// in a real child process: exit codes (0 ok, 1 failure, 2 usage, 3 config),
// and messages that name the place and the reason so the file can be fixed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { issueCert, makeCa } from '../helpers/certs.js';
import { CLI } from '../helpers/kakehi-process.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    proc.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    // A bound, not the thing asserted: a command that never exits fails the test.
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'kakehi-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
function file(text: string): string {
  const p = join(dir, `config-${++fileCount}.yaml`);
  writeFileSync(p, text);
  return p;
}

const VALID = `listeners:
  - address: 127.0.0.1:0
clusters:
  - id: app
    backends:
      - id: app-1
        address: 127.0.0.1:3000
      - id: app-2
        address: 127.0.0.1:3001
frontends:
  - hostname: example.com
    cluster: app
  - hostname: "*.example.com"
    cluster: app
`;

describe('kakehi validate', () => {
  test('accepts a valid file with exit 0 and a summary line counting its objects', async () => {
    const path = file(VALID);
    const r = await cli(['validate', '-c', path]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `${path} is valid: 1 listeners, 1 clusters, 2 backends, 2 frontends, 0 certificates\n`,
    );
  });

  test('reads certificate files relative to the file, and names what is wrong with each', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const good = issueCert(ca, ['a.test'], { keyType: 'ec' });
    const expired = issueCert(ca, ['old.test'], {
      keyType: 'ec',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const other = issueCert(ca, ['b.test'], { keyType: 'ec' });
    writeFileSync(join(dir, 'good.crt'), good.fullchainPem);
    writeFileSync(join(dir, 'good.key'), good.keyPem);
    writeFileSync(join(dir, 'old.crt'), expired.fullchainPem);
    writeFileSync(join(dir, 'old.key'), expired.keyPem);
    writeFileSync(join(dir, 'other.key'), other.keyPem);
    const https = `listeners:\n  - address: 127.0.0.1:0\n    protocol: https\n  - address: 127.0.0.2:0\n`;
    const ok = await cli([
      'validate',
      '-c',
      file(
        `${https}certificates:\n  - { listener: 127.0.0.1:0, certificate_file: good.crt, key_file: good.key }\n`,
      ),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /1 certificates/);
    const bad = await cli([
      'validate',
      '-c',
      file(
        `${https}certificates:\n` +
          '  - { listener: 127.0.0.1:0, certificate_file: old.crt, key_file: old.key }\n' +
          '  - { listener: 127.0.0.1:0, certificate_file: good.crt, key_file: other.key }\n' +
          '  - { listener: 127.0.0.1:0, certificate_file: missing.crt, key_file: good.key }\n' +
          '  - { listener: 127.0.0.2:0, certificate_file: good.crt, key_file: good.key }\n',
      ),
    ]);
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /^certificates\[0\]\.certificate_file: expired on .*allow_expired/m);
    assert.match(bad.stderr, /^certificates\[1\]\.key_file: does not match/m);
    assert.match(bad.stderr, /^certificates\[2\]\.certificate_file: cannot read missing\.crt/m);
    assert.match(bad.stderr, /^certificates\[3\]\.listener: .*https listeners/m);
    assert.doesNotMatch(bad.stderr, /PRIVATE KEY-----/);
  });

  test('prints nothing for a valid file with --quiet', async () => {
    const r = await cli(['validate', '-q', '-c', file(VALID)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  test('rejects a YAML syntax error with exit 3, naming line and column', async () => {
    const r = await cli(['validate', '-c', file('listeners:\n  - address: [\n')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /not valid YAML/);
    assert.match(r.stderr, /line 3, column 1/);
  });

  test('rejects duplicate YAML keys as a syntax error naming the line', async () => {
    const r = await cli(['validate', '-c', file('log_level: info\nlog_level: debug\n')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /line 2, column 1: Map keys must be unique/);
  });

  test('names the replacement of a renamed backend key (backend_id: use id)', async () => {
    const r = await cli([
      'validate',
      '-c',
      file(VALID.replace('      - id: app-1', '      - backend_id: app-1')),
    ]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^clusters\[0\]\.backends\[0\]\.backend_id: unknown key; use id$/m);
  });

  test('names the replacement of a renamed listener key (idle_timeout: use keepalive_timeout_ms)', async () => {
    const r = await cli([
      'validate',
      '-c',
      file(VALID.replace('  - address: 127.0.0.1:0\n', '  - address: 127.0.0.1:0\n    idle_timeout: 5\n')),
    ]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^listeners\[0\]\.idle_timeout: unknown key; use keepalive_timeout_ms$/m);
  });

  test('lists the accepted keys for an unknown key with no known rename', async () => {
    const r = await cli([
      'validate',
      '-c',
      file(VALID.replace('  - address: 127.0.0.1:0\n', '  - address: 127.0.0.1:0\n    port: 80\n')),
    ]);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /^listeners\[0\]\.port: unknown key; expected one of address, .*max_header_bytes, max_header_count, max_connections, max_request_body_bytes$/m,
    );
  });

  test('names the path and the reason for a hostname with two wildcard labels', async () => {
    const text = `${VALID}  - hostname: a.com
    cluster: app
  - hostname: "*.*.example.com"
    cluster: app
`;
    const r = await cli(['validate', '-c', file(text)]);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /^frontends\[3\]\.hostname: "\*\.\*\.example\.com": only one leading wildcard label is allowed$/m,
    );
  });

  test('reports a frontend naming a cluster that does not exist', async () => {
    const r = await cli(['validate', '-c', file(`${VALID}  - hostname: b.com\n    cluster: nope\n`)]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^frontends\[2\]\.cluster: no cluster has the id "nope"$/m);
  });

  test('reports duplicate cluster ids and duplicate backend ids by place', async () => {
    const text = VALID.replace('id: app-2', 'id: app-1').replace('frontends:', '  - id: app\nfrontends:');
    const r = await cli(['validate', '-c', file(text)]);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /^clusters\[0\]\.backends\[1\]\.id: "app-1" is already used by clusters\[0\]\.backends\[0\]$/m,
    );
    assert.match(r.stderr, /^clusters\[1\]\.id: "app" is already used by clusters\[0\]$/m);
    assert.match(r.stderr, /has 2 errors/);
  });

  test('rejects bad addresses, naming each', async () => {
    const text = VALID.replace('address: 127.0.0.1:0', 'address: nohost').replace(
      'address: 127.0.0.1:3001',
      'address: 127.0.0.1:99999',
    );
    const r = await cli(['validate', '-c', file(text)]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^listeners\[0\]\.address: "nohost": expected host:port$/m);
    assert.match(r.stderr, /^clusters\[0\]\.backends\[1\]\.address: "127\.0\.0\.1:99999": .*port/m);
  });

  test('prints every field error of a file at once, one line each', async () => {
    const text = `listeners:
  - address: 127.0.0.1:0
    idle_timeout: 5
clusters:
  - id: app
    load_balancing: fastest
    backends:
      - backend_id: a
        address: 127.0.0.1:99999
frontends:
  - hostname: "*.*.example.com"
    cluster: app
`;
    const r = await cli(['validate', '-c', file(text)]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /has 6 errors:/);
    for (const path of [
      'listeners[0].idle_timeout',
      'clusters[0].load_balancing',
      'clusters[0].backends[0].backend_id',
      'clusters[0].backends[0].id',
      'clusters[0].backends[0].address',
      'frontends[0].hostname',
    ]) {
      assert.ok(r.stderr.includes(`\n${path}: `), `missing ${path} in:\n${r.stderr}`);
    }
  });

  test('reports a dangling cluster reference together with field errors elsewhere', async () => {
    // Issue 2 §2: validate prints every error; an operator should not have to
    // fix one batch to discover the next.
    const text = `listeners:
  - address: 127.0.0.1:0
    idle_timeout: 5
clusters:
  - id: app
frontends:
  - hostname: b.com
    cluster: nope
`;
    const r = await cli(['validate', '-c', file(text)]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^listeners\[0\]\.idle_timeout: unknown key; use keepalive_timeout_ms$/m);
    assert.match(r.stderr, /^frontends\[0\]\.cluster: no cluster has the id "nope"$/m);
  });

  test('reports the cross-checks of the objects that parsed in the same pass as the syntax errors of their neighbours', async () => {
    // Issue 13 §3: an unknown cluster or a duplicate id used to show only once
    // every object of its list had parsed.
    const text = `listeners:
  - address: 127.0.0.1:0
  - address: nohost
  - address: 127.0.0.1:0
clusters:
  - id: app
    load_balancing: fastest
  - id: web
  - id: web
    backends:
      - id: w1
        address: 127.0.0.1:3000
      - id: w1
        address: 127.0.0.1:3001
frontends:
  - hostname: "*.*.example.com"
    cluster: web
  - hostname: a.example.com
    cluster: nope
  - hostname: b.example.com
    cluster: app
  - hostname: c.example.com
    cluster: web
    listener: 127.0.0.1:9
`;
    const r = await cli(['validate', '-c', file(text)]);
    assert.equal(r.code, 3);
    const lines = r.stderr
      .split('\n')
      .slice(1)
      .filter((l) => l !== '');
    assert.deepEqual(lines.sort(), [
      'clusters[0].load_balancing: must be one of "round_robin", "random", "least_connections", "power_of_two", "hash_rendezvous", "hash_maglev" (got the string "fastest")',
      'clusters[2].backends[1].id: "w1" is already used by clusters[2].backends[0]',
      'clusters[2].id: "web" is already used by clusters[1]',
      'frontends[0].hostname: "*.*.example.com": only one leading wildcard label is allowed',
      'frontends[1].cluster: no cluster has the id "nope"',
      'frontends[3].listener: no listener has the address "127.0.0.1:9"',
      'listeners[1].address: "nohost": expected host:port',
      'listeners[2].address: "127.0.0.1:0" is already used by listeners[0]',
    ]);
    // frontends[2] names the cluster that failed its own checks: no second, false error for it.
    assert.match(r.stderr, /has 8 errors:/);
  });

  test('exits 3 naming the file when it does not exist', async () => {
    const missing = join(dir, 'absent.yaml');
    const r = await cli(['validate', '-c', missing]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`cannot read ${missing.replace(/[.]/g, '\\.')}: ENOENT`));
  });

  test('exits 2 with the command help when the file is missing', async () => {
    const r = await cli(['validate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /validate needs a file: kakehi validate FILE/);
    assert.match(r.stderr, /Usage: kakehi validate -c FILE \| FILE/);
  });

  test('takes the file as an operand too (kakehi validate FILE), once', async () => {
    const ok = await cli(['validate', file(VALID)]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /is valid: /);
    const twice = await cli(['validate', file(VALID), file(VALID)]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /unexpected argument/);
  });

  test('lists exit code 4 in the top-level help', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /4 the proxy is unreachable/);
  });

  test('exits 2 on an unknown option, naming it', async () => {
    const r = await cli(['validate', '--bogus', '-c', file(VALID)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option --bogus/);
  });

  test('exits 2 when -c has no value', async () => {
    const r = await cli(['validate', '-c']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /option --config needs a value/);
  });

  test('exits 2 on a stray positional argument', async () => {
    const r = await cli(['validate', '-c', file(VALID), 'extra']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unexpected argument "extra"/);
  });

  test('exits 2 on an unknown command, naming it', async () => {
    const r = await cli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });

  test('exits 2 with the overview when no command is given', async () => {
    const r = await cli([]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /Usage: kakehi <command>/);
  });

  for (const [args, expected] of [
    [['--help'], /Usage: kakehi <command>/],
    [['run', '--help'], /Usage: kakehi run \[-c FILE \| FILE\]/],
    [['validate', '--help'], /Usage: kakehi validate -c FILE/],
    [['validate', '-h'], /Usage: kakehi validate -c FILE/],
    [['schema', '--help'], /Usage: kakehi schema/],
    [['version', '--help'], /Usage: kakehi version/],
  ] as const) {
    test(`prints help for "${args.join(' ')}" on stdout with exit 0`, async () => {
      const r = await cli([...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, expected);
      assert.equal(r.stderr, '');
    });
  }
});

describe('kakehi run', () => {
  test('exits 3 on an invalid file without listening', async () => {
    const r = await cli(['run', '-c', file(`${VALID}  - hostname: b.com\n    cluster: nope\n`)]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /frontends\[2\]\.cluster: no cluster has the id "nope"/);
    assert.doesNotMatch(r.stderr, /"msg":"listening"|kakehi ready/);
  });

  test('exits 3 on a missing file', async () => {
    const r = await cli(['run', '-c', join(dir, 'absent.yaml')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot read .*absent\.yaml/);
  });

  test('exits 1 naming the address when its port is already taken', async (t) => {
    const holder: Server = createServer();
    await new Promise<void>((res, rej) => {
      holder.once('error', rej);
      holder.listen(0, '127.0.0.1', () => res());
    });
    t.after(() => new Promise<void>((res) => holder.close(() => res())));
    const addr = holder.address();
    assert.ok(typeof addr === 'object' && addr !== null);
    const address = `127.0.0.1:${addr.port}`;
    const r = await cli(['run', '-c', file(VALID.replace('127.0.0.1:0', address))]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`cannot listen on ${address}`), r.stderr);
    assert.match(r.stderr, /EADDRINUSE/);
  });
});
