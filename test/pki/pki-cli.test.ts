// `kakehi pki` as an operator meets it: help, and exit codes that mean something.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { issueCert, makeCa } from '../helpers/certs.js';
import { CLI } from '../helpers/kakehi-process.js';
import { eventually, startPki } from '../helpers/pki.js';

const pki = (args: string[]) =>
  spawnSync(process.execPath, [CLI, 'pki', ...args], { encoding: 'utf8', timeout: 15_000 });

describe('kakehi pki command line', () => {
  it('--help prints the usage and exits 0; kakehi --help lists pki', () => {
    const r = pki(['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^kakehi pki — /);
    assert.match(r.stdout, /--settle-ms N/);
    const main = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    assert.match(main.stdout, /\n {2}pki {8}/);
  });

  it('wrong usage exits 2 naming the problem; an invalid settings file exits 3', () => {
    const none = pki([]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no directory to watch/);
    const flag = pki(['/tmp', '--settle', '3']);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /--settle/);
    const file = join(mkdtempSync(join(tmpdir(), 'pki-cli-')), 'pki.yaml');
    writeFileSync(file, 'directories: [/tmp]\nsettle_ms: soon\n');
    const bad = pki(['-c', file]);
    assert.equal(bad.status, 3);
    assert.match(bad.stderr, /settle_ms "soon"/);
  });

  it('kakehi pki status prints each pair with its state and last error; exit 1 while anything is wrong', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pki-cli-status-'));
    const ca = makeCa();
    const good = issueCert(ca, ['good.cli.test']);
    const other = issueCert(ca, ['other.cli.test']);
    writeFileSync(join(dir, 'good.pem'), good.fullchainPem + good.keyPem);
    writeFileSync(join(dir, 'bad.crt'), other.fullchainPem);
    writeFileSync(join(dir, 'bad.key'), good.keyPem);
    writeFileSync(join(dir, 'ca.pem'), ca.certPem); // a CA bundle: not a pair, not an error
    const c = await startPki(['-s', join(dir, 'no-proxy.sock'), '--settle-ms', '50', dir]);
    try {
      await eventually(async () =>
        assert.equal((await c.status()).pairs.filter((p) => p.state !== 'settling').length, 3),
      );
      const r = spawnSync(process.execPath, [CLI, 'pki', 'status', '--listen', `127.0.0.1:${c.port}`], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stdout, /unhealthy \(not connected to the proxy\)/);
      assert.match(r.stdout, /bad\.crt\s+flat\s+invalid\s+-\s+-\s+key: does not match/);
      assert.match(r.stdout, /good\.pem\s+combined\s+ok\s+good\.cli\.test\s+20\d\d-/);
      assert.match(r.stdout, /ca\.pem\s+combined\s+ignored\s+-\s+-\s+.*no private key/);
      assert.match(await c.metrics(), /kakehi_pki_invalid_pairs_total\{by="connector"\} 1\n/);
      const j = spawnSync(
        process.execPath,
        [CLI, 'pki', 'status', '--json', '--listen', `127.0.0.1:${c.port}`],
        {
          encoding: 'utf8',
        },
      );
      assert.equal((JSON.parse(j.stdout) as { pairs: unknown[] }).pairs.length, 3);
      const gone = spawnSync(process.execPath, [CLI, 'pki', 'status', '--listen', '127.0.0.1:1'], {
        encoding: 'utf8',
      });
      assert.equal(gone.status, 4);
    } finally {
      await c.stop();
    }
  });

  it('exits 1 when its HTTP address is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const addr = blocker.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      const r = pki(['--listen', `127.0.0.1:${port}`, '-s', '/nonexistent.sock', tmpdir()]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /cannot listen/);
    } finally {
      blocker.close();
    }
  });
});
