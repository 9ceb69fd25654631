// The PKI connector against a real kakehi process, with real files and real TLS
// handshakes: new certificate, certbot renewal by symlink swap, a half-written file,
// deletion, an invalid key, a connector restart with deletions made while it was
// down, and a proxy restart. Every proof is a poll with a generous deadline.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { issueCert, makeCa, type TestCa, type TestCert } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { CLI, type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import {
  eventually,
  freePort,
  type PkiProcess,
  servedCertificate,
  startPki,
  waitServed,
  withLogs,
  writeAtomic,
} from '../helpers/pki.js';
import { promtoolCheck } from '../helpers/prometheus.js';
import { handshake } from '../helpers/tls-client.js';

const SETTLE_MS = 300;
const run = promisify(execFile);

interface Held {
  listener: string;
  fingerprint: string;
  names: string[];
  source: string;
  default: boolean;
}

async function held(k: Kakehi): Promise<Held[]> {
  const r = await ok(k.socketPath, 'list_certificates');
  return r['certificates'] as Held[];
}

async function pkiHeld(k: Kakehi): Promise<string[]> {
  return (await held(k))
    .filter((c) => c.source === 'pki')
    .map((c) => c.fingerprint)
    .sort();
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A certbot config directory for one name: archive/ holds versions, live/ links to one. */
function certbotTree(name: string) {
  const le = tempDir('pki-le-');
  mkdirSync(join(le, 'archive', name), { recursive: true });
  mkdirSync(join(le, 'live', name), { recursive: true });
  return {
    le,
    archive(n: number, leaf: TestCert) {
      writeFileSync(join(le, 'archive', name, `cert${n}.pem`), leaf.certPem);
      writeFileSync(join(le, 'archive', name, `chain${n}.pem`), leaf.chainPem);
      writeFileSync(join(le, 'archive', name, `fullchain${n}.pem`), leaf.fullchainPem);
      writeFileSync(join(le, 'archive', name, `privkey${n}.pem`), leaf.keyPem, { mode: 0o600 });
    },
    /** As certbot renews: each live/ link removed and made again to the new version. */
    link(n: number) {
      for (const f of ['cert', 'chain', 'fullchain', 'privkey']) {
        const p = join(le, 'live', name, `${f}.pem`);
        rmSync(p, { force: true });
        symlinkSync(join('..', '..', 'archive', name, `${f}${n}.pem`), p);
      }
    },
  };
}

/**
 * A Kubernetes secret volume as the kubelet writes it: the files live in a hidden
 * timestamped directory, `..data` links to it, and tls.crt / tls.key link through
 * `..data`. An update writes a new directory and renames a new `..data` link over
 * the old one, so the visible links themselves never change.
 */
function secretVolume(dir: string, version: number, leaf: TestCert): void {
  const data = `..2026_11_27_v${version}`;
  mkdirSync(join(dir, data));
  writeFileSync(join(dir, data, 'tls.crt'), leaf.fullchainPem);
  writeFileSync(join(dir, data, 'tls.key'), leaf.keyPem);
  symlinkSync(data, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (version === 1) {
    symlinkSync(join('..data', 'tls.crt'), join(dir, 'tls.crt'));
    symlinkSync(join('..data', 'tls.key'), join(dir, 'tls.key'));
  } else {
    rmSync(join(dir, `..2026_11_27_v${version - 1}`), { recursive: true });
  }
}

describe('pki connector against a real proxy', { timeout: 180_000 }, () => {
  let ca: TestCa;
  let kakehi: Kakehi;
  let port: number;
  const connectors: PkiProcess[] = [];
  const pki = async (args: string[]) => {
    const p = await startPki(['-s', kakehi.socketPath, '--settle-ms', String(SETTLE_MS), ...args], {
      logLevel: 'debug',
    });
    connectors.push(p);
    return p;
  };

  before(async () => {
    ca = makeCa();
    port = await freePort();
    kakehi = await startKakehi({ listeners: [{ address: `127.0.0.1:${port}`, protocol: 'https' }] });
  });
  after(async () => {
    for (const c of connectors) await c.stop();
    await kakehi?.stop();
  });

  it('a new certificate is served shortly after it is written', async () => {
    const dir = tempDir('pki-new-');
    const c = await pki([dir]);
    await eventually(async () => assert.equal((await c.status()).connected, true), { what: 'connected' });
    const leaf = issueCert(ca, ['new.pki.test']);
    const t0 = Date.now();
    writeAtomic(join(dir, 'new.key'), leaf.keyPem);
    writeAtomic(join(dir, 'new.crt'), leaf.fullchainPem);
    const served = await waitServed(port, 'new.pki.test', leaf.fingerprint, { ca: ca.certPem });
    const ms = Date.now() - t0;
    assert.equal(served.authorized, true, served.authorizationError);
    console.log(`# new certificate served ${ms} ms after its files were written (settle ${SETTLE_MS} ms)`);
    const h = (await held(kakehi)).find((x) => x.fingerprint === leaf.fingerprint);
    assert.equal(h?.source, 'pki');
    assert.deepEqual(h?.names, ['new.pki.test']);
    await c.stop();
  });

  it('certbot renewal by symlink swap: every handshake succeeds, the serial changes once, the old one goes', async () => {
    const name = 'renew.pki.test';
    const { le, archive, link } = certbotTree(name);
    const v1 = issueCert(ca, [name]);
    const v2 = issueCert(ca, [name]);
    archive(1, v1);
    link(1);
    const c = await pki([le]);
    await waitServed(port, name, v1.fingerprint);

    // Handshakes in a loop while certbot renews.
    const seen: string[] = [];
    let failures = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const s = await servedCertificate(port, name);
          if (seen[seen.length - 1] !== s.fingerprint) seen.push(s.fingerprint);
        } catch {
          failures++;
        }
      }
    })();
    try {
      archive(2, v2);
      link(2);
      await withLogs(c, async () => {
        await waitServed(port, name, v2.fingerprint);
        await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [v2.fingerprint].sort()), {
          what: 'the old certificate to be deleted',
        });
      });
    } finally {
      // Also when the wait fails: a loop left running would keep this file's process alive.
      stop = true;
      await loop;
    }
    assert.equal(failures, 0);
    assert.deepEqual(seen, [v1.fingerprint, v2.fingerprint], 'served v1, then v2, nothing else in between');
    const status = await c.status();
    assert.equal(status.pairs.length, 1, 'archive/ is not read as pairs');
    assert.equal(status.pairs[0]?.layout, 'certbot');
    await c.stop();
    await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [v2.fingerprint]));
  });

  it('without watch events (--no-watch), the stat check finds a renewal and counts it as unannounced', async () => {
    const name = 'unwatched.pki.test';
    const { le, archive, link } = certbotTree(name);
    const v1 = issueCert(ca, [name]);
    const v2 = issueCert(ca, [name]);
    archive(1, v1);
    link(1);
    // A rescan period far beyond the wait below: only the stat check can find v2.
    const c = await pki(['--no-watch', '--check-interval-ms', '200', '--rescan-interval-ms', '3600000', le]);
    await withLogs(c, async () => {
      await waitServed(port, name, v1.fingerprint);
      archive(2, v2);
      link(2);
      await waitServed(port, name, v2.fingerprint);
      await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [v2.fingerprint]));
      const metrics = await c.metrics();
      const unannounced = Number(/^kakehi_pki_unannounced_changes_total (\d+)/m.exec(metrics)?.[1]);
      assert.ok(unannounced >= 1, metrics);
      // What Prometheus scrapes passes Prometheus's own linter.
      const lint = promtoolCheck(metrics);
      assert.equal(lint.status, 0, lint.output);
      assert.match(metrics, /^process_resident_memory_bytes \d+/m);
      assert.equal((await c.status())['watch'], false);
    });
    await c.stop();
    await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [v2.fingerprint]));
  });

  it('a Kubernetes secret volume (tls.crt and tls.key through a ..data link) is served and its update replaces it', async () => {
    const dir = tempDir('pki-secret-');
    const name = 'secret.pki.test';
    const v1 = issueCert(ca, [name]);
    const v2 = issueCert(ca, [name]);
    secretVolume(dir, 1, v1);
    const c = await pki([dir]);
    await withLogs(c, async () => {
      await waitServed(port, name, v1.fingerprint);
      secretVolume(dir, 2, v2);
      await waitServed(port, name, v2.fingerprint);
      await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [v2.fingerprint]));
      const status = await c.status();
      assert.deepEqual(
        status.pairs.map((p) => p.pair.slice(dir.length)),
        ['/tls.crt'],
        'the hidden ..data and versioned directories are not pairs of their own',
      );
    });
    await c.stop();
    rmSync(dir, { recursive: true });
  });

  it("two connectors with different --source names keep each other's certificates", async () => {
    const d1 = tempDir('pki-src1-');
    const d2 = tempDir('pki-src2-');
    const x = issueCert(ca, ['x.source.pki.test']);
    const y = issueCert(ca, ['y.source.pki.test']);
    writeFileSync(join(d1, 'x.pem'), x.fullchainPem + x.keyPem);
    writeFileSync(join(d2, 'y.pem'), y.fullchainPem + y.keyPem);
    const c1 = await pki(['--source', 'pki-first', d1]);
    const c2 = await pki(['--source', 'pki-second', d2]);
    await waitServed(port, 'x.source.pki.test', x.fingerprint);
    await waitServed(port, 'y.source.pki.test', y.fingerprint);
    // Each connector reconciles again (a foreign change triggers it): neither deletes the other's.
    const z = issueCert(ca, ['z.source.pki.test']);
    writeFileSync(join(d1, 'z.pem'), z.fullchainPem + z.keyPem);
    await waitServed(port, 'z.source.pki.test', z.fingerprint);
    await eventually(async () => {
      const bySource = (await held(kakehi))
        .filter((h) => h.source.startsWith('pki-'))
        .map((h) => `${h.source} ${h.names[0]}`)
        .sort();
      assert.deepEqual(bySource, [
        'pki-first x.source.pki.test',
        'pki-first z.source.pki.test',
        'pki-second y.source.pki.test',
      ]);
    });
    assert.equal((await servedCertificate(port, 'y.source.pki.test')).fingerprint, y.fingerprint);
    const r = await run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, 'connectors']);
    assert.match(r.stdout, /^pki-first /m);
    assert.match(r.stdout, /^pki-second /m);
    await c1.stop();
    await c2.stop();
    // Their certificates stay until a connector of that name says otherwise; clean up for the tests after.
    const theirs = (await held(kakehi)).filter((h) => h.source.startsWith('pki-'));
    await ok(kakehi.socketPath, 'transaction', {
      changes: theirs.map((h) => ({
        op: 'delete_certificate',
        listener: h.listener,
        fingerprint: h.fingerprint,
      })),
    });
  });

  it("a default directory's certificate answers clients without SNI, where the self-signed one did", async () => {
    const dir = tempDir('pki-default-');
    const fallback = issueCert(ca, ['fallback.pki.test']);
    writeFileSync(join(dir, 'fallback.pem'), fallback.fullchainPem + fallback.keyPem);
    const before = await handshake(port, {});
    assert.notEqual(before.fingerprint, fallback.fingerprint);
    assert.match(String(before.cert.subject?.CN), /localhost/, 'the self-signed default, before');
    const c = await pki(['--source', 'pki-default', '--default', dir]);
    await withLogs(c, async () => {
      await eventually(
        async () => assert.equal((await handshake(port, {})).fingerprint, fallback.fingerprint),
        {
          what: 'the PKI default to answer a client without SNI',
        },
      );
      assert.equal((await servedCertificate(port, 'unknown.pki.test')).fingerprint, fallback.fingerprint);
      const h = (await held(kakehi)).find((x) => x.fingerprint === fallback.fingerprint);
      assert.equal(h?.default, true);
      const dirs = (await c.status())['directories'] as { default: boolean }[];
      assert.equal(dirs[0]?.default, true);
    });
    await c.stop();
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        { op: 'delete_certificate', listener: `127.0.0.1:${port}`, fingerprint: fallback.fingerprint },
      ],
    });
    rmSync(dir, { recursive: true });
  });

  it('SIGHUP reloads the settings: a directory added is served, one dropped is withdrawn, mistakes change nothing', async () => {
    const d1 = tempDir('pki-hup1-');
    const d2 = tempDir('pki-hup2-');
    const one = issueCert(ca, ['one.hup.pki.test']);
    const two = issueCert(ca, ['two.hup.pki.test']);
    writeFileSync(join(d1, 'one.pem'), one.fullchainPem + one.keyPem);
    writeFileSync(join(d2, 'two.pem'), two.fullchainPem + two.keyPem);
    const settings = join(tempDir('pki-hup-yaml-'), 'pki.yaml');
    const settle = (text: string) => writeFileSync(settings, `source: pki-hup\n${text}`);
    settle(`directories:\n  - ${d1}\n`);
    const c = await pki(['-c', settings]);
    const mine = async () =>
      (await held(kakehi))
        .filter((h) => h.source === 'pki-hup')
        .map((h) => h.fingerprint)
        .sort();
    const reloaded = async (n: number) =>
      eventually(() => assert.equal(c.logs.filter((l) => l.msg === 'settings reloaded').length, n), {
        what: `reload ${n}`,
      });
    await withLogs(c, async () => {
      await waitServed(port, 'one.hup.pki.test', one.fingerprint);
      // d1's pair turns invalid (a renewed certificate whose key never came): one keeps serving.
      const renewed = issueCert(ca, ['one.hup.pki.test']);
      writeFileSync(join(d1, 'one.pem'), renewed.fullchainPem + two.keyPem);
      await eventually(async () => {
        const p = (await c.status()).pairs.find((x) => x.pair.endsWith('one.pem'));
        assert.equal(p?.state, 'invalid');
      });

      settle(`directories:\n  - ${d1}\n  - ${d2}\n`);
      c.proc.kill('SIGHUP');
      await reloaded(1);
      await waitServed(port, 'two.hup.pki.test', two.fingerprint);
      // The reload kept what the connector knew: the invalid pair's last good certificate stays.
      assert.equal((await servedCertificate(port, 'one.hup.pki.test')).fingerprint, one.fingerprint);
      assert.deepEqual(await mine(), [one.fingerprint, two.fingerprint].sort());

      // A settings file with a mistake, and a change a reload cannot make: each refused, nothing moves.
      writeFileSync(settings, `source: pki-hup\ndirectories: [${d2}]\nsettle_ms: soon\n`);
      c.proc.kill('SIGHUP');
      await eventually(() =>
        assert.ok(c.logs.some((l) => l.msg === 'settings reload refused; the running settings stay')),
      );
      writeFileSync(settings, `source: pki-other\ndirectories: [${d2}]\n`);
      c.proc.kill('SIGHUP');
      await eventually(() =>
        assert.ok(
          c.logs.some((l) => String(l.msg).startsWith('settings reload refused: source cannot change')),
        ),
      );
      assert.deepEqual(await mine(), [one.fingerprint, two.fingerprint].sort());

      // d1 dropped from the settings: its certificate is withdrawn, d2's stays.
      settle(`directories:\n  - ${d2}\n`);
      c.proc.kill('SIGHUP');
      await reloaded(2);
      await eventually(async () => assert.deepEqual(await mine(), [two.fingerprint]), {
        what: "d1's certificate withdrawn",
      });
      assert.equal((await servedCertificate(port, 'two.hup.pki.test')).fingerprint, two.fingerprint);
      assert.equal(c.proc.exitCode, null, 'still running');
    });
    await c.stop();
    await ok(kakehi.socketPath, 'transaction', {
      changes: (await held(kakehi))
        .filter((h) => h.source === 'pki-hup')
        .map((h) => ({ op: 'delete_certificate', listener: h.listener, fingerprint: h.fingerprint })),
    });
  });

  it('a half-written file never removes the served certificate; the finished one replaces it', async () => {
    const dir = tempDir('pki-half-');
    const name = 'half.pki.test';
    const v1 = issueCert(ca, [name]);
    const v2 = issueCert(ca, [name]);
    writeFileSync(join(dir, 'half.crt'), v1.fullchainPem);
    writeFileSync(join(dir, 'half.key'), v1.keyPem);
    const c = await pki([dir]);
    await waitServed(port, name, v1.fingerprint);

    // Rewrite in place, stopping halfway through the certificate block.
    const fd = openSync(join(dir, 'half.crt'), 'w');
    const text = v2.fullchainPem;
    writeSync(fd, text.slice(0, Math.floor(text.length / 3)));
    await eventually(
      async () => {
        const p = (await c.status()).pairs.find((x) => x.pair.endsWith('half.crt'));
        assert.equal(p?.state, 'incomplete');
      },
      { what: 'the connector to see the half-written file' },
    );
    // Several settle windows later, v1 is still what every handshake gets.
    const until = Date.now() + 4 * SETTLE_MS;
    while (Date.now() < until) {
      assert.equal((await servedCertificate(port, name)).fingerprint, v1.fingerprint);
    }
    assert.deepEqual(await pkiHeld(kakehi), [v1.fingerprint]);
    writeSync(fd, text.slice(Math.floor(text.length / 3)));
    closeSync(fd);
    // The key of v2 follows the certificate (the order a careless script would use).
    writeFileSync(join(dir, 'half.key'), v2.keyPem);
    await waitServed(port, name, v2.fingerprint);
    await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [v2.fingerprint]));
    await c.stop();
    rmSync(dir, { recursive: true });
  });

  it('deletion: when the files stay gone past the settle window the certificate is removed', async () => {
    const dir = tempDir('pki-del-');
    const keep = issueCert(ca, ['keep.pki.test']);
    const gone = issueCert(ca, ['gone.pki.test']);
    writeFileSync(join(dir, 'keep.pem'), keep.fullchainPem + keep.keyPem);
    mkdirSync(join(dir, 'gone'));
    writeFileSync(join(dir, 'gone', 'gone.crt'), gone.fullchainPem);
    writeFileSync(join(dir, 'gone', 'gone.key'), gone.keyPem);
    const c = await pki([dir]);
    await waitServed(port, 'keep.pki.test', keep.fingerprint);
    await waitServed(port, 'gone.pki.test', gone.fingerprint);
    // Gone for less than the window (an editor's delete-and-recreate): still served throughout.
    unlinkSync(join(dir, 'gone', 'gone.crt'));
    writeFileSync(join(dir, 'gone', 'gone.crt'), gone.fullchainPem);
    const until = Date.now() + 3 * SETTLE_MS;
    while (Date.now() < until) {
      assert.equal((await servedCertificate(port, 'gone.pki.test')).fingerprint, gone.fingerprint);
    }
    rmSync(join(dir, 'gone'), { recursive: true });
    await eventually(
      async () => {
        const s = await servedCertificate(port, 'gone.pki.test');
        assert.notEqual(s.fingerprint, gone.fingerprint);
      },
      { what: 'gone.pki.test to stop being served' },
    );
    assert.deepEqual(await pkiHeld(kakehi), [keep.fingerprint]);
    assert.equal((await servedCertificate(port, 'keep.pki.test')).fingerprint, keep.fingerprint);
    await c.stop();
    rmSync(dir, { recursive: true });
  });

  it('an invalid key is reported (log, metric, status) and the previous good certificate keeps serving', async () => {
    const dir = tempDir('pki-bad-');
    const name = 'bad.pki.test';
    const good = issueCert(ca, [name]);
    const other = issueCert(ca, ['other.pki.test']);
    writeFileSync(join(dir, 'bad.crt'), good.fullchainPem);
    writeFileSync(join(dir, 'bad.key'), good.keyPem);
    writeFileSync(join(dir, 'never.crt'), other.fullchainPem);
    writeFileSync(join(dir, 'never.key'), good.keyPem);
    const c = await pki([dir]);
    await waitServed(port, name, good.fingerprint);
    const renewed = issueCert(ca, [name]);
    writeAtomic(join(dir, 'bad.crt'), renewed.fullchainPem); // its key never arrives
    await eventually(
      async () => {
        const s = await c.status();
        const p = s.pairs.find((x) => x.pair.endsWith('/bad.crt'));
        assert.equal(p?.state, 'invalid');
        assert.match(p?.last_error ?? '', /key: does not match/);
        assert.equal(p?.serving?.fingerprint, good.fingerprint);
        const never = s.pairs.find((x) => x.pair.endsWith('/never.crt'));
        assert.equal(never?.state, 'invalid');
        assert.equal(never?.serving, null);
      },
      { what: 'both pairs reported invalid' },
    );
    const metrics = await c.metrics();
    const invalid = Number(/kakehi_pki_invalid_pairs_total\{by="connector"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(invalid >= 2, metrics);
    assert.match(metrics, /kakehi_pki_pairs\{state="invalid"\} 2/);
    assert.ok(
      c.logs.some((l) => l.msg?.startsWith('invalid pair') && String(l['pair']).endsWith('never.crt')),
    );
    assert.ok(!JSON.stringify(c.logs).includes('PRIVATE KEY'), 'no key material in the logs');
    assert.equal((await servedCertificate(port, name)).fingerprint, good.fingerprint);
    assert.deepEqual(await pkiHeld(kakehi), [good.fingerprint]);
    assert.ok(!(await pkiHeld(kakehi)).includes(other.fingerprint));
    // The proxy shows them too, where operators already look: `kakehi ctl connectors`.
    await eventually(
      async () => {
        const r = await run(process.execPath, [CLI, 'ctl', '-s', kakehi.socketPath, 'connectors']);
        assert.match(r.stdout, /^pki +false|^pki +true/m);
        assert.match(r.stdout, /bad\.crt: invalid: key: does not match/);
        assert.match(r.stdout, /never\.crt: invalid/);
        assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
      },
      { what: 'the invalid pairs in kakehi ctl connectors' },
    );
    await c.stop();
    rmSync(dir, { recursive: true });
  });

  it('a connector restarted after deletions made while it was down removes them, and nothing else', async () => {
    const dir = tempDir('pki-restart-');
    const a = issueCert(ca, ['a.restart.pki.test']);
    const b = issueCert(ca, ['b.restart.pki.test']);
    for (const [n, leaf] of [
      ['a', a],
      ['b', b],
    ] as const) {
      writeFileSync(join(dir, `${n}.crt`), leaf.fullchainPem);
      writeFileSync(join(dir, `${n}.key`), leaf.keyPem);
    }
    // A certificate from another source must survive the reconcile.
    const manual = issueCert(ca, ['manual.pki.test']);
    await ok(kakehi.socketPath, 'transaction', {
      source: 'runtime',
      changes: [
        {
          op: 'put_certificate',
          certificate: {
            listener: `127.0.0.1:${port}`,
            certificate: manual.fullchainPem,
            key: manual.keyPem,
          },
        },
      ],
    });
    const c1 = await pki([dir]);
    await eventually(async () =>
      assert.deepEqual(await pkiHeld(kakehi), [a.fingerprint, b.fingerprint].sort()),
    );
    assert.equal(await c1.stop(), 0, 'SIGTERM is a clean stop');
    rmSync(join(dir, 'b.crt'));
    rmSync(join(dir, 'b.key'));
    const c2 = await pki([dir]);
    await eventually(async () => assert.deepEqual(await pkiHeld(kakehi), [a.fingerprint]), {
      what: 'b to be removed after the restart',
    });
    // a is held as the files say (same leaf, same chain): the new process does not put it again.
    const changes = await c2.metrics();
    assert.match(changes, /kakehi_pki_changes_total\{op="put_certificate"\} 0\b/);
    assert.match(changes, /kakehi_pki_changes_total\{op="delete_certificate"\} 1\b/);
    assert.equal((await servedCertificate(port, 'a.restart.pki.test')).fingerprint, a.fingerprint);
    assert.equal((await servedCertificate(port, 'manual.pki.test')).fingerprint, manual.fingerprint);
    assert.ok(
      (await held(kakehi)).some((h) => h.fingerprint === manual.fingerprint && h.source === 'runtime'),
    );
    await c2.stop();
    rmSync(dir, { recursive: true });
  });
  it('a connector restarted while a pair is half written or invalid keeps what it put for that pair', async () => {
    const dir = tempDir('pki-restart-bad-');
    const half = issueCert(ca, ['half.restart.pki.test']);
    const bad = issueCert(ca, ['bad.restart.pki.test']);
    writeFileSync(join(dir, 'half.pem'), half.fullchainPem + half.keyPem);
    writeFileSync(join(dir, 'bad.crt'), bad.fullchainPem);
    writeFileSync(join(dir, 'bad.key'), bad.keyPem);
    const mine = async () =>
      (await held(kakehi))
        .filter((h) => h.source === 'pki-keep')
        .map((h) => h.fingerprint)
        .sort();
    const c1 = await pki(['--source', 'pki-keep', dir]);
    await waitServed(port, 'half.restart.pki.test', half.fingerprint);
    await waitServed(port, 'bad.restart.pki.test', bad.fingerprint);
    assert.equal(await c1.stop(), 0);
    // While it is down: a renewal of half.pem is cut short, and bad.crt is renewed without its key.
    const half2 = issueCert(ca, ['half.restart.pki.test']);
    const bad2 = issueCert(ca, ['bad.restart.pki.test']);
    const whole = half2.fullchainPem + half2.keyPem;
    writeFileSync(join(dir, 'half.pem'), whole.slice(0, Math.floor(whole.length / 2)));
    writeFileSync(join(dir, 'bad.crt'), bad2.fullchainPem);
    const c2 = await pki(['--source', 'pki-keep', dir]);
    await withLogs(c2, async () => {
      await eventually(
        async () => {
          const s = await c2.status();
          assert.equal((s['last_sync'] as { ok: boolean } | null)?.ok, true);
          assert.equal(s.pairs.find((p) => p.pair.endsWith('half.pem'))?.state, 'incomplete');
          assert.equal(s.pairs.find((p) => p.pair.endsWith('bad.crt'))?.state, 'invalid');
        },
        { what: 'the restarted connector in sync, with both pairs unreadable' },
      );
      assert.deepEqual(await mine(), [half.fingerprint, bad.fingerprint].sort(), 'nothing withdrawn');
      assert.equal((await servedCertificate(port, 'half.restart.pki.test')).fingerprint, half.fingerprint);
      assert.equal((await servedCertificate(port, 'bad.restart.pki.test')).fingerprint, bad.fingerprint);
      // Finished: the renewed certificates replace the kept ones.
      writeAtomic(join(dir, 'half.pem'), whole);
      writeAtomic(join(dir, 'bad.key'), bad2.keyPem);
      await waitServed(port, 'half.restart.pki.test', half2.fingerprint);
      await waitServed(port, 'bad.restart.pki.test', bad2.fingerprint);
      await eventually(async () =>
        assert.deepEqual(await mine(), [half2.fingerprint, bad2.fingerprint].sort()),
      );
    });
    await c2.stop();
    await ok(kakehi.socketPath, 'transaction', {
      changes: (await held(kakehi))
        .filter((h) => h.source === 'pki-keep')
        .map((h) => ({ op: 'delete_certificate', listener: h.listener, fingerprint: h.fingerprint })),
    });
    rmSync(dir, { recursive: true });
  });

  it("expiry: each pair's not-after is a metric, and a certificate within a threshold is warned about once", async () => {
    const dir = tempDir('pki-expiry-');
    const soon = issueCert(ca, ['soon.pki.test'], { days: 3 });
    const later = issueCert(ca, ['later.pki.test'], { days: 15 });
    writeFileSync(join(dir, 'soon.pem'), soon.fullchainPem + soon.keyPem);
    writeFileSync(join(dir, 'later.pem'), later.fullchainPem + later.keyPem);
    const c = await pki(['--expiry-warning-days', '21,7', dir]);
    await waitServed(port, 'soon.pki.test', soon.fingerprint);
    const warnings = () => c.logs.filter((l) => String(l.msg).startsWith('certificate expires within'));
    await eventually(() => assert.equal(warnings().length, 2), { what: 'two expiry warnings' });
    const byName = new Map(warnings().map((w) => [(w['names'] as string[])[0], w['threshold_days']]));
    assert.equal(byName.get('soon.pki.test'), 7);
    assert.equal(byName.get('later.pki.test'), 21);
    const metrics = await c.metrics();
    const notAfter =
      /kakehi_pki_certificate_not_after_timestamp_seconds\{pair="[^"]*soon.pem",name="soon.pki.test"\} (\d+)/.exec(
        metrics,
      );
    const expected = Math.floor(Date.now() / 1000) + 3 * 86_400;
    assert.ok(notAfter && Math.abs(Number(notAfter[1]) - expected) < 3_600, metrics);
    assert.match(metrics, /kakehi_pki_expiry_warnings_total\{threshold_days="7"\} 1/);
    await c.stop();
  });

  it('a listener added later gets the certificates; a directory limited to one listener serves only there', async () => {
    const all = tempDir('pki-all-');
    const one = tempDir('pki-one-');
    const a = issueCert(ca, ['all.pki.test']);
    const o = issueCert(ca, ['one.pki.test']);
    writeFileSync(join(all, 'all.pem'), a.fullchainPem + a.keyPem);
    writeFileSync(join(one, 'one.pem'), o.fullchainPem + o.keyPem);
    const settings = join(tempDir('pki-yaml-'), 'pki.yaml');
    writeFileSync(
      settings,
      `directories:\n  - ${all}\n  - path: ${one}\n    listeners: ["127.0.0.1:${port}"]\n`,
    );
    const c = await pki(['-c', settings]);
    await waitServed(port, 'all.pki.test', a.fingerprint);
    await waitServed(port, 'one.pki.test', o.fingerprint);
    const port2 = await freePort();
    await ok(kakehi.socketPath, 'transaction', {
      changes: [{ op: 'put_listener', listener: { address: `127.0.0.1:${port2}`, protocol: 'https' } }],
    });
    await waitServed(port2, 'all.pki.test', a.fingerprint);
    assert.notEqual((await servedCertificate(port2, 'one.pki.test')).fingerprint, o.fingerprint);
    const mine = (await held(kakehi))
      .filter((h) => h.source === 'pki' && /^(all|one)\.pki\.test$/.test(h.names[0] ?? ''))
      .map((h) => `${h.listener} ${h.names[0]}`);
    assert.deepEqual(
      mine.sort(),
      [
        `127.0.0.1:${port2} all.pki.test`,
        `127.0.0.1:${port} all.pki.test`,
        `127.0.0.1:${port} one.pki.test`,
      ].sort(),
    );
    await c.stop();
    // The proxy wants a listener's certificates deleted in the same transaction as the listener.
    const onPort2 = (await held(kakehi)).filter((h) => h.listener === `127.0.0.1:${port2}`);
    await ok(kakehi.socketPath, 'transaction', {
      changes: [
        ...onPort2.map((h) => ({
          op: 'delete_certificate',
          listener: h.listener,
          fingerprint: h.fingerprint,
        })),
        { op: 'delete_listener', address: `127.0.0.1:${port2}` },
      ],
    });
  });
});

describe('pki connector across a proxy restart', { timeout: 120_000 }, () => {
  it('a restarted proxy is fed again without anyone acting', async () => {
    const ca = makeCa();
    const dir = tempDir('pki-proxy-restart-');
    const sockDir = tempDir('pki-sock-');
    const socketPath = join(sockDir, 'kakehi.sock');
    const port = await freePort();
    const config = {
      command_socket: socketPath,
      listeners: [{ address: `127.0.0.1:${port}`, protocol: 'https' }],
    };
    const leaf = issueCert(ca, ['restart.pki.test']);
    writeFileSync(join(dir, 'r.crt'), leaf.fullchainPem);
    writeFileSync(join(dir, 'r.key'), leaf.keyPem);
    let k = await startKakehi(config);
    const c = await startPki(['-s', socketPath, '--settle-ms', String(SETTLE_MS), dir]);
    try {
      await waitServed(port, 'restart.pki.test', leaf.fingerprint);
      await k.stop();
      await eventually(async () => assert.equal((await c.status()).connected, false), {
        what: 'disconnect seen',
      });
      assert.equal((await fetch(`http://127.0.0.1:${c.port}/healthz`)).status, 503);
      k = await startKakehi(config);
      const t0 = Date.now();
      await waitServed(port, 'restart.pki.test', leaf.fingerprint, { timeoutMs: 30_000 });
      console.log(`# certificate served again ${Date.now() - t0} ms after the proxy came back`);
      await eventually(async () =>
        assert.equal((await fetch(`http://127.0.0.1:${c.port}/healthz`)).status, 200),
      );
    } finally {
      await c.stop();
      await k.stop();
    }
  });
});
