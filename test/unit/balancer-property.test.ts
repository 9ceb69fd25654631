// Properties every balancer keeps over generated candidate sets and pick
// sequences (fast-check, fixed seed): never an unavailable or foreign candidate,
// undefined exactly when nothing is pickable, backups only without primaries, and
// each algorithm's own invariant.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Candidate, Random } from '../../src/balancer/candidate.js';
import { LeastConnections } from '../../src/balancer/least-connections.js';
import { PowerOfTwo } from '../../src/balancer/power-of-two.js';
import { RoundRobin } from '../../src/balancer/round-robin.js';
import { type BalancerKind, createBalancer, pickBackend } from '../../src/balancer/select.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const NUM_RUNS = Math.max(1000, Number(process.env.FC_RUNS ?? 1000));
const KINDS: BalancerKind[] = ['round_robin', 'random', 'least_connections', 'power_of_two'];

function seeded(seed: number): Random {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const candidate = fc.record({
  weight: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })),
  backup: fc.boolean(),
  available: fc.boolean(),
  active: fc.integer({ min: 0, max: 6 }),
});
const candidates = fc
  .array(candidate, { maxLength: 8 })
  .map((cs): Candidate[] => cs.map((c, i) => ({ id: `c${i}`, ...c })));
/** Between picks the data plane flips availability and load; model that as a script of edits. */
const edits = fc.array(
  fc.record({ index: fc.nat(7), available: fc.boolean(), active: fc.integer({ min: 0, max: 6 }) }),
  { minLength: 1, maxLength: 20 },
);

/** What a kind can pick at all: weighted random never picks weight 0. */
function pickable(kind: BalancerKind, c: Candidate): boolean {
  return c.available && (kind !== 'random' || c.weight > 0);
}

describe('balancer properties', () => {
  for (const kind of KINDS) {
    it(`${kind}: pickBackend returns a pickable candidate of the set, a backup only when no primary is pickable, undefined iff none is`, (t) => {
      t.diagnostic(`fast-check seed ${SEED}, ${NUM_RUNS} runs`);
      fc.assert(
        fc.property(candidates, edits, fc.integer(), (cs, script, rngSeed) => {
          const balancer = createBalancer(kind, seeded(rngSeed));
          for (const e of script) {
            const target = cs[e.index % Math.max(1, cs.length)];
            if (target !== undefined) {
              target.available = e.available;
              target.active = e.active;
            }
            const got = pickBackend(balancer, cs);
            const primaries = cs.filter((c) => !c.backup && pickable(kind, c));
            const backups = cs.filter((c) => c.backup && pickable(kind, c));
            if (got === undefined) {
              assert.equal(
                primaries.length + backups.length,
                0,
                'undefined although a candidate was pickable',
              );
            } else {
              assert.ok(cs.includes(got), 'returned an object not in the set');
              assert.ok(pickable(kind, got), `returned unpickable ${got.id}`);
              assert.equal(got.backup, primaries.length === 0, 'wrong tier');
            }
          }
        }),
        { seed: SEED, numRuns: NUM_RUNS },
      );
    });
  }

  it('round_robin: m consecutive picks over m available candidates return each exactly once', (t) => {
    t.diagnostic(`fast-check seed ${SEED}, ${NUM_RUNS} runs`);
    fc.assert(
      fc.property(candidates, fc.nat(20), (cs, warmup) => {
        const rr = new RoundRobin();
        for (let i = 0; i < warmup; i++) rr.pick(cs);
        const available = cs.filter((c) => c.available);
        const got = available.map(() => rr.pick(cs)?.id);
        assert.deepEqual([...got].sort(), available.map((c) => c.id).sort());
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });

  it('least_connections: always returns a least-loaded available candidate', (t) => {
    t.diagnostic(`fast-check seed ${SEED}, ${NUM_RUNS} runs`);
    fc.assert(
      fc.property(candidates, fc.nat(20), (cs, picks) => {
        const lc = new LeastConnections();
        for (let i = 0; i <= picks; i++) {
          const got = lc.pick(cs);
          const min = Math.min(...cs.filter((c) => c.available).map((c) => c.active));
          if (got === undefined) assert.equal(min, Number.POSITIVE_INFINITY);
          else assert.equal(got.active, min);
          if (got !== undefined) got.active++;
        }
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });

  it('power_of_two: never returns the single most loaded of two or more available candidates', (t) => {
    t.diagnostic(`fast-check seed ${SEED}, ${NUM_RUNS} runs`);
    fc.assert(
      fc.property(candidates, fc.integer(), (cs, rngSeed) => {
        const p2c = new PowerOfTwo(seeded(rngSeed));
        const available = cs.filter((c) => c.available);
        for (let i = 0; i < 20; i++) {
          const got = p2c.pick(cs);
          if (available.length < 2) {
            assert.equal(got, available[0]);
            continue;
          }
          assert.ok(got?.available, 'no available candidate picked');
          const others = available.filter((c) => c !== got);
          assert.ok(
            others.some((c) => c.active >= got.active),
            `picked ${got.id} (active ${got.active}), more loaded than every other`,
          );
        }
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });
});
