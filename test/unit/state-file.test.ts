// The state file: save then load gives back the same objects, sources and
// generation; the file is private (0600) and replaced atomically; a corrupt or
// inconsistent file is refused with a code and the problem named.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { KakehiError } from '../../src/errors.js';
import type { Change } from '../../src/state/change.js';
import { assertInvariants } from '../../src/state/invariants.js';
import { emptyState, type ProxyState } from '../../src/state/proxy-state.js';
import { loadStateFile, saveStateFile } from '../../src/state/state-file.js';
import { applyChanges } from '../../src/state/transaction.js';
import { backend, cluster, frontend, listener, sameObjects, sameSources } from './state-fixtures.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 1000);
console.log(`state-file: fast-check seed ${SEED}, ${NUM_RUNS} runs`);

const dir = mkdtempSync(join(tmpdir(), 'kakehi-state-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function apply(s: ProxyState, changes: Change[], source: string): ProxyState {
  const r = applyChanges(s, changes, source);
  assert.ok(r.ok, JSON.stringify(r.ok ? '' : r.issues));
  return r.state;
}
const sample = apply(
  apply(
    emptyState(),
    [
      { op: 'put_listener', listener: listener('127.0.0.1:8080') },
      { op: 'put_cluster', cluster: cluster('app') },
      { op: 'put_backend', backend: backend('app', 'b1') },
    ],
    'config',
  ),
  [
    {
      op: 'put_frontend',
      frontend: frontend({ listener: '127.0.0.1:8080', hostname: 'a.test', cluster: 'app' }),
    },
    {
      op: 'put_frontend',
      frontend: frontend({ hostname: '*.b.test', path: '^/x$', path_type: 'regex', redirect: { to: '/y' } }),
    },
  ],
  'pulsar',
);

function refusal(file: string, code: string, pattern: RegExp): KakehiError {
  let caught: unknown;
  try {
    loadStateFile(file);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof KakehiError, 'throws a KakehiError');
  assert.equal(caught.code, code);
  assert.match(caught.message, pattern);
  return caught;
}

describe('state file', () => {
  it('round-trips objects, sources and generation', () => {
    const file = join(dir, 'state.json');
    saveStateFile(file, sample, 42);
    const loaded = loadStateFile(file);
    assert.equal(loaded.generation, 42);
    assert.ok(sameObjects(loaded.state, sample));
    assert.ok(sameSources(loaded.state, sample));
    assertInvariants(loaded.state);
  });

  it('writes the documented format, one change per line, each with its source', () => {
    const file = join(dir, 'format.json');
    saveStateFile(file, sample, 7);
    const text = readFileSync(file, 'utf8');
    const json = JSON.parse(text);
    assert.equal(json.kakehi_state, 1);
    assert.equal(json.generation, 7);
    assert.equal(json.changes.length, 5);
    assert.deepEqual(json.changes[0], {
      op: 'put_listener',
      listener: { ...listener('127.0.0.1:8080') },
      source: 'config',
    });
    assert.equal(json.changes[4].source, 'pulsar');
    assert.equal(text.split('\n').length, 5 + 3);
  });

  it('is created with mode 0600 and replaces the old file without leaving a temporary one', () => {
    const sub = mkdtempSync(join(dir, 'mode-'));
    const file = join(sub, 'state.json');
    writeFileSync(file, 'old', { mode: 0o644 });
    saveStateFile(file, sample, 1);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(sub), ['state.json']);
    assert.equal(loadStateFile(file).generation, 1);
  });

  it('fails with KKH_STATE_FILE_UNREADABLE when the directory does not exist', () => {
    assert.throws(
      () => saveStateFile(join(dir, 'no-such-dir', 'state.json'), sample, 1),
      (err: unknown) => err instanceof KakehiError && err.code === 'KKH_STATE_FILE_UNREADABLE',
    );
  });

  it('refuses a file that is not JSON, naming the file', () => {
    const file = join(dir, 'truncated.json');
    saveStateFile(file, sample, 3);
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 100));
    refusal(file, 'KKH_STATE_FILE_UNREADABLE', /truncated\.json/);
  });

  it('refuses a missing file and a file of another format version', () => {
    refusal(join(dir, 'absent.json'), 'KKH_STATE_FILE_UNREADABLE', /cannot read .*absent\.json/);
    const file = join(dir, 'v2.json');
    writeFileSync(file, JSON.stringify({ kakehi_state: 2, generation: 1, changes: [] }));
    refusal(file, 'KKH_STATE_FILE_UNREADABLE', /not a kakehi state file of version 1/);
  });

  it('refuses an invalid change, a bad source and a bad generation, naming each path', () => {
    const file = join(dir, 'invalid.json');
    writeFileSync(
      file,
      JSON.stringify({
        kakehi_state: 1,
        generation: -1,
        changes: [
          { op: 'put_cluster', cluster: { id: 'app' }, source: 'config' },
          { op: 'put_backend', backend: { cluster: 'app', id: 'b1', address: 'nowhere' }, source: 'config' },
          { op: 'put_cluster', cluster: { id: 'x' } },
        ],
      }),
    );
    const err = refusal(file, 'KKH_STATE_FILE_INVALID', /nothing was loaded/);
    assert.deepEqual(err.issues.map((i) => i.path).sort(), [
      'changes[1].backend.address',
      'changes[2].source',
      'generation',
    ]);
  });

  it('refuses a file whose frontend names a missing cluster', () => {
    const file = join(dir, 'dangling.json');
    writeFileSync(
      file,
      JSON.stringify({
        kakehi_state: 1,
        generation: 5,
        changes: [
          { op: 'put_frontend', frontend: { hostname: 'a.test', cluster: 'gone' }, source: 'runtime' },
        ],
      }),
    );
    const err = refusal(
      file,
      'KKH_STATE_FILE_INVALID',
      /changes\[0\]\.frontend\.cluster: cluster "gone" does not exist/,
    );
    assert.equal(err.issues.length, 1);
  });

  it('round-trips generated states with any generation', () => {
    const file = join(dir, 'property.json');
    const arbState = fc
      .array(
        fc.record({
          c: fc.constantFrom('a', 'b'),
          b: fc.constantFrom('b1', 'b2', 'b3'),
          host: fc.constantFrom('x.test', 'y.test', '*'),
          source: fc.constantFrom('config', 'runtime', 'pki'),
        }),
        { maxLength: 8 },
      )
      .map((items) =>
        items.reduce(
          (s, { c, b, host, source }) =>
            apply(
              s,
              [
                { op: 'put_cluster', cluster: cluster(c) },
                { op: 'put_backend', backend: backend(c, b) },
                { op: 'put_frontend', frontend: frontend({ hostname: host, cluster: c }) },
              ],
              source,
            ),
          emptyState(),
        ),
      );
    fc.assert(
      fc.property(arbState, fc.nat(), (s, generation) => {
        saveStateFile(file, s, generation);
        const loaded = loadStateFile(file);
        assert.equal(loaded.generation, generation);
        assert.ok(sameObjects(loaded.state, s) && sameSources(loaded.state, s));
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });
});
