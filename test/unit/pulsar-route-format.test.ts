// The route topic's message format and the fold of its compacted view: pure, so
// every rule is checked here; test/pulsar/route-connector.test.ts checks the same
// against a real broker and real proxies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPlan } from '../../connectors/pulsar/applier.js';
import { BoundedQueue } from '../../connectors/pulsar/bounded-queue.js';
import { DesiredState } from '../../connectors/pulsar/desired.js';
import {
  changeMessage,
  decodeMessage,
  FORMAT_PROPERTY,
  objectKey,
  type RawMessage,
  transactionMessage,
} from '../../connectors/pulsar/format.js';
import { heldByKey, planSync } from '../../connectors/pulsar/sync-plan.js';
import { CommandError } from '../../src/client/command-errors.js';
import { type Change, parseChanges } from '../../src/state/change.js';

const enc = new TextEncoder();
function parsed(raw: unknown[]): Change[] {
  const r = parseChanges(raw, 'changes');
  if ('issues' in r) throw new Error(JSON.stringify(r.issues));
  return r.changes;
}
const [cluster, backend, frontend] = parsed([
  { op: 'put_cluster', cluster: { id: 'app' } },
  { op: 'put_backend', backend: { cluster: 'app', id: 'b1', address: '127.0.0.1:3000' } },
  { op: 'put_frontend', frontend: { hostname: 'app.test', cluster: 'app' } },
]) as [Change, Change, Change];
const [deleteBackend] = parsed([{ op: 'delete_backend', cluster: 'app', id: 'b1' }]) as [Change];

function raw(m: { key?: string; payload: string; properties?: Record<string, string> }): RawMessage {
  return {
    key: m.key,
    properties: m.properties ?? { [FORMAT_PROPERTY]: '1' },
    payload: enc.encode(m.payload),
    isTombstone: m.payload === '' && m.key !== undefined,
  };
}
const all = { certificates: true };

describe('route message format', () => {
  it('keys each change by its kind and stable key, the same for a put and a delete', () => {
    assert.equal(objectKey(cluster), 'cluster:app');
    assert.equal(objectKey(backend), 'backend:app/b1');
    assert.equal(objectKey(deleteBackend), 'backend:app/b1');
    assert.equal(objectKey(frontend), 'frontend:*;app.test;prefix:/;*');
  });

  it('decodes what changeMessage and transactionMessage publish', () => {
    const one = decodeMessage(raw(changeMessage(backend)), all);
    assert.deepEqual(one, { type: 'changes', key: 'backend:app/b1', changes: [backend], transaction: false });
    const tx = decodeMessage(raw(transactionMessage('app', [cluster, backend])), all);
    assert.deepEqual(tx, {
      type: 'changes',
      key: 'transaction:app',
      changes: [cluster, backend],
      transaction: true,
    });
  });

  it('reads an empty keyed message as a tombstone, with or without the format property', () => {
    assert.deepEqual(decodeMessage(raw({ key: 'backend:app/b1', payload: '' }), all), {
      type: 'tombstone',
      key: 'backend:app/b1',
    });
    assert.equal(
      decodeMessage(raw({ key: 'backend:app/b1', payload: '', properties: {} }), all).type,
      'tombstone',
    );
  });

  const refusals: [string, Parameters<typeof raw>[0], string, RegExp][] = [
    ['no key', { payload: JSON.stringify(backend) }, 'no_key', /no key/],
    [
      'no format property',
      { key: 'cluster:app', payload: '{}', properties: {} },
      'format_version',
      /kakehi-format/,
    ],
    [
      'another version',
      { key: 'cluster:app', payload: '{}', properties: { [FORMAT_PROPERTY]: '2' } },
      'format_version',
      /"2"/,
    ],
    ['not JSON', { key: 'cluster:app', payload: '{op:' }, 'not_json', /not UTF-8 JSON/],
    [
      'an unknown op',
      { key: 'cluster:app', payload: '{"op":"AddCluster"}' },
      'invalid_change',
      /use put_cluster/,
    ],
    [
      'a bad field',
      {
        key: 'backend:app/b1',
        payload: '{"op":"put_backend","backend":{"cluster":"app","id":"b1","address":"nowhere"}}',
      },
      'invalid_change',
      /backend\.address/,
    ],
    [
      'a key that is not the object',
      { key: 'backend:app/b2', payload: JSON.stringify(backend) },
      'key_mismatch',
      /its key is backend:app\/b1/,
    ],
    [
      'a transaction without its prefix',
      { key: 'app', payload: JSON.stringify({ changes: [cluster] }) },
      'key_mismatch',
      /transaction:/,
    ],
    [
      'an empty transaction',
      { key: 'transaction:x', payload: '{"changes":[]}' },
      'invalid_change',
      /non-empty/,
    ],
    [
      'a change under a transaction key',
      { key: 'transaction:x', payload: JSON.stringify(cluster) },
      'key_mismatch',
      /transaction key/,
    ],
  ];
  for (const [what, m, reason, detail] of refusals) {
    it(`refuses ${what}, naming why`, () => {
      const d = decodeMessage(raw(m), all);
      assert.equal(d.type, 'rejected');
      if (d.type !== 'rejected') return;
      assert.equal(d.reason, reason);
      assert.match(d.detail, detail);
    });
  }

  it('refuses certificates when told to, and nothing else', () => {
    const cert = {
      op: 'put_certificate',
      certificate: { listener: '127.0.0.1:443', certificate: 'x', key: 'y' },
    };
    // The schema refuses the fake PEM first; what matters is which check runs with certificates off.
    const off = decodeMessage(
      raw({ key: 'transaction:c', payload: JSON.stringify({ changes: [cluster] }) }),
      {
        certificates: false,
      },
    );
    assert.equal(off.type, 'changes');
    const d = decodeMessage(raw({ key: 'certificate:x', payload: JSON.stringify(cert) }), {
      certificates: false,
    });
    assert.equal(d.type, 'rejected');
  });
});

describe('desired state: the fold of the compacted view', () => {
  it('sends each put (a republish re-asserts it), and a delete for a tombstone', () => {
    const d = new DesiredState();
    assert.deepEqual(d.apply('backend:app/b1', [backend], false).changes, [backend]);
    assert.deepEqual(d.apply('backend:app/b1', [structuredClone(backend)], false).changes, [backend]);
    assert.deepEqual(d.apply('backend:app/b1', undefined, false).changes, [deleteBackend]);
    assert.equal(d.objects.size, 0);
    assert.deepEqual(d.apply('backend:app/b1', undefined, false).changes, []);
  });

  it('keeps a delete op as the word on its object, so a sync deletes it whatever its source', () => {
    const d = new DesiredState();
    assert.deepEqual(d.apply('backend:app/b1', [deleteBackend], false).changes, [deleteBackend]);
    assert.equal(d.objects.get('backend:app/b1')?.change, deleteBackend);
  });

  it("a transaction's tombstone deletes what only it put; a later message's word stands", () => {
    const d = new DesiredState();
    d.apply('transaction:t', [cluster, backend, frontend], true);
    const moved = parsed([
      { op: 'put_backend', backend: { cluster: 'app', id: 'b1', address: '127.0.0.1:4000' } },
    ])[0]!;
    d.apply('backend:app/b1', [moved], false);
    const out = d.apply('transaction:t', undefined, true).changes;
    assert.deepEqual(out.map((c) => c.op).sort(), ['delete_cluster', 'delete_frontend']);
    assert.equal(d.objects.get('backend:app/b1')?.change, moved);
  });

  it("a tombstone of an object a transaction also put falls back to the transaction's version, as compaction would", () => {
    const d = new DesiredState();
    d.apply('transaction:t', [cluster, backend], true);
    const moved = parsed([
      { op: 'put_backend', backend: { cluster: 'app', id: 'b1', address: '127.0.0.1:4000' } },
    ])[0]!;
    d.apply('backend:app/b1', [moved], false);
    assert.deepEqual(d.apply('backend:app/b1', undefined, false).changes, [backend]);
  });

  it('a new version of a transaction deletes what it no longer names', () => {
    const d = new DesiredState();
    d.apply('transaction:t', [cluster, backend], true);
    assert.deepEqual(d.apply('transaction:t', [cluster], true).changes, [deleteBackend]);
  });

  it('refuses to grow past its bound', () => {
    const d = new DesiredState(2);
    d.apply('cluster:app', [cluster], false);
    d.apply('backend:app/b1', [backend], false);
    assert.equal(d.wouldOverflow('frontend:*;app.test;prefix:/;*', [frontend]), true);
    assert.equal(d.wouldOverflow('backend:app/b1', [deleteBackend]), false);
  });
});

describe('sync plan', () => {
  const fold = (...m: [string, Change[]][]) => {
    const d = new DesiredState();
    for (const [k, c] of m) d.apply(k, c, k.startsWith('transaction:'));
    return d.words();
  };
  const other = parsed([{ op: 'put_cluster', cluster: { id: 'other' } }])[0]!;

  it('puts what differs or belongs to another source, deletes what only this source put, touches nothing else', () => {
    const held = heldByKey([
      { change: cluster, source: 'pulsar' },
      { change: backend, source: 'runtime' },
      { change: other, source: 'pulsar' },
      { change: parsed([{ op: 'put_cluster', cluster: { id: 'mine' } }])[0]!, source: 'config' },
    ]);
    const plan = planSync(
      fold(['cluster:app', [cluster]], ['backend:app/b1', [backend]], [objectKey(frontend), [frontend]]),
      held,
      'pulsar',
    );
    assert.deepEqual(
      plan.map((p) => p.change),
      [backend, frontend, { op: 'delete_cluster', id: 'other' }],
    );
  });

  it('plans nothing for a cluster whose backend_tls client key the proxy shows redacted', () => {
    if (cluster.op !== 'put_cluster') throw new Error('fixture');
    const withKey = (client_key: string): Change => ({
      op: 'put_cluster',
      cluster: {
        ...cluster.cluster,
        backend_tls: {
          verify: true,
          min_version: '1.2',
          ca: undefined,
          server_name: undefined,
          client_certificate: 'PEM',
          client_key,
        },
      },
    });
    const held = heldByKey([{ change: withKey('<redacted>'), source: 'pulsar' }]);
    assert.deepEqual(planSync(fold(['cluster:app', [withKey('the real key')]]), held, 'pulsar'), []);
  });

  it('plans nothing when the proxy already holds the topic', () => {
    const held = heldByKey([
      { change: cluster, source: 'pulsar' },
      { change: backend, source: 'pulsar' },
    ]);
    assert.deepEqual(
      planSync(fold(['cluster:app', [cluster]], ['backend:app/b1', [backend]]), held, 'pulsar'),
      [],
    );
  });
});

describe('applying a plan', () => {
  const plan = [
    { change: cluster, group: 'cluster:app' },
    { change: frontend, group: 'frontend:x' },
    { change: backend, group: 'transaction:t' },
  ];

  it('drops the messages the proxy names, whole, and applies the rest', async () => {
    const sent: Change[][] = [];
    const out = await applyPlan(
      plan,
      async (changes) => {
        sent.push(changes);
        if (changes.length === 3) {
          throw new CommandError(
            {
              code: 'KKH_CHANGE_INVALID',
              message: 'no',
              issues: [{ path: 'changes[1].frontend.cluster', reason: 'nope' }],
            },
            'transaction',
            1,
          );
        }
        return { generation: 7, applied: changes.map(() => ({ op: 'x', key: 'k', effect: 'created' })) };
      },
      { maxBytes: 1 << 20 },
    );
    assert.deepEqual(sent[1], [cluster, backend]);
    assert.deepEqual(out.refused, [{ group: 'frontend:x', reason: 'changes[1].frontend.cluster: nope' }]);
    assert.equal(out.effective, 2);
  });

  it('splits a plan larger than one frame, keeping its order', async () => {
    const parts: Change[][] = [];
    const send = async (c: Change[]) => {
      parts.push(c);
      return { generation: 1 };
    };
    await applyPlan(plan, send, { maxBytes: 1 });
    assert.deepEqual(parts, [[cluster], [frontend], [backend]]);
  });

  it('lets a transport failure or a stale generation through to the caller', async () => {
    const stale = new CommandError({ code: 'KKH_GENERATION_MISMATCH', message: 'stale' }, 'transaction', 1);
    await assert.rejects(
      applyPlan(plan, () => Promise.reject(stale), { maxBytes: 1 << 20, expectGeneration: 3 }),
      /stale/,
    );
  });
});

describe('bounded queue', () => {
  it('makes put wait while full, and take wait while empty', async () => {
    const q = new BoundedQueue<number>(1);
    await q.put(1);
    let second = false;
    const p = q.put(2).then(() => {
      second = true;
    });
    await Promise.resolve();
    assert.equal(second, false);
    assert.equal(await q.take(), 1);
    await p;
    assert.equal(second, true);
    assert.equal(await q.take(), 2);
    const ac = new AbortController();
    const pending = q.take(ac.signal);
    ac.abort();
    assert.equal(await pending, undefined);
  });
});
