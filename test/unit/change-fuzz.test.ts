// Fuzzing the change vocabulary and transactions: any JSON given as a change
// list is refused with issues naming where, or parses; a parsed list applied to
// an empty or a populated state commits (and the state keeps its invariants) or
// is refused whole with issues, never an exception.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CHANGE_OPS,
  CHANGE_REQUESTS,
  type ChangeRequestType,
  parseChanges,
  requestChanges,
} from '../../src/state/change.js';
import { assertInvariants } from '../../src/state/invariants.js';
import { emptyState, type ProxyState } from '../../src/state/proxy-state.js';
import { applyChanges } from '../../src/state/transaction.js';
import { arbEdgeString, arbValue, FUZZ_TEST, fuzz } from '../helpers/fuzz.js';

// A state with one of everything but certificates, for deletes and references to hit.
function populated(): ProxyState {
  const r = applyChanges(
    emptyState(),
    [
      { op: 'put_listener', listener: { address: '127.0.0.1:8080' } },
      { op: 'put_cluster', cluster: { id: 'a' } },
      { op: 'put_backend', backend: { cluster: 'a', id: 'a-1', address: '127.0.0.1:3000' } },
      { op: 'put_frontend', frontend: { hostname: 'a.test', cluster: 'a' } },
    ] as never,
    'fuzz',
  );
  assert.ok(r.ok, JSON.stringify(r));
  return r.state;
}

/** Usually a good value, sometimes anything: most changes parse, and each field's refusal comes up. */
const near = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 29, arbitrary: good }, { weight: 1, arbitrary: arbValue });
const arbAddress = near(fc.constantFrom('127.0.0.1:8080', '127.0.0.1:8081', '[::1]:80', '0.0.0.0:0'));
const arbId = near(fc.constantFrom('a', 'b', 'a-1', 'b-1'));
const opt = { requiredKeys: [] as [] };
const arbListener = fc.record(
  {
    address: arbAddress,
    protocol: near(fc.constantFrom('http', 'https')),
    max_header_count: near(fc.nat(300)),
  },
  { requiredKeys: ['address'] },
);
const arbCluster = fc.record(
  {
    id: arbId,
    load_balancing: near(fc.constantFrom('round_robin', 'random', 'least_connections', 'power_of_two')),
    https_redirect: near(fc.boolean()),
  },
  { requiredKeys: ['id'] },
);
const arbBackend = fc.record(
  { cluster: arbId, id: arbId, address: arbAddress, weight: near(fc.integer({ min: -1, max: 1000 })) },
  { requiredKeys: ['cluster', 'id', 'address'] },
);
const arbFrontendRef = {
  listener: arbAddress,
  hostname: near(fc.constantFrom('a.test', '*.a.test', '*', '/^x+$/.test')),
  path: near(fc.constantFrom('/', '/api', '^/[0-9]+$', '(')),
  path_type: near(fc.constantFrom('prefix', 'exact', 'regex')),
  method: near(fc.constantFrom('GET', 'POST')),
};
const arbFrontend = fc.record(
  {
    ...arbFrontendRef,
    cluster: arbId,
    deny: near(fc.constant(true)),
    allowed_upgrades: near(fc.constantFrom(['websocket'], ['h2c'], [], ['H2C'])),
    tags: near(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 })),
  },
  { requiredKeys: ['hostname'] },
);
const arbChange = fc.oneof(
  fc.record({ op: fc.constant('put_listener'), listener: arbListener }),
  fc.record({ op: fc.constant('delete_listener'), address: arbAddress }),
  fc.record({ op: fc.constant('put_cluster'), cluster: arbCluster }),
  fc.record({ op: fc.constant('delete_cluster'), id: arbId }),
  fc.record({ op: fc.constant('put_backend'), backend: arbBackend }),
  fc.record({ op: fc.constant('delete_backend'), cluster: arbId, id: arbId }),
  fc.record({ op: fc.constant('put_frontend'), frontend: arbFrontend }),
  fc.record({ op: fc.constant('delete_frontend'), frontend: fc.record(arbFrontendRef, opt) }),
  fc.record({
    op: fc.constant('delete_certificate'),
    listener: arbAddress,
    fingerprint: near(fc.constantFrom('ab'.repeat(32), `${'AB:'.repeat(31)}AB`)),
  }),
  // A wrong or unknown op, or a change with a field its op does not have.
  fc.record(
    { op: near(fc.constantFrom(...CHANGE_OPS, 'AddCluster', 'remove_backend')), extra: arbValue },
    opt,
  ),
);

function applyEither(raw: unknown, state: ProxyState): void {
  const parsed = parseChanges(raw, 'changes');
  if ('issues' in parsed) {
    assert.ok(parsed.issues.length > 0);
    for (const i of parsed.issues) assert.match(i.path, /^changes/);
    return;
  }
  const r = applyChanges(state, parsed.changes, 'fuzz', { now: Date.now() });
  if (r.ok) assertInvariants(r.state);
  else assert.ok(r.issues.length > 0 && r.issues.every((i) => i.reason.length > 0));
}

describe('change list fuzz', () => {
  const base = populated();

  it(
    'any JSON value as a change list is refused with issues, or parses and applies or is refused whole',
    FUZZ_TEST,
    () => {
      fuzz(
        'changes any value',
        fc.property(arbValue, (raw) => applyEither(raw, base)),
      );
    },
  );

  it('change-shaped lists commit with the invariants kept, or are refused with issues', FUZZ_TEST, () => {
    fuzz(
      'changes shaped',
      fc.property(fc.array(arbChange, { maxLength: 5 }), fc.boolean(), (raw, fromEmpty) =>
        applyEither(raw, fromEmpty ? emptyState() : base),
      ),
    );
  });

  it('Sōzu-style requests with any body become changes that parse or are refused', FUZZ_TEST, () => {
    const types = Object.keys(CHANGE_REQUESTS) as ChangeRequestType[];
    fuzz(
      'change requests',
      fc.property(
        fc.constantFrom(...types),
        fc.dictionary(
          fc.oneof(fc.constantFrom('listener', 'cluster', 'backend', 'frontend', 'address'), arbEdgeString),
          fc.oneof(arbListener, arbCluster, arbBackend, arbFrontend, arbId, arbValue),
          { maxKeys: 4 },
        ),
        (type, body) => applyEither(requestChanges(type, body), base),
      ),
    );
  });
});
