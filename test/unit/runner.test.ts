import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

// test/run.mjs on a directory of small test files: a test that ran must be
// reported, and a file that cannot report all of its tests must fail the run.
const RUNNER = join(import.meta.dirname, '..', '..', '..', 'test', 'run.mjs');

const FIXTURES: Record<string, string> = {
  // node --test not reading at the end of a file, as on a loaded machine: the
  // middle test stops it and fills the pipe. --test-force-exit ended the process
  // with the last reports still queued behind, and the run passed with 1 test of 3.
  'slow-reader.test.js': `
    const { test } = require('node:test');
    const { spawn } = require('node:child_process');
    test('first', () => {});
    test('fills the pipe while node --test is stopped', () => {
      process.kill(process.ppid, 'SIGSTOP');
      spawn('sh', ['-c', 'sleep 2; kill -CONT ' + process.ppid], { detached: true, stdio: 'ignore' }).unref();
      // Never leave it stopped, whatever happens to the line above.
      process.on('exit', () => process.kill(process.ppid, 'SIGCONT'));
      while (process.stdout.writableLength === 0) process.stdout.write('y'.repeat(1000) + '\\n');
    });
    test('last', () => {});
  `,
  // A test that passes but leaves a timer running, so the process never exits.
  'linger.test.js': `
    const { test } = require('node:test');
    test('leaves a timer running', () => { setInterval(() => {}, 1000); });
  `,
  // Code under test that calls process.exit(0): the last test never runs.
  'early-exit.test.js': `
    const { test } = require('node:test');
    test('first', () => {});
    test('exits', () => { process.exit(0); });
    test('never runs', () => {});
  `,
};

/** Runs test/run.mjs on the fixture files whose names contain `filter`. */
function run(dir: string, filter: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, filter], {
      env: { ...process.env, KAKEHI_TEST_DIR: dir, KAKEHI_TEST_EXIT_GRACE_MS: '1000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The end of a run's output for an assertion message, without the filler lines. */
const tail = (out: string) =>
  out
    .split('\n')
    .filter((l) => !l.includes('yyyy'))
    .slice(-60)
    .join('\n');

const count = (out: string, what: string) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(out)?.[1]);

describe('test/run.mjs', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kakehi-runner-'));
    for (const [name, text] of Object.entries(FIXTURES)) writeFileSync(join(dir, name), text);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports every test of a file while node --test is slow to read, however long past the grace', async () => {
    const { code, out } = await run(dir, 'slow-reader');
    assert.equal(count(out, 'pass'), 3, tail(out));
    assert.equal(count(out, 'fail'), 0);
    assert.equal(code, 0);
  });

  it('stops and fails a file whose process outlives its tests, naming what holds it', async () => {
    const { code, out } = await run(dir, 'linger');
    assert.match(
      out,
      /linger\.test\.js: its tests ended 1 s ago but its process is still running, held by .*Timeout/,
    );
    assert.equal(count(out, 'fail'), 1, tail(out));
    assert.equal(code, 1);
  });

  it('fails a file that exits with process.exit() before its tests end', async () => {
    const { code, out } = await run(dir, 'early-exit');
    assert.match(out, /early-exit\.test\.js: process\.exit\(\) was called before its tests ended/);
    assert.equal(count(out, 'fail'), 1, tail(out));
    assert.equal(code, 1);
  });
});
