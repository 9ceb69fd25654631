// kakehi as operators install it: the npm tarball installed globally into a
// fresh prefix and run from there (scripts/check-package.sh), and the systemd
// units of packaging/systemd checked by systemd-analyze
// (scripts/check-systemd-units.sh). The scripts hold the checks so that they
// also run by hand; this file puts them in `npm test`.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');

function script(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((done, reject) => {
    const proc = spawn('bash', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (c: string) => {
      output += c;
    };
    proc.stdout.setEncoding('utf8').on('data', collect);
    proc.stderr.setEncoding('utf8').on('data', collect);
    // A bound, not the thing asserted: a script that hangs fails the test.
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

test('the packed tarball, installed globally, runs --version, validate and the embedded default', {
  timeout: 300_000,
}, async () => {
  // --prebuilt: npm test has just built dist/; pack it without building again.
  const r = await script([join('scripts', 'check-package.sh'), '--prebuilt'], 280_000);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /^kakehi \d+\.\d+\.\d+/m);
  assert.match(r.output, /config\.example\.yaml is valid/);
  assert.match(r.output, /embedded default: 127\.0\.0\.1:8080 answered 404 with the welcome page/);
});

test('the systemd units pass systemd-analyze verify and security', { timeout: 300_000 }, async () => {
  // Like the other Debian tools the tests drive: installed when missing (root).
  if (spawnSync('sh', ['-c', 'command -v systemd-analyze'], { stdio: 'ignore' }).status !== 0) {
    const install = await script([join('scripts', 'debian-tools.sh'), 'systemd-analyze'], 240_000);
    assert.equal(install.code, 0, `could not install systemd-analyze:\n${install.output}`);
  }
  const r = await script([join('scripts', 'check-systemd-units.sh')], 60_000);
  assert.equal(r.code, 0, r.output);
  for (const unit of ['kakehi', 'kakehi-pki', 'kakehi-prometheus', 'kakehi-pulsar']) {
    assert.match(r.output, new RegExp(`Overall exposure level for ${unit}\\.service: [0-9.]+ OK`));
  }
});
