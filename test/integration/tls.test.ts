import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Backend, closedPort, echoBackend, gatedBackend } from '../helpers/backends.js';
import { issueCert, makeCa, makeIntermediate, type TestCa, type TestCert } from '../helpers/certs.js';
import { command, ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { handshake, httpsGet } from '../helpers/tls-client.js';

const run = promisify(execFile);
const HTTPS = '127.0.0.1:0';

const put = (c: TestCert, extra: Record<string, unknown> = {}) => ({
  op: 'put_certificate',
  certificate: { listener: HTTPS, certificate: c.fullchainPem, key: c.keyPem, ...extra },
});

/** openssl s_client with one protocol version; resolves with whether the handshake succeeded. */
function opensslAccepts(port: number, flag: string): Promise<{ ok: boolean; out: string }> {
  // SECLEVEL=0 lets the client offer TLS 1.0/1.1 at all: the refusal must be the server's.
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.example.test', flag];
  if (flag === '-tls1' || flag === '-tls1_1') args.push('-cipher', 'DEFAULT:@SECLEVEL=0');
  return new Promise((resolve, reject) => {
    // stdin from /dev/null: s_client ends after the handshake instead of waiting for input.
    const p = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('error', reject);
    p.on('close', () => resolve({ ok: /Cipher is (?!\(NONE\))/.test(out), out }));
  });
}

describe('HTTPS listeners', () => {
  let ca: TestCa;
  let inter: TestCa;
  let rsa: TestCert;
  let ecdsa: TestCert;
  let wildcard: TestCert;
  let other: TestCert;
  let backend: Backend;
  let kakehi: Kakehi;
  let tlsPort: number;
  let httpPort: number;
  let HTTP: string;

  before(async () => {
    ca = makeCa({ keyType: 'ec' });
    inter = makeIntermediate(ca);
    rsa = issueCert(inter, ['a.example.test'], { keyType: 'rsa' });
    ecdsa = issueCert(inter, ['a.example.test'], { keyType: 'ec' });
    wildcard = issueCert(ca, ['*.wild.test'], { keyType: 'ec' });
    other = issueCert(ca, ['default.test'], { keyType: 'rsa' });
    backend = await echoBackend('b');
    HTTP = `127.0.0.1:${await closedPort()}`;
    const dir = join(ca.dir, 'cfg');
    await run('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'default.crt'), other.fullchainPem);
    writeFileSync(join(dir, 'default.key'), other.keyPem);
    kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: HTTPS, protocol: 'https', strict_sni: false }, { address: HTTP }],
      clusters: [
        { id: 'app', backends: [{ id: 'b', address: backend.address }], hsts: { max_age: 600 } },
        {
          id: 'secure',
          backends: [{ id: 'b', address: backend.address }],
          https_redirect: true,
          https_redirect_status: 308,
          https_redirect_port: 8443,
        },
      ],
      frontends: [
        { hostname: 'secure.test', cluster: 'secure' },
        { hostname: '*', cluster: 'app' },
      ],
      certificates: [
        {
          listener: HTTPS,
          certificate_file: join(dir, 'default.crt'),
          key_file: join(dir, 'default.key'),
          default: true,
        },
      ],
      access_log: 'off',
    });
    tlsPort = kakehi.ports[0]!;
    httpPort = kakehi.ports[1]!;
    await ok(kakehi.socketPath, 'transaction', { changes: [put(rsa), put(ecdsa), put(wildcard)] });
  });
  after(async () => {
    await kakehi?.stop();
    await backend?.close();
  });

  it('refuses TLS 1.0 and 1.1 and accepts 1.2 and 1.3', async () => {
    assert.equal((await opensslAccepts(tlsPort, '-tls1')).ok, false);
    assert.equal((await opensslAccepts(tlsPort, '-tls1_1')).ok, false);
    const v12 = await opensslAccepts(tlsPort, '-tls1_2');
    assert.equal(v12.ok, true, v12.out);
    assert.match(v12.out, /ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20-POLY1305)/);
    const v13 = await opensslAccepts(tlsPort, '-tls1_3');
    assert.equal(v13.ok, true, v13.out);
    const h = await handshake(tlsPort, { servername: 'a.example.test' });
    assert.equal(h.alpn, 'http/1.1');
  });

  it('picks the certificate by SNI: exact, wildcard, then the default', async () => {
    const exact = await handshake(tlsPort, { servername: 'a.example.test', ca: ca.certPem });
    assert.ok([rsa.fingerprint, ecdsa.fingerprint].includes(exact.fingerprint));
    // The chain is served: a client trusting only the root verifies the leaf.
    assert.equal(exact.authorized, true, exact.authorizationError);
    assert.equal((await handshake(tlsPort, { servername: 'x.wild.test' })).fingerprint, wildcard.fingerprint);
    // One label only: a.b.wild.test is not covered by *.wild.test.
    assert.equal((await handshake(tlsPort, { servername: 'a.b.wild.test' })).fingerprint, other.fingerprint);
    assert.equal((await handshake(tlsPort, { servername: 'unknown.test' })).fingerprint, other.fingerprint);
    assert.equal((await handshake(tlsPort, {})).fingerprint, other.fingerprint);
  });

  it('serves ECDSA to clients that take it and RSA to the others, on one name; the one valid the longest of each', async () => {
    const rsaLong = issueCert(ca, ['both.test'], { keyType: 'rsa', days: 400 });
    const ecShort = issueCert(ca, ['both.test'], { keyType: 'ec', days: 200 });
    const ecLong = issueCert(ca, ['both.test'], { keyType: 'ec', days: 300 });
    await ok(kakehi.socketPath, 'transaction', { changes: [put(rsaLong), put(ecShort), put(ecLong)] });
    const modern = await handshake(tlsPort, { servername: 'both.test' });
    assert.equal(modern.fingerprint, ecLong.fingerprint);
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const ec = await handshake(tlsPort, {
        servername: 'both.test',
        sigalgs: 'ecdsa_secp256r1_sha256',
        maxVersion,
      });
      assert.equal(ec.fingerprint, ecLong.fingerprint, `${maxVersion} ECDSA client`);
      const rsaOnly = await handshake(tlsPort, {
        servername: 'both.test',
        sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256',
        maxVersion,
      });
      assert.equal(rsaOnly.fingerprint, rsaLong.fingerprint, `${maxVersion} RSA-only client`);
    }
    // The RSA leaf of a.example.test and its ECDSA twin, both under an intermediate: each verifies through the chain.
    for (const sigalgs of ['ecdsa_secp256r1_sha256', 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256']) {
      const a = await handshake(tlsPort, { servername: 'a.example.test', sigalgs, ca: ca.certPem });
      assert.equal(a.fingerprint, sigalgs.startsWith('ecdsa') ? ecdsa.fingerprint : rsa.fingerprint);
      assert.equal(a.authorized, true, a.authorizationError);
    }
  });

  it('answers clients without SNI with an ECDSA default even where names have RSA certificates', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    const ecDefault = issueCert(ca, ['ec-default.test'], { keyType: 'ec' });
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_listener', listener: { address, protocol: 'https' } },
        put(ecDefault, { listener: address, default: true }),
        put(rsa, { listener: address }),
      ],
    });
    const port = (
      (await ok(kakehi.socketPath, 'list_listeners'))['listeners'] as { address: string; port: number }[]
    ).find((l) => l.address === address)!.port;
    assert.equal((await handshake(port, {})).fingerprint, ecDefault.fingerprint);
    assert.equal((await handshake(port, { servername: 'a.example.test' })).fingerprint, rsa.fingerprint);
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'delete_certificate', listener: address, fingerprint: ecDefault.fingerprint },
        { op: 'delete_certificate', listener: address, fingerprint: rsa.fingerprint },
        { op: 'delete_listener', address },
      ],
    });
  });

  it('forwards with X-Forwarded-Proto https and adds HSTS', async () => {
    const res = await httpsGet(tlsPort, '/hello', { host: 'a.example.test', ca: ca.certPem });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.match(seen.headers['forwarded'] ?? '', /proto=https/);
    assert.equal(res.headers['strict-transport-security'], 'max-age=600');
    // Plain HTTP gets no HSTS (RFC 6797 §7.2).
    const plain = await httpGet(httpPort, '/hello', { host: 'a.example.test' });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['strict-transport-security'], undefined);
  });

  it('redirects plain HTTP to HTTPS for a cluster that asks', async () => {
    const res = await httpGet(httpPort, '/path?q=1', { host: 'secure.test' });
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, 'https://secure.test:8443/path?q=1');
    assert.equal(backend.seen.filter((s) => s.url === '/path?q=1').length, 0);
  });

  it('resumes sessions with tickets, whichever worker answers', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await handshake(tlsPort, { servername: 'a.example.test', maxVersion });
      assert.ok(first.session, `a ${maxVersion} session to resume`);
      let reused = 0;
      for (let i = 0; i < 10; i++) {
        const again = await handshake(tlsPort, {
          servername: 'a.example.test',
          maxVersion,
          session: first.session,
        });
        if (again.reused) reused++;
      }
      assert.equal(reused, 10, `${maxVersion}: every resumption accepted`);
    }
  });

  it('rotates the ticket keys on request: older tickets get a full handshake on every worker, new ones resume', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const before = await handshake(tlsPort, { servername: 'a.example.test', maxVersion });
      assert.ok(before.session);
      assert.equal((await handshake(tlsPort, { maxVersion, session: before.session })).reused, true);
      const r = await run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, 'tickets', 'rotate']);
      assert.match(r.stdout, /workers: +2/);
      // The answer comes once both workers use the new keys: no attempt, on either, resumes.
      for (let i = 0; i < 10; i++) {
        const old = await handshake(tlsPort, {
          servername: 'a.example.test',
          maxVersion,
          session: before.session,
        });
        assert.equal(
          old.reused,
          false,
          `${maxVersion}: a ticket from before the rotation resumed (attempt ${i})`,
        );
      }
      const after = await handshake(tlsPort, { servername: 'a.example.test', maxVersion });
      let reused = 0;
      for (let i = 0; i < 10; i++) {
        if (
          (await handshake(tlsPort, { servername: 'a.example.test', maxVersion, session: after.session }))
            .reused
        )
          reused++;
      }
      assert.equal(reused, 10, `${maxVersion}: tickets issued after the rotation resume on every worker`);
    }
  });

  it('rejects a mismatched key, an expired certificate and garbage by name, changing nothing', async () => {
    const before = await ok(kakehi.socketPath, 'list_certificates');
    const mismatched = await command(kakehi.socketPath, 'add_certificate', {
      certificate: { listener: HTTPS, certificate: rsa.fullchainPem, key: ecdsa.keyPem },
    });
    assert.equal(mismatched.status, 'error');
    assert.ok(
      mismatched.error?.issues?.some((i) => i.path.endsWith('certificate.key') && /match/.test(i.reason)),
    );

    const old = issueCert(ca, ['old.test'], {
      keyType: 'ec',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const expired = await command(kakehi.socketPath, 'add_certificate', {
      certificate: { listener: HTTPS, certificate: old.fullchainPem, key: old.keyPem },
    });
    assert.equal(expired.status, 'error');
    assert.ok(
      expired.error?.issues?.some((i) => /expired/.test(i.reason)),
      JSON.stringify(expired.error),
    );

    const garbage = await command(kakehi.socketPath, 'add_certificate', {
      certificate: { listener: HTTPS, certificate: '-----BEGIN CERTIFICATE-----\nnot base64\n', key: 'nope' },
    });
    assert.equal(garbage.status, 'error');
    assert.ok(garbage.error?.issues?.some((i) => i.path.endsWith('certificate.certificate')));

    // Never a key in the error text.
    for (const f of [mismatched, expired, garbage]) {
      assert.doesNotMatch(JSON.stringify(f), /-----BEGIN/);
      assert.equal(JSON.stringify(f).includes(ecdsa.keyPem.split('\n')[1]!), false);
    }
    assert.deepEqual(await ok(kakehi.socketPath, 'list_certificates'), before);

    // An expired certificate is admitted only when asked for explicitly.
    const allowed = await command(kakehi.socketPath, 'add_certificate', {
      certificate: { listener: HTTPS, certificate: old.fullchainPem, key: old.keyPem, allow_expired: true },
    });
    assert.equal(allowed.status, 'ok', JSON.stringify(allowed.error));
    await ok(kakehi.socketPath, 'remove_certificate', { listener: HTTPS, fingerprint: old.fingerprint });
  });

  it('keeps private keys out of answers and logs', async () => {
    const state = await ok(kakehi.socketPath, 'get_state');
    const certs = await ok(kakehi.socketPath, 'list_certificates');
    const text = JSON.stringify([state, certs, kakehi.logs]);
    assert.doesNotMatch(text, /PRIVATE KEY/);
    for (const c of [rsa, ecdsa, wildcard, other]) {
      const line = c.keyPem.split('\n')[1]!;
      assert.equal(text.includes(line), false);
    }
    const listed = (
      certs['certificates'] as { fingerprint: string; names: string[]; not_after: string }[]
    ).find((c) => c.fingerprint === wildcard.fingerprint);
    assert.deepEqual(listed?.names, ['*.wild.test']);
    assert.ok(listed && Date.parse(listed.not_after) > Date.now());
  });

  it('lists certificates with ctl', async () => {
    const r = await run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, 'certificates']);
    assert.match(r.stdout, /a\.example\.test/);
    assert.match(r.stdout, /\*\.wild\.test/);
    assert.match(r.stdout, new RegExp(wildcard.fingerprint.slice(0, 16)));
    assert.doesNotMatch(r.stdout, /PRIVATE/);
  });

  it('replaces a certificate under a stream of new connections: every handshake succeeds, the serial changes once', async () => {
    const v1 = issueCert(ca, ['hot.test'], { keyType: 'ec' });
    const v2 = issueCert(ca, ['hot.test'], { keyType: 'ec' });
    await ok(kakehi.socketPath, 'transaction', { changes: [put(v1)] });
    const serials: string[] = [];
    let stop = false;
    let failures = 0;
    const loop = (async () => {
      while (!stop || (serials.length < 20 && failures === 0)) {
        try {
          serials.push((await handshake(tlsPort, { servername: 'hot.test', ca: ca.certPem })).serial);
        } catch {
          failures++;
        }
        if (stop && (serials.at(-1) === v2.serial || failures > 0)) break;
      }
    })();
    try {
      while (serials.length < 20 && failures === 0) await new Promise((r) => setImmediate(r));
      await ok(kakehi.socketPath, 'replace_certificate', {
        certificate: { listener: HTTPS, certificate: v2.fullchainPem, key: v2.keyPem },
        old_fingerprint: v1.fingerprint,
      });
      // Acknowledged means every worker serves it: the next handshake must see v2.
      const next = await handshake(tlsPort, { servername: 'hot.test' });
      assert.equal(next.serial, v2.serial);
    } finally {
      // Also when something above failed: a loop left running would keep this file's process alive.
      stop = true;
      await loop;
    }
    assert.equal(failures, 0);
    const changes = serials.filter((s, i) => i > 0 && s !== serials[i - 1]).length;
    assert.equal(serials[0], v1.serial);
    assert.equal(serials.at(-1), v2.serial);
    assert.equal(changes, 1, `served serials: ${serials.join(' ')}`);
  });

  it('answers 421 under strict SNI when Host is not a name of the served certificate', async () => {
    const strict = await startKakehi({
      listeners: [{ address: HTTPS, protocol: 'https', strict_sni: true }],
      clusters: [{ id: 'app', backends: [{ id: 'b', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'app' }],
      access_log: 'off',
    });
    try {
      await ok(strict.socketPath, 'transaction', { changes: [put(wildcard)] });
      assert.equal(
        (await httpsGet(strict.port, '/', { servername: 'x.wild.test', host: 'y.wild.test' })).status,
        200,
      );
      const mis = await httpsGet(strict.port, '/', { servername: 'x.wild.test', host: 'a.example.test' });
      assert.equal(mis.status, 421);
      // With no default certificate, unknown names get the self-signed one, and a warning said so.
      const h = await handshake(strict.port, { servername: 'nobody.test' });
      assert.equal(h.cert.subject?.CN, 'localhost');
      assert.ok(strict.logs.some((l) => /no default certificate/.test(String(l.msg))));
    } finally {
      await strict.stop();
    }
  });

  it('refuses TLS 1.0 in tls_versions with the reason, and a certificate on an http listener', async () => {
    const r = await command(kakehi.socketPath, 'add_http_listener', {
      listener: { address: '127.0.0.3:0', protocol: 'https', tls_versions: ['1.0', '1.3'] },
    });
    assert.equal(r.status, 'error');
    assert.match(JSON.stringify(r.error?.issues), /RFC 8996/);
    const onHttp = await command(kakehi.socketPath, 'add_certificate', {
      certificate: { listener: HTTP, certificate: other.fullchainPem, key: other.keyPem },
    });
    assert.equal(onHttp.status, 'error');
    assert.match(JSON.stringify(onHttp.error?.issues), /https listeners/);
  });

  it('adds an HTTPS listener at runtime and serves 1.3 only when asked', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    const added = await ok(kakehi.socketPath, 'transaction', {
      changes: [
        {
          op: 'put_listener',
          listener: { address: address, protocol: 'https', tls_versions: ['1.3'] },
        },
        put(other, { listener: address, default: true }),
      ],
    });
    assert.ok(added);
    const listeners = (await ok(kakehi.socketPath, 'list_listeners'))['listeners'] as {
      address: string;
      port: number;
    }[];
    const port = listeners.find((l) => l.address === address)!.port;
    assert.equal((await opensslAccepts(port, '-tls1_2')).ok, false);
    assert.equal((await opensslAccepts(port, '-tls1_3')).ok, true);
    const res = await httpsGet(port, '/', {
      servername: 'default.test',
      host: 'default.test',
      ca: ca.certPem,
    });
    assert.equal(res.status, 200);
  });

  it('switches a listener from http to https and back at runtime; a request in flight across a switch completes', async () => {
    const holder = await gatedBackend('held', {
      holds: (req) => req.url === '/hold',
      answer: (res) => {
        res.writeHead(200, { 'content-length': '4' });
        res.end('done');
      },
    });
    const port = await closedPort();
    const address = `127.0.0.1:${port}`;
    const refuses = async (p: Promise<unknown>, what: string) =>
      assert.equal(
        await p.then(
          () => 'answered',
          () => 'refused',
        ),
        'refused',
        what,
      );
    try {
      await ok(kakehi.socketPath, 'transaction', {
        changes: [
          { op: 'put_listener', listener: { address } },
          { op: 'put_cluster', cluster: { id: 'held' } },
          { op: 'put_backend', backend: { cluster: 'held', id: 'h', address: holder.address } },
          { op: 'put_frontend', frontend: { hostname: 'held.test', cluster: 'held' } },
        ],
      });
      assert.equal((await httpGet(port, '/', { host: 'a.example.test' })).status, 200);
      const inFlight = httpGet(port, '/hold', { host: 'held.test' });
      await holder.holding;

      // To https, with its certificate in the same transaction, on the same port.
      await ok(kakehi.socketPath, 'transaction', {
        changes: [
          { op: 'put_listener', listener: { address, protocol: 'https' } },
          put(other, { listener: address, default: true }),
        ],
      });
      const tls = await httpsGet(port, '/', {
        servername: 'default.test',
        host: 'default.test',
        ca: ca.certPem,
      });
      assert.equal(tls.status, 200);
      assert.equal(
        (JSON.parse(tls.body) as { headers: Record<string, string> }).headers['x-forwarded-proto'],
        'https',
      );
      await refuses(httpGet(port, '/', { host: 'a.example.test' }), 'plain HTTP on the https listener');
      // The request that arrived over plain HTTP before the switch still gets its answer.
      holder.release();
      const done = await inFlight;
      assert.equal(done.status, 200);
      assert.equal(done.body, 'done');

      // And back to http: the listener's certificates go in the same transaction.
      await ok(kakehi.socketPath, 'transaction', {
        changes: [
          { op: 'delete_certificate', listener: address, fingerprint: other.fingerprint },
          { op: 'put_listener', listener: { address, protocol: 'http' } },
        ],
      });
      assert.equal((await httpGet(port, '/', { host: 'a.example.test' })).status, 200);
      await refuses(handshake(port, { servername: 'default.test' }), 'a TLS handshake on the http listener');
      const left = (await ok(kakehi.socketPath, 'list_certificates'))['certificates'] as {
        listener: string;
      }[];
      assert.equal(left.filter((c) => c.listener === address).length, 0);
    } finally {
      holder.release();
      await ok(kakehi.socketPath, 'transaction', {
        changes: [
          { op: 'delete_frontend', frontend: { hostname: 'held.test' } },
          { op: 'delete_backend', cluster: 'held', id: 'h' },
          { op: 'delete_cluster', id: 'held' },
          { op: 'delete_listener', address },
        ],
      }).catch(() => undefined);
      await holder.close();
    }
  });

  it('switches protocol back and forth under a stream of connections: every switch applies, no connection is refused', async () => {
    const port = await closedPort();
    const address = `127.0.0.1:${port}`;
    await ok(kakehi.socketPath, 'transaction', { changes: [{ op: 'put_listener', listener: { address } }] });
    // A switch whose transaction fails elsewhere (a port another process holds) is undone:
    // the socket goes back to the http listener, which serves on.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const held = `127.0.0.1:${(squatter.address() as { port: number }).port}`;
    const failed = await command(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'put_listener', listener: { address, protocol: 'https' } },
        put(other, { listener: address, default: true }),
        { op: 'put_listener', listener: { address: held } },
      ],
    });
    squatter.close();
    assert.equal(failed.status, 'error');
    assert.match(JSON.stringify(failed.error), /EADDRINUSE/);
    assert.equal((await httpGet(port, '/', { host: 'a.example.test' })).status, 200);
    let switching = true;
    const seen = { accepted: 0, refused: 0, other: [] as string[] };
    // One connection at a time, opened and closed, for as long as the switches go on.
    const stream = (async () => {
      while (switching) {
        await new Promise<void>((resolve) => {
          const c = connect(port, '127.0.0.1');
          c.once('connect', () => {
            seen.accepted++;
            c.destroy();
            resolve();
          });
          c.once('error', (e: NodeJS.ErrnoException) => {
            if (e.code === 'ECONNREFUSED') seen.refused++;
            else seen.other.push(String(e.code));
            resolve();
          });
        });
      }
    })();
    try {
      // Each worker closing and binding again raced in main; 30 switches over 2 workers met it.
      for (let i = 0; i < 30; i++) {
        const https = i % 2 === 0;
        await ok(kakehi.socketPath, 'transaction', {
          changes: https
            ? [
                { op: 'put_listener', listener: { address, protocol: 'https' } },
                put(other, { listener: address, default: true }),
              ]
            : [
                { op: 'delete_certificate', listener: address, fingerprint: other.fingerprint },
                { op: 'put_listener', listener: { address, protocol: 'http' } },
              ],
        });
      }
    } finally {
      switching = false;
      await stream;
    }
    assert.equal(seen.refused, 0, 'no connection refused while the listener switched');
    assert.deepEqual(seen.other, []);
    assert.ok(seen.accepted > 0);
    assert.equal((await httpGet(port, '/', { host: 'a.example.test' })).status, 200);
    await ok(kakehi.socketPath, 'transaction', { changes: [{ op: 'delete_listener', address }] });
  });
});

describe('TLS metrics', () => {
  it('counts handshakes by version, failures by reason, and exposes each certificate expiry', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const leaf = issueCert(ca, ['m.test'], { keyType: 'ec' });
    const backend = await echoBackend('b');
    const kakehi = await startKakehi({
      listeners: [{ address: HTTPS, protocol: 'https' }],
      clusters: [{ id: 'app', backends: [{ id: 'b', address: backend.address }] }],
      frontends: [{ hostname: '*', cluster: 'app' }],
      access_log: 'off',
    });
    try {
      await ok(kakehi.socketPath, 'transaction', {
        changes: [put(leaf, { default: true })],
      });
      for (let i = 0; i < 3; i++)
        await handshake(kakehi.port, { servername: 'm.test', maxVersion: 'TLSv1.3' });
      for (let i = 0; i < 2; i++)
        await handshake(kakehi.port, { servername: 'm.test', maxVersion: 'TLSv1.2' });
      assert.equal((await opensslAccepts(kakehi.port, '-tls1_1')).ok, false);
      const r = (await ok(kakehi.socketPath, 'query_metrics')) as {
        families: { name: string; samples: { labels: Record<string, string>; value: number }[] }[];
      };
      const samples = (name: string) => r.families.find((f) => f.name === name)?.samples ?? [];
      const byVersion = (v: string) =>
        samples('kakehi_tls_handshakes_total')
          .filter((s) => s.labels['version'] === v)
          .reduce((a, s) => a + s.value, 0);
      assert.equal(byVersion('TLSv1.3'), 3);
      assert.equal(byVersion('TLSv1.2'), 2);
      for (const s of samples('kakehi_tls_handshakes_total'))
        assert.match(s.labels['cipher'] ?? '', /GCM|CHACHA20/);
      const failures = samples('kakehi_tls_handshake_failures_total');
      assert.deepEqual(
        failures.map((s) => [s.labels['reason'], s.value]),
        [['unsupported_protocol', 1]],
      );
      const expiry = samples('kakehi_certificate_expiry_timestamp_seconds');
      assert.equal(expiry.length, 1);
      assert.equal(expiry[0]!.labels['fingerprint'], leaf.fingerprint);
      const notAfter = new X509Certificate(leaf.certPem).validTo;
      assert.equal(expiry[0]!.value, Date.parse(notAfter) / 1000);
    } finally {
      await kakehi.stop();
      await backend.close();
    }
  });
});

describe('certificates across reloads and restarts', () => {
  it('a SIGHUP reload serves a renewed certificate file; the state file keeps runtime certificates (mode 0600) for a restart', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const v1 = issueCert(ca, ['conf.test'], { keyType: 'ec' });
    const v2 = issueCert(ca, ['conf.test'], { keyType: 'ec', days: 400 });
    const runtime = issueCert(ca, ['runtime.test'], { keyType: 'ec' });
    const certPath = join(ca.dir, 'conf.crt');
    const keyPath = join(ca.dir, 'conf.key');
    writeFileSync(certPath, v1.fullchainPem);
    writeFileSync(keyPath, v1.keyPem);
    const stateFile = join(ca.dir, 'state.json');
    const address = `127.0.0.1:${await closedPort()}`;
    const config = {
      listeners: [{ address, protocol: 'https' }],
      certificates: [{ listener: address, certificate_file: certPath, key_file: keyPath }],
      state_file: stateFile,
      access_log: 'off',
    };
    const first = await startKakehi(config);
    try {
      assert.equal((await handshake(first.port, { servername: 'conf.test' })).serial, v1.serial);
      await ok(first.socketPath, 'add_certificate', {
        certificate: { listener: address, certificate: runtime.fullchainPem, key: runtime.keyPem },
      });
      // certbot-style renewal of the configured files, then SIGHUP.
      writeFileSync(certPath, v2.fullchainPem);
      writeFileSync(keyPath, v2.keyPem);
      first.proc.kill('SIGHUP');
      await first.waitLog((l) => l.msg === 'SIGHUP reload applied');
      assert.equal((await handshake(first.port, { servername: 'conf.test' })).serial, v2.serial);
      // The runtime certificate survives the reload: it is not the file's to remove.
      assert.equal((await handshake(first.port, { servername: 'runtime.test' })).serial, runtime.serial);
    } finally {
      await first.stop();
    }
    assert.equal(statSync(stateFile).mode & 0o777, 0o600);
    const second = await startKakehi(config);
    try {
      assert.equal((await handshake(second.port, { servername: 'runtime.test' })).serial, runtime.serial);
      const listed = (await ok(second.socketPath, 'list_certificates'))['certificates'] as {
        source: string;
        names: string[];
      }[];
      assert.deepEqual(listed.map((c) => [c.names[0], c.source]).sort(), [
        ['conf.test', 'config'],
        ['runtime.test', 'runtime'],
      ]);
    } finally {
      await second.stop();
    }
  });

  it('a session ticket from one worker resumes on a worker started after it (the keys come from main)', async () => {
    const ca = makeCa({ keyType: 'ec' });
    const leaf = issueCert(ca, ['resume.test'], { keyType: 'ec' });
    const address = `127.0.0.1:${await closedPort()}`;
    const kakehi = await startKakehi({ listeners: [{ address, protocol: 'https' }], access_log: 'off' });
    try {
      await ok(kakehi.socketPath, 'add_certificate', {
        certificate: { listener: address, certificate: leaf.fullchainPem, key: leaf.keyPem, default: true },
      });
      const sessions = [];
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const h = await handshake(kakehi.port, { servername: 'resume.test', maxVersion });
        assert.ok(h.session);
        sessions.push({ maxVersion, session: h.session });
      }
      const [victim] = (await ok(kakehi.socketPath, 'status'))['workers'] as { pid: number }[];
      const restarted = kakehi.waitLog((l) => l.msg === 'worker restarted');
      process.kill(victim!.pid, 'SIGKILL');
      await restarted;
      for (const { maxVersion, session } of sessions) {
        const again = await handshake(kakehi.port, { servername: 'resume.test', maxVersion, session });
        assert.equal(again.reused, true, `${maxVersion} session resumed by the new worker`);
      }
    } finally {
      await kakehi.stop();
    }
  });
});

describe('TLS handshakes and shutdown', () => {
  it('a client stuck halfway through its ClientHello does not hold up a SIGTERM drain; a client that leaves early is counted', {
    timeout: 60_000,
  }, async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    // A head timeout of an hour: only the drain can end the stuck handshake.
    const kakehi = await startKakehi({
      listeners: [{ address, protocol: 'https', request_head_timeout_ms: 3_600_000 }],
      access_log: 'off',
    });
    const leaver = connect(kakehi.port, '127.0.0.1');
    await once(leaver, 'connect');
    leaver.end(Buffer.from([22, 3, 1, 0, 200, 1])); // half a record, then FIN: a truncated hello
    leaver.resume(); // its decode_error alert comes before the close
    await once(leaver, 'close');
    await eventuallyCounted(kakehi.socketPath, 'truncated');
    const stuck = connect(kakehi.port, '127.0.0.1');
    await once(stuck, 'connect');
    stuck.write(Buffer.from([22, 3, 1, 0, 200, 1]));
    stuck.on('error', () => {});
    const closed = once(stuck, 'close');
    assert.equal(await kakehi.stop('SIGTERM'), 0);
    await closed;
  });
});

/** Polls query_metrics until a handshake failure with `reason` is counted (the event is asynchronous). */
async function eventuallyCounted(socketPath: string, reason: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no handshake failure counted with reason ${reason}`);
    const r = (await ok(socketPath, 'query_metrics', { names: ['kakehi_tls_handshake_failures_total'] })) as {
      families: { samples: { labels: Record<string, string>; value: number }[] }[];
    };
    const n = r.families[0]?.samples.find((s) => s.labels['reason'] === reason)?.value ?? 0;
    if (n > 0) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
