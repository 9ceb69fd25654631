// applyChanges and parseChanges on hand-written cases: every op with every
// effect, all-or-nothing failure with every issue reported, dangling references
// refused and same-transaction cascades accepted, sources recorded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Change, changeKey, parseChanges } from '../../src/state/change.js';
import { assertInvariants } from '../../src/state/invariants.js';
import { emptyState, type ProxyState } from '../../src/state/proxy-state.js';
import { applyChanges } from '../../src/state/transaction.js';
import { backend, cluster, frontend, listener, snapshot } from './state-fixtures.js';

function ok(state: ProxyState, changes: Change[], source = 'runtime') {
  const r = applyChanges(state, changes, source);
  assert.ok(r.ok, `transaction applies: ${r.ok ? '' : JSON.stringify(r.issues)}`);
  assertInvariants(r.state);
  return r;
}
function refused(state: ProxyState, changes: Change[], source = 'runtime') {
  const before = snapshot(state);
  const r = applyChanges(state, changes, source);
  assert.equal(r.ok, false, 'transaction is refused');
  assert.equal(snapshot(state), before, 'input state unchanged');
  return r.ok ? [] : r.issues;
}

const L = listener('127.0.0.1:8080');
const C = cluster('app');
const B = backend('app', 'b1');
const F = frontend({ listener: '127.0.0.1:8080', hostname: 'example.com', cluster: 'app' });
const FKEY = '127.0.0.1:8080;example.com;prefix:/;*';
const base = ok(emptyState(), [
  { op: 'put_listener', listener: L },
  { op: 'put_cluster', cluster: C },
  { op: 'put_backend', backend: B },
  { op: 'put_frontend', frontend: F },
]).state;

describe('applyChanges: every op and effect', () => {
  const cases: [string, ProxyState, Change, string, string][] = [
    [
      'put_listener',
      emptyState(),
      { op: 'put_listener', listener: listener('127.0.0.1:9') },
      '127.0.0.1:9',
      'created',
    ],
    ['put_listener', base, { op: 'put_listener', listener: L }, '127.0.0.1:8080', 'unchanged'],
    [
      'put_listener',
      base,
      { op: 'put_listener', listener: listener('127.0.0.1:8080', { max_header_bytes: 2048 }) },
      '127.0.0.1:8080',
      'updated',
    ],
    [
      'delete_listener',
      emptyState(),
      { op: 'delete_listener', address: '127.0.0.1:8080' },
      '127.0.0.1:8080',
      'unchanged',
    ],
    ['put_cluster', emptyState(), { op: 'put_cluster', cluster: C }, 'app', 'created'],
    ['put_cluster', base, { op: 'put_cluster', cluster: C }, 'app', 'unchanged'],
    [
      'put_cluster',
      base,
      { op: 'put_cluster', cluster: cluster('app', { load_balancing: 'random' }) },
      'app',
      'updated',
    ],
    ['delete_cluster', emptyState(), { op: 'delete_cluster', id: 'app' }, 'app', 'unchanged'],
    ['put_backend', base, { op: 'put_backend', backend: backend('app', 'b2') }, 'app/b2', 'created'],
    ['put_backend', base, { op: 'put_backend', backend: B }, 'app/b1', 'unchanged'],
    [
      'put_backend',
      base,
      { op: 'put_backend', backend: backend('app', 'b1', '127.0.0.1:9002') },
      'app/b1',
      'updated',
    ],
    ['delete_backend', base, { op: 'delete_backend', cluster: 'app', id: 'b1' }, 'app/b1', 'deleted'],
    ['delete_backend', base, { op: 'delete_backend', cluster: 'app', id: 'nope' }, 'app/nope', 'unchanged'],
    [
      'put_frontend',
      base,
      { op: 'put_frontend', frontend: frontend({ hostname: 'other.test', deny: true }) },
      '*;other.test;prefix:/;*',
      'created',
    ],
    ['put_frontend', base, { op: 'put_frontend', frontend: F }, FKEY, 'unchanged'],
    [
      'put_frontend',
      base,
      { op: 'put_frontend', frontend: { ...F, tags: { team: 'web' } } },
      FKEY,
      'updated',
    ],
    [
      'delete_frontend',
      base,
      { op: 'delete_frontend', frontend: { listener: '127.0.0.1:8080', hostname: 'EXAMPLE.com' } },
      FKEY,
      'deleted',
    ],
    [
      'delete_frontend',
      base,
      { op: 'delete_frontend', frontend: { hostname: 'example.com' } },
      '*;example.com;prefix:/;*',
      'unchanged',
    ],
  ];
  for (const [op, state, change, key, effect] of cases) {
    it(`${op} reports ${effect} for ${key}`, () => {
      const r = ok(state, [change]);
      assert.deepEqual(r.applied, [{ op, key, effect }]);
      if (effect === 'unchanged') assert.equal(r.state, state, 'no-op returns the same state');
      else assert.notEqual(r.state, state, 'a new state');
    });
  }

  it('delete_listener and delete_cluster report deleted once nothing uses them', () => {
    const r = ok(base, [
      { op: 'delete_frontend', frontend: { listener: '127.0.0.1:8080', hostname: 'example.com' } },
      { op: 'delete_backend', cluster: 'app', id: 'b1' },
      { op: 'delete_cluster', id: 'app' },
      { op: 'delete_listener', address: '127.0.0.1:8080' },
    ]);
    assert.deepEqual(
      r.applied.map((a) => a.effect),
      ['deleted', 'deleted', 'deleted', 'deleted'],
    );
    assert.equal(r.state.listeners.size + r.state.clusters.size + r.state.sources.size, 0);
  });

  it('put of an equal object from another source is an update that moves the source', () => {
    const r = ok(base, [{ op: 'put_cluster', cluster: C }], 'pulsar');
    assert.deepEqual(r.applied, [{ op: 'put_cluster', key: 'app', effect: 'updated' }]);
    assert.equal(r.state.sources.get('cluster:app'), 'pulsar');
    assert.equal(base.sources.get('cluster:app'), 'runtime');
  });

  it('records the source of every put under kind:key and drops it on delete', () => {
    const r = ok(base, [{ op: 'put_backend', backend: backend('app', 'b2') }], 'pki');
    assert.equal(r.state.sources.get('backend:app/b2'), 'pki');
    assert.equal(r.state.sources.get('frontend:' + FKEY), 'runtime');
    const d = ok(r.state, [{ op: 'delete_backend', cluster: 'app', id: 'b2' }]);
    assert.equal(d.state.sources.has('backend:app/b2'), false);
  });

  it('shares the maps a transaction does not touch and freezes what it puts', () => {
    const r = ok(base, [{ op: 'put_backend', backend: backend('app', 'b2') }]);
    assert.equal(r.state.frontends, base.frontends);
    assert.equal(r.state.listeners, base.listeners);
    assert.equal(r.state.clusters, base.clusters);
    assert.notEqual(r.state.backends, base.backends);
    assert.equal(base.backends.has('app/b2'), false, 'input map not modified');
    assert.ok(Object.isFrozen(r.state.backends.get('app/b2')));
    assert.ok(Object.isFrozen(r.state));
  });

  it('does not freeze or keep the caller’s object', () => {
    const mine = { ...F, tags: { team: 'web' } };
    const r = ok(base, [{ op: 'put_frontend', frontend: mine }]);
    assert.equal(Object.isFrozen(mine), false);
    assert.notEqual(r.state.frontends.get(FKEY), mine);
  });

  it('reports the effect of each change against the state its predecessors left', () => {
    const r = ok(emptyState(), [
      { op: 'put_cluster', cluster: C },
      { op: 'put_cluster', cluster: C },
      { op: 'delete_cluster', id: 'app' },
      { op: 'delete_cluster', id: 'app' },
    ]);
    assert.deepEqual(
      r.applied.map((a) => a.effect),
      ['created', 'unchanged', 'deleted', 'unchanged'],
    );
  });
});

describe('applyChanges: all or nothing', () => {
  it('a transaction with one invalid change changes nothing and names it', () => {
    const issues = refused(base, [
      { op: 'put_backend', backend: backend('app', 'b2') },
      { op: 'put_backend', backend: { ...backend('app', 'b3'), address: 'nowhere' } },
      { op: 'delete_frontend', frontend: { hostname: 'example.com' } },
    ]);
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.path, /^changes\[1\]\.backend\.address$/);
  });

  it('reports every issue at once: fields, unknown op and dangling references', () => {
    const issues = refused(base, [
      { op: 'put_cluster', cluster: { ...cluster('x'), connect_attempts: 99 } },
      { op: 'put_frontend', frontend: { ...F, hostname: 'b.test', cluster: 'ghost' } },
      { op: 'rename_cluster' } as unknown as Change,
      { op: 'put_backend', backend: backend('missing', 'b1') },
    ]);
    const paths = issues.map((i) => i.path).sort();
    assert.deepEqual(paths, [
      'changes[0].cluster.connect_attempts',
      'changes[1].frontend.cluster',
      'changes[2].op',
      'changes[3].backend.cluster',
    ]);
  });

  it('refuses a bad source name without looking further', () => {
    const issues = refused(base, [{ op: 'put_cluster', cluster: cluster('z') }], 'Not A Source');
    assert.deepEqual(
      issues.map((i) => i.path),
      ['source'],
    );
  });
});

describe('applyChanges: references', () => {
  it('refuses deleting a cluster still used, naming the cluster and every user', () => {
    const issues = refused(base, [{ op: 'delete_cluster', id: 'app' }]);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'changes[0]');
    assert.match(issues[0]!.reason, /cluster app is still used by/);
    assert.match(issues[0]!.reason, /frontend 127\.0\.0\.1:8080;example\.com;prefix:\/;\*/);
    assert.match(issues[0]!.reason, /backend app\/b1/);
  });

  it('refuses deleting a listener a frontend still uses, naming both', () => {
    const issues = refused(base, [{ op: 'delete_listener', address: '127.0.0.1:8080' }]);
    assert.equal(issues.length, 1);
    assert.match(
      issues[0]!.reason,
      /listener 127\.0\.0\.1:8080 is still used by frontend 127\.0\.0\.1:8080;example/,
    );
  });

  it('accepts a cluster delete when the same transaction deletes its users, in any order', () => {
    const r = ok(base, [
      { op: 'delete_cluster', id: 'app' },
      { op: 'delete_backend', cluster: 'app', id: 'b1' },
      { op: 'put_frontend', frontend: { ...F, cluster: undefined, deny: true } },
    ]);
    assert.equal(r.state.clusters.has('app'), false);
    assert.equal(r.state.frontends.get(FKEY)?.deny, true);
  });

  it('accepts a frontend put before the cluster it names within one transaction', () => {
    const r = ok(emptyState(), [
      { op: 'put_frontend', frontend: frontend({ hostname: 'a.test', cluster: 'late' }) },
      { op: 'put_cluster', cluster: cluster('late') },
    ]);
    assert.equal(r.state.frontends.size, 1);
  });

  it('refuses a backend whose cluster the same transaction deletes, naming the delete', () => {
    const issues = refused(base, [
      { op: 'put_backend', backend: backend('app', 'b9') },
      { op: 'delete_backend', cluster: 'app', id: 'b1' },
      { op: 'delete_frontend', frontend: { listener: '127.0.0.1:8080', hostname: 'example.com' } },
      { op: 'delete_cluster', id: 'app' },
    ]);
    const byPath = new Map(issues.map((i) => [i.path, i.reason]));
    assert.match(
      byPath.get('changes[0].backend.cluster') ?? '',
      /"app" does not exist \(changes\[3\] deletes it\)/,
    );
    assert.match(byPath.get('changes[3]') ?? '', /still used by backend app\/b9/);
    assert.equal(issues.length, 2);
  });

  it('refuses a frontend on a listener that does not exist', () => {
    const issues = refused(base, [
      { op: 'put_frontend', frontend: frontend({ listener: '127.0.0.1:1', hostname: 'a.test', deny: true }) },
    ]);
    assert.deepEqual(issues, [
      { path: 'changes[0].frontend.listener', reason: 'listener "127.0.0.1:1" does not exist' },
    ]);
  });

  it('checks references with counts handed from state to state across many transactions', () => {
    let s = base;
    for (let i = 0; i < 50; i++) {
      s = ok(s, [
        { op: 'put_frontend', frontend: frontend({ hostname: `h${i}.test`, cluster: 'app' }) },
      ]).state;
    }
    for (let i = 0; i < 50; i++)
      s = ok(s, [{ op: 'delete_frontend', frontend: { hostname: `h${i}.test` } }]).state;
    refused(s, [{ op: 'delete_cluster', id: 'app' }]);
    const r = ok(s, [
      { op: 'delete_frontend', frontend: { listener: '127.0.0.1:8080', hostname: 'example.com' } },
      { op: 'delete_backend', cluster: 'app', id: 'b1' },
      { op: 'delete_cluster', id: 'app' },
    ]);
    assert.equal(r.state.clusters.size, 0);
  });
});

describe('parseChanges', () => {
  it('returns typed changes with the model defaults filled in', () => {
    const r = parseChanges(
      [
        { op: 'put_backend', backend: { cluster: 'app', id: 'b1', address: '127.0.0.1:9001' } },
        { op: 'delete_frontend', frontend: { hostname: 'a.test' } },
      ],
      'changes',
    );
    assert.ok('changes' in r);
    assert.deepEqual(r.changes[0], { op: 'put_backend', backend: B });
    assert.deepEqual(r.changes[1], {
      op: 'delete_frontend',
      frontend: { hostname: 'a.test', path: '/', path_type: 'prefix' },
    });
  });

  it('names every issue by its path under the given name', () => {
    const r = parseChanges(
      [
        { op: 'put_cluster', cluster: { id: 'ok' } },
        { op: 'put_backend', backend: { cluster: 'app', id: 'b1', address: 'nowhere' } },
        { op: 'delete_cluster', id: 'x', extra: 1 },
        'junk',
      ],
      'changes',
    );
    assert.ok('issues' in r);
    assert.deepEqual(
      r.issues.map((i) => i.path),
      ['changes[1].backend.address', 'changes[2].extra', 'changes[3]'],
    );
  });

  it('names the valid ops for an unknown one and the fix for a Sōzu name', () => {
    const r = parseChanges([{ op: 'frobnicate' }, { op: 'AddCluster' }, {}], 'tx');
    assert.ok('issues' in r);
    assert.equal(r.issues[0]!.path, 'tx[0].op');
    assert.match(
      r.issues[0]!.reason,
      /unknown op "frobnicate"; expected one of put_listener, delete_listener, .*delete_frontend/,
    );
    assert.equal(r.issues[1]!.reason, 'unknown op "AddCluster"; use put_cluster');
    assert.match(r.issues[2]!.reason, /^is required; one of put_listener/);
  });

  it('refuses an answer page for 418, a status kakehi never answers itself, naming those it does', () => {
    const r = parseChanges(
      [
        {
          op: 'put_cluster',
          cluster: { id: 'a', answers: { '418': 'teapot', '413': 'too big', '503': 'busy' } },
        },
      ],
      'changes',
    );
    assert.ok('issues' in r);
    assert.deepEqual(r.issues, [
      {
        path: 'changes[0].cluster.answers.418',
        reason:
          'kakehi answers only 400, 401, 403, 404, 408, 413, 421, 429, 431, 502, 503, 504 itself; no page can be set for 418',
      },
    ]);
  });

  it('names the Sōzu request names and spellings with the op to use', () => {
    const ops = ['AddBackend', 'remove_http_frontend', 'ReplaceCertificate', 'AddListener', 'RemoveFrontend'];
    const r = parseChanges(
      ops.map((op) => ({ op })),
      'changes',
    );
    assert.ok('issues' in r);
    assert.deepEqual(
      r.issues.map((i) => i.reason),
      [
        'unknown op "AddBackend"; use put_backend',
        'unknown op "remove_http_frontend"; use delete_frontend',
        'unknown op "ReplaceCertificate"; use put_certificate',
        'unknown op "AddListener"; use put_listener',
        'unknown op "RemoveFrontend"; use delete_frontend',
      ],
    );
  });

  it('names a renamed key with its replacement', () => {
    const r = parseChanges([{ op: 'put_cluster', cluster: { cluster_id: 'a' } }], 'changes');
    assert.ok('issues' in r);
    assert.ok(
      r.issues.some((i) => i.path === 'changes[0].cluster.cluster_id' && i.reason === 'unknown key; use id'),
    );
  });

  it('refuses something that is not a list', () => {
    assert.deepEqual(parseChanges({ op: 'put_cluster' }, 'changes'), {
      issues: [{ path: 'changes', reason: 'expected a list of changes' }],
    });
  });
});

describe('changeKey', () => {
  it('names each op by kind and stable key', () => {
    assert.equal(changeKey({ op: 'delete_backend', cluster: 'app', id: 'b1' }), 'backend app/b1');
    assert.equal(changeKey({ op: 'put_listener', listener: L }), 'listener 127.0.0.1:8080');
    assert.equal(changeKey({ op: 'delete_cluster', id: 'app' }), 'cluster app');
    assert.equal(changeKey({ op: 'put_frontend', frontend: F }), `frontend ${FKEY}`);
    assert.equal(
      changeKey({ op: 'delete_frontend', frontend: { hostname: 'A.test', method: 'GET' } }),
      'frontend *;a.test;prefix:/;GET',
    );
  });
});
