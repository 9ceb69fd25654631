// `kakehi pki` as an operator meets it: help, and exit codes that mean something.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI } from '../helpers/kakehi-process.js';

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
