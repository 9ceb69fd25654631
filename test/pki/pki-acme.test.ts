// End to end with a real ACME flow on loopback, nothing faked: Debian's pebble
// issues, its http-01 challenge is answered through kakehi (pebble resolves the
// name with pebble-challtestsrv as DNS, connects to kakehi's HTTP listener, which
// routes /.well-known/acme-challenge/ to certbot's standalone server), certbot
// writes live/ (symlinks into archive/), the connector picks it up, and kakehi
// serves it to a TLS client that trusts only pebble's root. Then `certbot renew`
// swaps the symlinks and the renewed certificate replaces the first.
//
// Needs pebble, pebble-challtestsrv and certbot: scripts/acme/install.sh.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { derSha256 } from '../helpers/certs.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { eventually, freePort, type PkiProcess, startPki, waitServed } from '../helpers/pki.js';

const run = promisify(execFile);
const NAME = 'app.acme.test';
const missing = ['pebble', 'pebble-challtestsrv', 'certbot', 'openssl'].filter(
  (b) => spawnSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' }).status !== 0,
);

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { ca, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('pki connector with pebble and certbot', { timeout: 240_000 }, () => {
  const procs: ChildProcess[] = [];
  let dir: string;
  let kakehi: Kakehi;
  let pki: PkiProcess;
  let pebbleCa: string;
  let ports: Record<'dir' | 'mgmt' | 'http' | 'tls' | 'dns' | 'challMgmt' | 'certbot' | 'https', number>;
  const certbot = (args: string[]) =>
    run(
      'certbot',
      [
        ...args,
        '--server',
        `https://127.0.0.1:${ports.dir}/dir`,
        '--standalone',
        '--http-01-port',
        String(ports.certbot),
        '--http-01-address',
        '127.0.0.1',
        '--register-unsafely-without-email',
        '--agree-tos',
        '--non-interactive',
        '--config-dir',
        join(dir, 'le'),
        '--work-dir',
        join(dir, 'work'),
        '--logs-dir',
        join(dir, 'logs'),
      ],
      { env: { ...process.env, REQUESTS_CA_BUNDLE: join(dir, 'pebble-cert.pem') }, timeout: 120_000 },
    );

  before(async () => {
    if (missing.length > 0) return;
    dir = mkdtempSync(join(tmpdir(), 'pki-acme-'));
    ports = {
      dir: await freePort(),
      mgmt: await freePort(),
      http: await freePort(),
      tls: await freePort(),
      dns: await freePort(),
      challMgmt: await freePort(),
      certbot: await freePort(),
      https: await freePort(),
    };
    // pebble serves its own API over TLS: a throwaway certificate for 127.0.0.1.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'pebble-key.pem',
        '-out',
        'pebble-cert.pem',
        '-days',
        '30',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    pebbleCa = readFileSync(join(dir, 'pebble-cert.pem'), 'utf8');
    writeFileSync(
      join(dir, 'pebble.json'),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${ports.dir}`,
          managementListenAddress: `127.0.0.1:${ports.mgmt}`,
          certificate: join(dir, 'pebble-cert.pem'),
          privateKey: join(dir, 'pebble-key.pem'),
          // Where pebble's validator connects for http-01: kakehi's HTTP listener.
          httpPort: ports.http,
          tlsPort: ports.tls,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );
    const log = (name: string, p: ChildProcess) => {
      const lines: string[] = [];
      p.stdout?.on('data', (d: Buffer) => lines.push(d.toString()));
      p.stderr?.on('data', (d: Buffer) => lines.push(d.toString()));
      p.on('exit', () => writeFileSync(join(dir, `${name}.log`), lines.join('')));
      procs.push(p);
    };
    // DNS only: every name resolves to 127.0.0.1 (no AAAA, so no ::1 attempt).
    log(
      'challtestsrv',
      spawn('pebble-challtestsrv', [
        '-defaultIPv4',
        '127.0.0.1',
        '-defaultIPv6',
        '',
        '-dns01',
        `127.0.0.1:${ports.dns}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
        '-management',
        `127.0.0.1:${ports.challMgmt}`,
      ]),
    );
    log(
      'pebble',
      spawn('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${ports.dns}`], {
        // No sleeping before validation, and no deliberately rejected nonces.
        env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      }),
    );
    await eventually(
      async () => assert.equal((await httpsGet(`https://127.0.0.1:${ports.dir}/dir`, pebbleCa)).status, 200),
      {
        what: 'pebble directory',
      },
    );

    kakehi = await startKakehi({
      listeners: [
        { address: `127.0.0.1:${ports.http}` },
        { address: `127.0.0.1:${ports.https}`, protocol: 'https' },
      ],
      clusters: [{ id: 'acme', backends: [{ id: 'certbot', address: `127.0.0.1:${ports.certbot}` }] }],
      frontends: [
        {
          hostname: NAME,
          path: '/.well-known/acme-challenge/',
          cluster: 'acme',
          listener: `127.0.0.1:${ports.http}`,
        },
      ],
    });
    // The connector watches certbot's config dir before certbot has created it.
    pki = await startPki(['-s', kakehi.socketPath, '--settle-ms', '300', join(dir, 'le')]);
  });

  after(async () => {
    await pki?.stop();
    await kakehi?.stop();
    for (const p of procs) p.kill('SIGTERM');
  });

  it('certbot gets a certificate through kakehi, the connector loads it, kakehi serves it; renewal replaces it', async () => {
    assert.deepEqual(missing, [], `missing ${missing.join(', ')}: run scripts/acme/install.sh (as root)`);
    await certbot(['certonly', '-d', NAME]);
    const live = join(dir, 'le', 'live', NAME);
    assert.match(realpathSync(join(live, 'fullchain.pem')), /archive\/app\.acme\.test\/fullchain1\.pem$/);
    const challenge = kakehi.access.find((l) => String(l['path']).startsWith('/.well-known/acme-challenge/'));
    assert.equal(challenge?.['status'], 200, 'pebble validated http-01 through kakehi');
    assert.equal(challenge?.['cluster'], 'acme');

    const root = (await httpsGet(`https://127.0.0.1:${ports.mgmt}/roots/0`, pebbleCa)).body;
    assert.match(root, /BEGIN CERTIFICATE/);
    const first = derSha256(readFileSync(join(live, 'cert.pem'), 'utf8'));
    const served = await waitServed(ports.https, NAME, first, { ca: root, timeoutMs: 30_000 });
    assert.equal(
      served.authorized,
      true,
      `a client trusting pebble's root only: ${served.authorizationError}`,
    );

    await certbot(['renew', '--force-renewal', '--no-random-sleep-on-renew']);
    assert.match(realpathSync(join(live, 'fullchain.pem')), /fullchain2\.pem$/);
    const second = derSha256(readFileSync(join(live, 'cert.pem'), 'utf8'));
    assert.notEqual(second, first);
    const renewed = await waitServed(ports.https, NAME, second, { ca: root, timeoutMs: 30_000 });
    assert.equal(renewed.authorized, true);
    const status = await pki.status();
    assert.deepEqual(
      status.pairs.map((p) => [p.layout, p.state]),
      [['certbot', 'ok']],
      'one pair: archive/, keys/, accounts/ are not read as pairs',
    );
  });
});
