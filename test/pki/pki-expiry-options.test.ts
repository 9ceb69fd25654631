// Expiry warnings (once per threshold crossed, forgotten with the certificate) and
// the connector's settings (flags, YAML, every mistake named).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DAY_MS, ExpiryWatch } from '../../connectors/pki/expiry.js';
import { OptionsError, parsePkiArgs } from '../../connectors/pki/options.js';

const cert = (fp: string, daysLeft: number, now: number) => ({
  fingerprint: fp,
  pairKey: `/d/${fp}`,
  names: ['a.example'],
  not_after: new Date(now + daysLeft * DAY_MS).toISOString(),
});

describe('pki expiry warnings', () => {
  it('warns once at 21, again at 7, again when expired; a renewal starts clean', () => {
    const w = new ExpiryWatch([7, 21]);
    const now = Date.parse('2026-11-27T00:00:00Z');
    assert.deepEqual(w.check([cert('A', 30, now)], now), []);
    assert.deepEqual(
      w.check([cert('A', 20, now)], now).map((x) => x.threshold_days),
      [21],
    );
    assert.deepEqual(w.check([cert('A', 19, now)], now), []);
    assert.deepEqual(
      w.check([cert('A', 6.5, now)], now).map((x) => [x.threshold_days, x.days_left]),
      [[7, 6]],
    );
    const expired = w.check([cert('A', -1, now)], now);
    assert.equal(expired[0]?.expired, true);
    assert.equal(expired[0]?.threshold_days, 0);
    assert.deepEqual(w.check([cert('B', 90, now)], now), []);
    assert.deepEqual(
      w.check([cert('A', 6, now)], now).map((x) => x.threshold_days),
      [7],
      'A was forgotten when it stopped being served',
    );
  });
});

describe('pki options', () => {
  it('flags: directories, listeners, numbers, defaults', () => {
    const o = parsePkiArgs(
      [
        '-s',
        '/run/k.sock',
        '--dir',
        '/a',
        '/b',
        '-l',
        '127.0.0.1:8443',
        '--settle-ms',
        '200',
        '--listen',
        'off',
      ],
      {},
    );
    assert.ok(o !== 'help');
    assert.equal(o.socketPath, '/run/k.sock');
    assert.deepEqual(o.directories, [
      { path: '/a', listeners: ['127.0.0.1:8443'] },
      { path: '/b', listeners: ['127.0.0.1:8443'] },
    ]);
    assert.equal(o.settleMs, 200);
    assert.equal(o.listen, undefined);
    assert.deepEqual(o.expiryWarningDays, [21, 7]);
    assert.equal(o.checkIntervalMs, 2_000);
    assert.equal(o.watch, true);
    assert.equal(o.source, 'pki');
    const other = parsePkiArgs(
      ['/a', '--no-watch', '--check-interval-ms', '0', '--source', 'pki-internal'],
      {},
    );
    assert.ok(other !== 'help');
    assert.equal(other.watch, false);
    assert.equal(other.checkIntervalMs, 0);
    assert.equal(other.source, 'pki-internal');
    const withDefault = parsePkiArgs(['/a', '--default'], {});
    assert.ok(withDefault !== 'help');
    assert.deepEqual(withDefault.directories, [{ path: '/a', listeners: undefined, default: true }]);
    assert.equal(parsePkiArgs(['-h'], {}), 'help');
  });

  it('YAML file, relative paths resolved from its directory, flags win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pki-opts-'));
    const file = join(dir, 'pki.yaml');
    writeFileSync(
      file,
      'socket: k.sock\ndirectories:\n  - certs\n  - path: /le/live\n    listeners: ["0.0.0.0:443"]\n    default: true\nsettle_ms: 100\nexpiry_warning_days: [30, 3]\nlisten: 127.0.0.1:0\n',
    );
    const o = parsePkiArgs(['-c', file, '--settle-ms', '50'], {});
    assert.ok(o !== 'help');
    assert.equal(o.socketPath, join(dir, 'k.sock'));
    assert.deepEqual(o.directories, [
      { path: join(dir, 'certs'), listeners: undefined },
      { path: '/le/live', listeners: ['0.0.0.0:443'], default: true },
    ]);
    assert.equal(o.settleMs, 50);
    assert.deepEqual(o.expiryWarningDays, [30, 3]);
    assert.deepEqual(o.listen, { host: '127.0.0.1', port: 0 });
  });

  it('mistakes name what is wrong: usage vs settings file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pki-opts-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'directories: [a]\nsetle_ms: 3\n');
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof OptionsError);
        return e;
      }
      assert.fail('no error');
    };
    const unknown = err(() => parsePkiArgs(['-c', file], {}));
    assert.equal(unknown.kind, 'config');
    assert.match(unknown.message, /unknown key "setle_ms"/);
    assert.equal(err(() => parsePkiArgs([], {})).kind, 'usage');
    assert.match(err(() => parsePkiArgs(['/a', '--settle-ms', 'soon'], {})).message, /--settle-ms "soon"/);
    assert.match(err(() => parsePkiArgs(['/a', '--bogus'], {})).message, /bogus/);
    assert.match(err(() => parsePkiArgs(['-l', '1.2.3.4:443'], {})).message, /--listener applies/);
    assert.match(
      err(() => parsePkiArgs(['/a', '--check-interval-ms', '10'], {})).message,
      /--check-interval-ms 10: 0 \(off\) or at least 100/,
    );
    assert.match(
      err(() => parsePkiArgs(['/a', '--source', 'PKI!'], {})).message,
      /--source: "PKI!" is not a source name/,
    );
    assert.match(
      err(() => parsePkiArgs(['--default'], {})).message,
      /--default applies to directories given/,
    );
    writeFileSync(file, 'directories:\n  - path: a\n    default: "yes"\n');
    assert.match(
      err(() => parsePkiArgs(['-c', file], {})).message,
      /directories\[0\]\.default: expected true or false/,
    );
    writeFileSync(file, 'directories: [a]\nwatch: "no"\n');
    const watch = err(() => parsePkiArgs(['-c', file], {}));
    assert.equal(watch.kind, 'config');
    assert.match(watch.message, /watch: expected true or false/);
  });
});
