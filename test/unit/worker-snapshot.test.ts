// A worker's state is built from main's snapshot by the same function as every
// other state, so it passes the invariants main's own state does (it once held
// shallow-frozen objects and no sources, and failed them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load-config.js';
import type { FieldIssue } from '../../src/errors.js';
import { type Certificate, certificateSchema } from '../../src/model/objects.js';
import { assertInvariants } from '../../src/state/invariants.js';
import type { ProxyState } from '../../src/state/proxy-state.js';
import { snapshotOf, stateOfSnapshot } from '../../src/state/snapshot.js';
import { applyChanges, deepEqual } from '../../src/state/transaction.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { backend, cluster, frontend } from './state-fixtures.js';

const leaf = issueCert(makeCa(), ['a.test']);

function certificate(raw: object): Certificate {
  const issues: FieldIssue[] = [];
  const c = certificateSchema.parse(raw, 'certificate', issues);
  assert.ok(c !== undefined, JSON.stringify(issues));
  return c;
}

/** Main's state as a running proxy has it: the config file, then runtime and PKI changes. */
function mainState(): ProxyState {
  const config = parseConfigText(
    [
      'listeners: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:1", protocol: https}]',
      'clusters: [{id: app, backends: [{id: b1, address: "127.0.0.1:9"}]}]',
      'frontends: [{hostname: a.test, cluster: app, tags: {t: x}}]',
      '',
    ].join('\n'),
    'inline',
  ).state;
  assertInvariants(config);
  const runtime = applyChanges(
    config,
    [
      { op: 'put_cluster', cluster: cluster('api', { answers: { '503': 'busy' } }) },
      { op: 'put_backend', backend: backend('api', 'b1') },
      { op: 'put_frontend', frontend: frontend({ hostname: '*.b.test', path: '/v1', cluster: 'api' }) },
      { op: 'delete_backend', cluster: 'app', id: 'b1' },
    ],
    'runtime',
  );
  assert.ok(runtime.ok, JSON.stringify(runtime.ok ? '' : runtime.issues));
  const pki = applyChanges(
    runtime.state,
    [
      {
        op: 'put_certificate',
        certificate: certificate({ listener: '127.0.0.1:1', certificate: leaf.certPem, key: leaf.keyPem }),
      },
    ],
    'pki',
  );
  assert.ok(pki.ok, JSON.stringify(pki.ok ? '' : pki.issues));
  return pki.state;
}

const MAPS = ['listeners', 'clusters', 'backends', 'frontends', 'certificates'] as const;

describe('worker state from a snapshot', () => {
  it('passes the invariants and holds the same objects under the same keys as main', () => {
    const main = mainState();
    assertInvariants(main);
    // As the worker gets it: through JSON IPC.
    const worker = stateOfSnapshot(JSON.parse(JSON.stringify(snapshotOf(main))));
    assertInvariants(worker);
    for (const m of MAPS) {
      assert.deepEqual([...worker[m].keys()], [...main[m].keys()], m);
      for (const [k, v] of main[m]) assert.ok(deepEqual(worker[m].get(k), v), `${m} ${k}`);
    }
    assert.equal(worker.certificates.size, 1);
    assert.deepEqual(new Set(worker.sources.values()), new Set(['main']));
  });

  it('still passes them after the worker applies a transaction to it', () => {
    const worker = stateOfSnapshot(snapshotOf(mainState()));
    const r = applyChanges(
      worker,
      [
        { op: 'delete_frontend', frontend: { hostname: '*.b.test', path: '/v1' } },
        { op: 'put_backend', backend: backend('app', 'b2') },
      ],
      'main',
    );
    assert.ok(r.ok, JSON.stringify(r.ok ? '' : r.issues));
    assertInvariants(r.state);
  });

  it('refuses a snapshot whose references do not resolve, naming the change', () => {
    assert.throws(
      () => stateOfSnapshot([{ op: 'put_backend', backend: backend('gone', 'b1') }]),
      /snapshot refused: changes\[0\]\.backend\.cluster: cluster "gone" does not exist/,
    );
  });
});
