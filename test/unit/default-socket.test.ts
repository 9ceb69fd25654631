// The one rule every kakehi process uses for the command socket's path when
// none is given, on real directories.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultCommandSocket } from '../../src/command/default-socket.js';

const dir = mkdtempSync(join(tmpdir(), 'kakehi-default-socket-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('default command socket', () => {
  it('is in $RUNTIME_DIRECTORY when systemd set it (the first of several), for both roles', () => {
    const env = { RUNTIME_DIRECTORY: '/run/a:/run/b' };
    assert.equal(defaultCommandSocket('listen', env, dir), '/run/a/kakehi.sock');
    assert.equal(defaultCommandSocket('connect', env, dir), '/run/a/kakehi.sock');
  });

  it('is in the system directory when it exists and is writable', () => {
    assert.equal(defaultCommandSocket('listen', {}, dir), join(dir, 'kakehi.sock'));
    assert.equal(defaultCommandSocket('connect', {}, dir), join(dir, 'kakehi.sock'));
  });

  it('is ./kakehi.sock when the system directory is missing or not a directory', () => {
    assert.equal(defaultCommandSocket('listen', {}, join(dir, 'missing')), './kakehi.sock');
    writeFileSync(join(dir, 'file'), '');
    assert.equal(defaultCommandSocket('connect', {}, join(dir, 'file')), './kakehi.sock');
  });
});
