// The walker on real directories: symlinks followed (certbot's live/ into
// archive/), a dangling link still counts as a file (mid-swap is not a deletion),
// a symlink loop is walked once, and a signature moves when a link is swapped.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scanRoot } from '../../connectors/pki/scan.js';

describe('pki scan', () => {
  it('follows certbot symlinks, keeps dangling links as files, survives loops, sees swaps', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pki-scan-'));
    mkdirSync(join(root, 'archive', 'x.test'), { recursive: true });
    mkdirSync(join(root, 'live', 'x.test'), { recursive: true });
    for (const n of [1, 2]) {
      writeFileSync(join(root, 'archive', 'x.test', `fullchain${n}.pem`), `cert ${n}`);
      writeFileSync(join(root, 'archive', 'x.test', `privkey${n}.pem`), `key ${n}`);
    }
    const link = (n: number) => {
      for (const f of ['fullchain', 'privkey']) {
        rmSync(join(root, 'live', 'x.test', `${f}.pem`), { force: true });
        symlinkSync(
          join('..', '..', 'archive', 'x.test', `${f}${n}.pem`),
          join(root, 'live', 'x.test', `${f}.pem`),
        );
      }
    };
    link(1);
    mkdirSync(join(root, 'flat'));
    symlinkSync('..', join(root, 'flat', 'loop'));
    writeFileSync(join(root, 'flat', 'a.crt'), 'a');
    symlinkSync('nowhere.key', join(root, 'flat', 'a.key'));

    const first = await scanRoot(root, 1_000);
    assert.equal(first.error, undefined);
    assert.deepEqual(
      first.pairs.map((p) => [p.id, p.layout]),
      [
        ['flat/a.crt', 'flat'],
        ['live/x.test/fullchain.pem', 'certbot'],
      ],
    );
    const flat = first.pairs.find((p) => p.layout === 'flat');
    assert.equal(flat?.signature, '', 'a dangling key link: present, but not readable yet');
    const certbot = first.pairs.find((p) => p.layout === 'certbot');
    assert.equal(certbot?.pairKey, join(root, 'live', 'x.test', 'fullchain.pem'));
    assert.notEqual(certbot?.signature, '');

    link(2);
    const second = await scanRoot(root, 1_000);
    const swapped = second.pairs.find((p) => p.layout === 'certbot');
    assert.notEqual(swapped?.signature, certbot?.signature, 'a symlink swap moves the signature');

    const missing = await scanRoot(join(root, 'not-yet'), 1_000);
    assert.equal(missing.error, 'ENOENT');
    assert.deepEqual(missing.pairs, []);
  });

  it('stops listing at the entry cap and says so', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pki-scan-'));
    for (let i = 0; i < 20; i++) writeFileSync(join(root, `c${i}.pem`), 'x');
    const r = await scanRoot(root, 5);
    assert.equal(r.truncated, true);
    assert.equal(r.pairs.length, 5);
  });
});
