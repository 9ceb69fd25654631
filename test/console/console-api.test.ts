// The web console's guard rails over plain HTTP, against a real kakehi: what
// the API refuses without a session, without the CSRF token, from another
// origin or host, from a read-only session, and after too many failed logins;
// the token file; and the refusal to serve plain HTTP beyond loopback.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_CLIENT_BACKLOG_BYTES } from '../../connectors/console/event-relay.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { apiLogin, type ConsoleProcess, startConsole } from './console-process.js';

const ADD_CLUSTER = JSON.stringify({ changes: [{ op: 'put_cluster', cluster: { id: 'sneaky' } }] });

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

/** The most a loopback TCP connection can buffer in the kernel, both ends together. */
function kernelBufferMax(): number {
  const max = (f: string) => Number(readFileSync(`/proc/sys/net/ipv4/${f}`, 'utf8').trim().split(/\s+/)[2]);
  return max('tcp_wmem') + max('tcp_rmem');
}

/** A raw GET with a Host header of our choosing (fetch does not let one set it). */
function getWithHost(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on('error', reject);
    r.end();
  });
}

describe('web console API guards', { timeout: 120_000 }, () => {
  let kakehi: Kakehi;
  let c: ConsoleProcess;
  const clusters = async () =>
    ((await ok(kakehi.socketPath, 'list_clusters')) as { clusters: { id: string }[] }).clusters.map(
      (x) => x.id,
    );

  before(async () => {
    kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0' }], access_log: 'off' });
    c = await startConsole(kakehi.socketPath);
  });
  after(async () => {
    await c?.stop();
    await kakehi?.stop();
  });

  test('serves its page with a strict Content-Security-Policy and no inline script', async () => {
    const res = await fetch(c.origin);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const d of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ]) {
      assert.ok(csp.includes(d), `${d} in ${csp}`);
    }
    assert.ok(!csp.includes('unsafe-inline'));
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file');
  });

  test('the token file holds hashes only, mode 0600; a restart keeps the tokens and prints none', async () => {
    assert.equal(statSync(c.tokenFile).mode & 0o777, 0o600);
    const text = readFileSync(c.tokenFile, 'utf8');
    assert.ok(c.tokens.editor.length > 20 && c.tokens.viewer.length > 20);
    assert.ok(!text.includes(c.tokens.editor) && !text.includes(c.tokens.viewer));
    const again = await startConsole(kakehi.socketPath, [], c.tokenFile);
    try {
      assert.doesNotMatch(again.stdout(), /editor:/);
      const s = await apiLogin(again, c.tokens.editor);
      const who = await fetch(`${again.origin}/api/session`, { headers: { cookie: s.cookie } });
      assert.equal(((await who.json()) as { role: string }).role, 'editor');
    } finally {
      await again.stop();
    }
  });

  test('refuses every API call without a session, and changes nothing', async () => {
    const q = await fetch(`${c.origin}/api/q/status`);
    assert.equal(q.status, 401);
    assert.equal(((await q.json()) as { error: { code: string } }).error.code, 'KKH_CONSOLE_UNAUTHORIZED');
    const events = await fetch(`${c.origin}/api/events`);
    assert.equal(events.status, 401);
    const t = await fetch(`${c.origin}/api/transaction`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: c.origin, cookie: 'kakehi_console=forged' },
      body: ADD_CLUSTER,
    });
    assert.equal(t.status, 401);
    assert.deepEqual(await clusters(), []);
  });

  test('refuses a change without the CSRF token or from another origin; the same change with both applies', async () => {
    const s = await apiLogin(c, c.tokens.editor);
    const post = (headers: Record<string, string>) =>
      fetch(`${c.origin}/api/transaction`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: s.cookie, ...headers },
        body: ADD_CLUSTER,
      });
    const noToken = await post({ origin: c.origin });
    assert.equal(noToken.status, 403);
    assert.equal(((await noToken.json()) as { error: { code: string } }).error.code, 'KKH_CONSOLE_FORBIDDEN');
    assert.equal((await post({ origin: c.origin, 'x-kakehi-csrf': 'guess' })).status, 403);
    assert.equal((await post({ origin: 'https://evil.example', 'x-kakehi-csrf': s.csrf })).status, 403);
    assert.equal((await post({ 'sec-fetch-site': 'cross-site', 'x-kakehi-csrf': s.csrf })).status, 403);
    assert.deepEqual(await clusters(), []);
    const good = await post({ origin: c.origin, 'x-kakehi-csrf': s.csrf });
    assert.equal(good.status, 200, await good.clone().text());
    assert.deepEqual(await clusters(), ['sneaky']);
  });

  test('a read-only session reads but cannot change, through any change endpoint', async () => {
    const s = await apiLogin(c, c.tokens.viewer);
    const read = await fetch(`${c.origin}/api/q/list_clusters`, { headers: { cookie: s.cookie } });
    assert.equal(read.status, 200);
    for (const [path, body] of [
      ['/api/transaction', JSON.stringify({ changes: [{ op: 'delete_cluster', id: 'sneaky' }] })],
      ['/api/backend-state', JSON.stringify({ cluster: 'sneaky', backend: 'b', state: 'drain' })],
    ] as const) {
      const res = await fetch(`${c.origin}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          cookie: s.cookie,
          origin: c.origin,
          'x-kakehi-csrf': s.csrf,
        },
        body,
      });
      assert.equal(res.status, 403, path);
    }
    assert.deepEqual(await clusters(), ['sneaky']);
  });

  test('exports the state as a configuration file that kakehi validate accepts', async () => {
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_backend', backend: { cluster: 'sneaky', id: 'b1', address: '127.0.0.1:9' } },
        { op: 'put_frontend', frontend: { hostname: 'export.test', cluster: 'sneaky' } },
      ],
    });
    const s = await apiLogin(c, c.tokens.viewer);
    const res = await fetch(`${c.origin}/api/export?format=config`, { headers: { cookie: s.cookie } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') ?? '', /filename="kakehi\.yaml"/);
    const text = await res.text();
    const file = join(mkdtempSync(join(tmpdir(), 'kakehi-export-')), 'kakehi.yaml');
    writeFileSync(file, text);
    const v = await run(['validate', '--no-paths', file]);
    assert.equal(v.code, 0, `${v.stderr}\n${text}`);
    assert.match(v.stdout, /1 listeners, 1 clusters, 1 backends, 1 frontends, 0 certificates/);
  });

  test('drops an event stream its reader does not read, rather than buffer for it', async () => {
    const s = await apiLogin(c, c.tokens.viewer);
    const sock = connect(c.port, '127.0.0.1');
    sock.on('error', () => {});
    await once(sock, 'connect');
    // Never read: no data listener, so the socket stays paused and the kernel buffers fill.
    sock.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${c.port}\r\nCookie: ${s.cookie}\r\n\r\n`);
    const dropped = () => c.logs.some((l) => l.msg === 'dropping a browser that does not read its events');
    // Each transaction updates 2,000 backends: one change_applied event of about 120 KB. Past the
    // most both kernel buffers can hold plus the console's bound, it must have dropped the stream
    // (about 45 rounds here; on a failure this bounds the loop).
    const maxRounds = Math.ceil((kernelBufferMax() + MAX_CLIENT_BACKLOG_BYTES) / 100_000) + 10;
    const ids = Array.from({ length: 2_000 }, (_, i) => `slow${i}`);
    for (let round = 1; !dropped(); round++) {
      assert.ok(round <= maxRounds, 'the console kept buffering for a reader that does not read');
      await ok(kakehi.socketPath, 'transaction', {
        changes: ids.map((id, i) => ({
          op: 'put_backend',
          backend: { cluster: 'sneaky', id, address: `127.0.0.1:${10_000 + i}`, weight: round },
        })),
      });
    }
    // The stream was ended by the console: reading now reaches its end.
    sock.resume();
    await once(sock, 'close');
    await ok(kakehi.socketPath, 'transaction', {
      changes: ids.map((id) => ({ op: 'delete_backend', cluster: 'sneaky', id })),
    });
  });

  test('answers only to a loopback host name when it listens on loopback (DNS rebinding)', async () => {
    assert.equal(await getWithHost(c.port, `127.0.0.1:${c.port}`), 200);
    assert.equal(await getWithHost(c.port, `localhost:${c.port}`), 200);
    assert.equal(await getWithHost(c.port, `rebound.example:${c.port}`), 421);
  });

  test('rate limits failed logins per address and logs them without the token', async () => {
    const limited = await startConsole(kakehi.socketPath);
    try {
      const login = (token: string) =>
        fetch(`${limited.origin}/api/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin: limited.origin },
          body: JSON.stringify({ token }),
        });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await login(`wrong-${i}`)).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
      // Even the right token waits now: the bucket is per address, not per token.
      assert.equal((await login(limited.tokens.editor)).status, 429);
      const failed = limited.logs.filter((l) => l.msg === 'console login failed');
      assert.equal(failed.length, 5);
      assert.ok(limited.logs.some((l) => l.msg === 'console login refused: too many attempts'));
      assert.ok(!JSON.stringify(limited.logs).includes('wrong-'), 'no token in the log');
    } finally {
      await limited.stop();
    }
  });

  test('refuses to listen beyond loopback over plain HTTP; with a certificate it serves HTTPS', async () => {
    const plain = await run(['console', '-s', kakehi.socketPath, '--listen', '0.0.0.0:0']);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /--listen 0\.0\.0\.0:0: plain HTTP beyond loopback/);
    const help = await run(['console', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: kakehi console/m);
    const cert = issueCert(makeCa(), ['console.test']);
    const tls = await startConsole(kakehi.socketPath, [
      '--listen',
      '0.0.0.0:0',
      '--tls-cert',
      cert.fullchainPath,
      '--tls-key',
      cert.keyPath,
    ]);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const r = httpsRequest(
          {
            host: '127.0.0.1',
            port: tls.port,
            path: '/',
            servername: 'console.test',
            rejectUnauthorized: false,
            agent: false,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        r.on('error', reject);
        r.end();
      });
      assert.equal(status, 200);
    } finally {
      await tls.stop();
    }
  });
});
