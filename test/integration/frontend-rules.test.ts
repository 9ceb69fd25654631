// Frontend rules through a real kakehi, a real echo backend and real sockets on
// 127.0.0.1 and ::1: header rules both ways with their variables, prefix strip
// and replace, Host rewrite, a redirect with captures that never reaches the
// backend, basic authentication (the hash never shown), client address lists
// for IPv4 and IPv6, refusals of rules that would break framing, and all of it
// kept across SIGHUP and `kakehi ctl upgrade --main`.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Family, ScalarSample } from '../../src/metrics/registry.js';
import { type Backend, closedPort, echoBackend } from '../helpers/backends.js';
import { command, ok } from '../helpers/command.js';
import { type HttpResult, readWhole } from '../helpers/http.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange } from '../helpers/raw-client.js';

const run = promisify(execFile);

/** One request on a fresh connection, from the loopback address of `family`. */
function get(port: number, host: string, path: string, headers: Record<string, string> = {}, family = 4) {
  return new Promise<HttpResult>((resolve, reject) => {
    const r = request(
      { host: family === 4 ? '127.0.0.1' : '::1', port, path, headers: { host, ...headers }, agent: false },
      (res) => readWhole(res, resolve, reject),
    );
    r.on('error', reject);
    r.end();
  });
}

/** `kakehi hash-password` with `input` on its standard input. */
function hashPasswordCli(args: string[], input: string) {
  return spawnSync(process.execPath, [CLI, 'hash-password', ...args], { input, encoding: 'utf8' });
}

/** `kakehi ctl` on the test's proxy; a failure rejects. */
const ctl = (...args: string[]) => run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, ...args]);

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

let backend: Backend;
let kakehi: Kakehi;
let v4: number;
let v6: number;
/** A listener with expect_proxy: the client is the one its PROXY header names. */
let proxied: number;
let hash: string;
let successor = 0;

before(async () => {
  backend = await echoBackend('echo', (req, res) => {
    if (req.headers.host !== 'resp.test') return false;
    // A backend header the response rules remove, and one they replace.
    const out = JSON.stringify({ url: req.url });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(out),
      'x-powered-by': 'php',
      'x-frame-options': 'ALLOWALL',
    });
    res.end(out);
    return true;
  });
  // Made as an operator would, by the CLI; the lowest cost the schema takes, as
  // the test checks behaviour, not strength.
  const made = hashPasswordCli(['--cost', '10'], 'correct horse\n');
  assert.equal(made.status, 0, made.stderr);
  hash = made.stdout.trim();
  kakehi = await startKakehi({
    listeners: [
      { address: '127.0.0.1:0' },
      { address: '[::1]:0' },
      { address: `127.0.0.1:${await closedPort()}`, expect_proxy: true },
    ],
    clusters: [{ id: 'app', backends: [{ id: 'a', address: backend.address }] }],
    frontends: [
      {
        hostname: 'req.test',
        cluster: 'app',
        request_headers: {
          remove: ['X-Secret'],
          set: { 'X-Env': 'prod', 'X-Client': '{client_ip} {request_id}' },
          add: { 'X-Seen-Host': '{host} {method} {path} {proto}' },
        },
      },
      {
        hostname: 'resp.test',
        cluster: 'app',
        response_headers: {
          remove: ['X-Powered-By'],
          set: { 'X-Frame-Options': 'DENY' },
          add: { 'X-Served-For': '{client_ip}' },
        },
      },
      { hostname: 'strip.test', path: '/api', cluster: 'app', strip_prefix: '/api' },
      {
        hostname: 'replace.test',
        path: '/old/',
        cluster: 'app',
        replace_prefix: { from: '/old/', to: '/new/' },
      },
      { hostname: 'host.test', cluster: 'app', host_rewrite: 'backend.internal:8080' },
      {
        hostname: 'redirect.test',
        path_type: 'regex',
        path: '/user/([0-9]+)/([a-z]+)',
        redirect: { status: 308, to: 'https://{host}/u/{1}?tab={2}' },
      },
      {
        hostname: 'auth.test',
        cluster: 'app',
        basic_auth: { realm: 'staff only', users: [{ name: 'ann', password_hash: hash }] },
      },
      { hostname: 'deny4.test', cluster: 'app', ip_deny: ['127.0.0.0/8'] },
      { hostname: 'only6.test', cluster: 'app', ip_allow: ['::1/128'] },
      { hostname: 'deny6.test', cluster: 'app', ip_allow: ['127.0.0.1/32', '::/0'], ip_deny: ['::1'] },
      {
        hostname: 'proxied.test',
        cluster: 'app',
        ip_allow: ['203.0.113.0/24', '198.51.100.0/24'],
        ip_deny: ['198.51.100.0/24'],
        request_headers: { set: { 'X-Client': '{client_ip}' } },
      },
    ],
  });
  [v4, v6, proxied] = kakehi.ports as [number, number, number];
});

after(async () => {
  // The successor and its workers inherit the stderr pipe: it ends when the last of them exits.
  const stderr = kakehi.proc.stderr;
  const allGone = new Promise<void>((resolve) => {
    if (stderr === null || stderr.readableEnded) resolve();
    else stderr.once('end', () => resolve());
  });
  if (successor !== 0) {
    try {
      process.kill(successor, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await kakehi.stop();
  await allGone;
  await backend.close();
});

/** The request the backend saw last, as its echo tells. */
function echoed(r: HttpResult): { url: string; headers: IncomingHttpHeaders } {
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as { url: string; headers: IncomingHttpHeaders };
}

async function behaves(): Promise<void> {
  assert.equal((await get(v4, 'auth.test', '/')).status, 401);
  assert.equal((await get(v4, 'auth.test', '/', basic('ann', 'correct horse'))).status, 200);
  assert.equal((await get(v4, 'deny4.test', '/')).status, 403);
  assert.equal((await get(v6, 'only6.test', '/', {}, 6)).status, 200);
  assert.equal(echoed(await get(v4, 'strip.test', '/api/x')).url, '/x');
}

describe('frontend rules', () => {
  it('sets, adds and removes request headers, expanding variables', async () => {
    const r = await get(v4, 'req.test', '/p?q=1', {
      'x-secret': 'leak',
      'x-env': 'dev',
      'x-request-id': 'rid-1',
    });
    const { headers } = echoed(r);
    assert.equal(headers['x-secret'], undefined);
    assert.equal(headers['x-env'], 'prod', 'set replaces the client value');
    assert.equal(headers['x-client'], '127.0.0.1 rid-1');
    assert.equal(headers['x-seen-host'], 'req.test GET /p http');
    const six = echoed(await get(v6, 'req.test', '/', {}, 6));
    assert.match(String(six.headers['x-client']), /^::1 \S+$/);
  });

  it('sets, adds and removes response headers seen by the client', async () => {
    const r = await get(v4, 'resp.test', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-powered-by'], undefined);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-served-for'], '127.0.0.1');
  });

  it('strips and replaces a path prefix, keeping the query and a leading /', async () => {
    assert.equal(echoed(await get(v4, 'strip.test', '/api/users?a=1&b=2')).url, '/users?a=1&b=2');
    assert.equal(echoed(await get(v4, 'strip.test', '/api?x')).url, '/?x');
    assert.equal(echoed(await get(v4, 'replace.test', '/old/a/b?c')).url, '/new/a/b?c');
  });

  it('rewrites the Host sent to the backend; X-Forwarded-Host keeps the client one', async () => {
    const { headers } = echoed(await get(v4, 'host.test', '/'));
    assert.equal(headers.host, 'backend.internal:8080');
    assert.equal(headers['x-forwarded-host'], 'host.test');
  });

  it('redirects with captures of the path regex, never reaching the backend', async () => {
    const seen = backend.seen.length;
    const r = await get(v4, 'redirect.test', '/user/42/posts');
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, 'https://redirect.test/u/42?tab=posts');
    assert.equal(backend.seen.length, seen);
  });

  it('asks for basic credentials: none or wrong get 401 with a challenge, right ones pass', async () => {
    const seen = backend.seen.length;
    const none = await get(v4, 'auth.test', '/');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="staff only", charset="UTF-8"');
    assert.equal((await get(v4, 'auth.test', '/', basic('ann', 'wrong'))).status, 401);
    assert.equal((await get(v4, 'auth.test', '/', basic('bob', 'correct horse'))).status, 401);
    assert.equal((await get(v4, 'auth.test', '/', { authorization: 'Bearer x' })).status, 401);
    assert.equal(backend.seen.length, seen, 'no refused request reached the backend');
    // Twice: the second is answered from the worker's remembered successes.
    for (let i = 0; i < 2; i++)
      assert.equal((await get(v4, 'auth.test', '/', basic('ann', 'correct horse'))).status, 200);
    const m = (await ok(kakehi.socketPath, 'query_metrics', {
      names: ['kakehi_basic_auth_remembered', 'kakehi_basic_auth_checks_running'],
    })) as { families: Family[] };
    const value = (name: string) =>
      (m.families.find((f) => f.name === name)?.samples[0] as ScalarSample | undefined)?.value;
    assert.equal(value('kakehi_basic_auth_remembered'), 1);
    assert.equal(value('kakehi_basic_auth_checks_running'), 0);
  });

  it('never shows a password hash in ctl, get_state, list_frontends or the logs', async () => {
    await ok(kakehi.socketPath, 'add_http_frontend', {
      frontend: {
        hostname: 'runtime-auth.test',
        cluster: 'app',
        basic_auth: { realm: 'r', users: [{ name: 'ann', password_hash: hash }] },
      },
    });
    assert.equal((await get(v4, 'runtime-auth.test', '/', basic('ann', 'correct horse'))).status, 200);
    const state = JSON.stringify(await ok(kakehi.socketPath, 'get_state', { sources: true }));
    const listed = JSON.stringify(await ok(kakehi.socketPath, 'list_frontends'));
    const ctlState = await ctl('state');
    const ctlJson = await ctl('--json', 'frontends');
    const ctlTable = await ctl('frontends');
    const secret = hash.split('$').at(-1)!;
    for (const [what, text] of [
      ['get_state', state],
      ['list_frontends', listed],
      ['ctl state', ctlState.stdout],
      ['ctl --json frontends', ctlJson.stdout],
      ['ctl frontends', ctlTable.stdout],
      ['the process log', kakehi.rawLogs.join('\n')],
    ] as const) {
      assert.ok(!text.includes(secret), `${what} shows the hash`);
    }
    assert.match(state, /<redacted sha256:[0-9a-f]{16}>/);
    assert.match(ctlTable.stdout, /basic auth "staff only": 1 users/);
    await ok(kakehi.socketPath, 'remove_http_frontend', { frontend: { hostname: 'runtime-auth.test' } });
  });

  it('answers 403 to client addresses the lists refuse, IPv4 and IPv6', async () => {
    assert.equal((await get(v4, 'deny4.test', '/')).status, 403);
    assert.equal((await get(v6, 'deny4.test', '/', {}, 6)).status, 200);
    assert.equal((await get(v4, 'only6.test', '/')).status, 403);
    assert.equal((await get(v6, 'only6.test', '/', {}, 6)).status, 200);
    assert.equal((await get(v4, 'deny6.test', '/')).status, 200);
    assert.equal((await get(v6, 'deny6.test', '/', {}, 6)).status, 403, 'deny wins over allow');
  });

  it('judges the client a PROXY header names, not the balancer that sent it', async () => {
    const through = (client: string) =>
      rawExchange(
        proxied,
        `PROXY TCP4 ${client} 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: proxied.test\r\nConnection: close\r\n\r\n`,
      );
    const allowed = await through('203.0.113.9');
    assert.match(allowed.text, /^HTTP\/1\.1 200 /);
    assert.match(allowed.text, /"x-client":"203\.0\.113\.9"/);
    assert.match((await through('198.51.100.4')).text, /^HTTP\/1\.1 403 /);
    // The balancer's own address, 127.0.0.1, is in neither list.
    assert.equal((await get(v4, 'proxied.test', '/')).status, 403);
  });

  it('refuses rules that would break framing or inject a header, by name, changing nothing', async () => {
    const generation = (await ok(kakehi.socketPath, 'status'))['generation'];
    const cases: [Record<string, unknown>, RegExp, RegExp][] = [
      [
        { request_headers: { set: { 'Transfer-Encoding': 'chunked' } } },
        /request_headers\.set\.Transfer-Encoding/,
        /smuggling/,
      ],
      [
        { response_headers: { remove: ['Content-Length'] } },
        /response_headers\.remove\[0\]/,
        /frames the message/,
      ],
      [
        { request_headers: { set: { 'X-A': 'a\r\nX-Injected: 1' } } },
        /request_headers\.set\.X-A/,
        /cannot be in a header value/,
      ],
      [{ request_headers: { add: { 'X-A': '{cookie}' } } }, /request_headers\.add\.X-A/, /not a variable/],
      [{ request_headers: { set: { Host: 'x' } } }, /request_headers\.set\.Host/, /host_rewrite/],
      [
        { basic_auth: { users: [{ name: 'ann', password_hash: 'plain' }] } },
        /password_hash/,
        /kakehi hash-password/,
      ],
      [{ ip_allow: ['10.0.0.1/8'] }, /ip_allow\[0\]/, /10\.0\.0\.0\/8/],
      [{ strip_prefix: 'api' }, /strip_prefix/, /must start with \//],
    ];
    for (const [rule, path, reason] of cases) {
      const f = await command(kakehi.socketPath, 'add_http_frontend', {
        frontend: { hostname: 'bad.test', cluster: 'app', ...rule },
      });
      assert.equal(f.status, 'error', JSON.stringify(rule));
      assert.equal(f.error?.code, 'KKH_CHANGE_INVALID');
      const issue = f.error?.issues?.find((i) => path.test(i.path));
      assert.ok(issue !== undefined, `${JSON.stringify(f.error?.issues)} names ${path}`);
      assert.match(issue.reason, reason);
    }
    assert.equal((await ok(kakehi.socketPath, 'status'))['generation'], generation);
    assert.equal((await get(v4, 'bad.test', '/')).status, 404);
  });

  it('applies a changed rule from the next request, on a connection kept alive across the change', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = () =>
      new Promise<{ version: unknown; port: number | undefined }>((resolve, reject) => {
        const r = request(
          { host: '127.0.0.1', port: v4, path: '/', headers: { host: 'hot.test' }, agent },
          (res) => {
            // Read now: the agent takes the socket back once the response ends.
            const port = res.socket.localPort;
            readWhole(res, (got) => resolve({ version: echoed(got).headers['x-version'], port }), reject);
          },
        );
        r.on('error', reject);
        r.end();
      });
    const frontend = (value: string) => ({
      frontend: { hostname: 'hot.test', cluster: 'app', request_headers: { set: { 'X-Version': value } } },
    });
    try {
      await ok(kakehi.socketPath, 'add_http_frontend', frontend('one'));
      const first = await ask();
      assert.equal(first.version, 'one');
      await ok(kakehi.socketPath, 'add_http_frontend', frontend('two'));
      const second = await ask();
      assert.equal(second.version, 'two');
      assert.equal(second.port, first.port, 'the same client connection');
    } finally {
      agent.destroy();
      await ok(kakehi.socketPath, 'remove_http_frontend', { frontend: { hostname: 'hot.test' } });
    }
  });

  it('keeps every rule across SIGHUP and ctl upgrade --main', async () => {
    kakehi.proc.kill('SIGHUP');
    await kakehi.waitLog((l) => l.msg === 'SIGHUP reload applied');
    await behaves();
    const up = await ctl('upgrade', '--main', '--json');
    successor = (JSON.parse(up.stdout) as { pid: number }).pid;
    assert.equal(await kakehi.exited, 0);
    await behaves();
    const state = JSON.stringify(await ok(kakehi.socketPath, 'get_state'));
    assert.ok(!state.includes(hash.split('$').at(-1)!));
  });
});

describe('kakehi hash-password', () => {
  it('has --help, and refuses a password as an argument, a bad cost and an empty password', () => {
    const help = hashPasswordCli(['--help'], '');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: kakehi hash-password/);
    const arg = hashPasswordCli(['s3cret'], '');
    assert.equal(arg.status, 2);
    assert.match(arg.stderr, /read from stdin/);
    assert.ok(!arg.stdout.includes('$scrypt$'));
    assert.equal(hashPasswordCli(['--cost', '9'], 'pw\n').status, 2);
    assert.equal(hashPasswordCli([], '\n').status, 1);
  });
});
