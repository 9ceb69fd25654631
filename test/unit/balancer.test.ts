// Each balancing algorithm's choices with a seeded random source: exact rotation,
// weighted shares within a stated statistical bound, least-loaded choice and tie
// rotation, power-of-two never choosing the most loaded; then primary/backup tiers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Balancer, Candidate, Random } from '../../src/balancer/candidate.js';
import { LeastConnections } from '../../src/balancer/least-connections.js';
import { PowerOfTwo } from '../../src/balancer/power-of-two.js';
import { WeightedRandom } from '../../src/balancer/random.js';
import { RoundRobin } from '../../src/balancer/round-robin.js';
import { type BalancerKind, createBalancer, pickBackend } from '../../src/balancer/select.js';

/** mulberry32: a small, well-distributed 32-bit generator, enough for sampling tests. */
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

const SEED = 0x6b616b65;

function cand(id: string, opts: Partial<Omit<Candidate, 'id'>> = {}): Candidate {
  return { id, weight: 100, backup: false, available: true, active: 0, ...opts };
}

function ids(balancer: Balancer, cs: readonly Candidate[], n: number): string[] {
  return Array.from({ length: n }, () => balancer.pick(cs)?.id ?? '-');
}

function counts(balancer: Balancer, cs: readonly Candidate[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = balancer.pick(cs)?.id ?? '-';
    m.set(id, (m.get(id) ?? 0) + 1);
  }
  return m;
}

/**
 * A pick count is Binomial(n, p): σ = √(n·p·(1−p)). Five σ either side: a correct
 * implementation strays that far with probability < 6·10⁻⁷ per bucket whatever the
 * seed, while the bugs we guard against (weights ignored, off-by-one candidate) move
 * a bucket by thousands of σ at n = 100,000.
 */
function assertShare(actual: number, n: number, p: number, label: string): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  const expected = n * p;
  assert.ok(
    Math.abs(actual - expected) <= 5 * sigma,
    `${label}: ${actual} picks, expected ${expected.toFixed(0)} ± ${(5 * sigma).toFixed(0)}`,
  );
}

describe('RoundRobin', () => {
  it('rotates exactly through the candidates in order', () => {
    const cs = [cand('a'), cand('b'), cand('c')];
    assert.deepEqual(ids(new RoundRobin(), cs, 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('ignores weight', () => {
    const cs = [cand('a', { weight: 1 }), cand('b', { weight: 1000 })];
    assert.deepEqual(ids(new RoundRobin(), cs, 4), ['a', 'b', 'a', 'b']);
  });

  it('skips unavailable candidates without breaking the rotation of the others', () => {
    const cs = [cand('a'), cand('b', { available: false }), cand('c'), cand('d')];
    const rr = new RoundRobin();
    assert.deepEqual(ids(rr, cs, 4), ['a', 'c', 'd', 'a']);
    cs[1]!.available = true;
    assert.deepEqual(ids(rr, cs, 4), ['b', 'c', 'd', 'a']);
  });

  it('keeps going when the array shrinks under its cursor', () => {
    const rr = new RoundRobin();
    assert.deepEqual(ids(rr, [cand('a'), cand('b'), cand('c')], 3), ['a', 'b', 'c']);
    assert.deepEqual(ids(rr, [cand('x'), cand('y')], 3), ['y', 'x', 'y']);
  });

  it('returns undefined when no candidate is available', () => {
    assert.equal(new RoundRobin().pick([]), undefined);
    assert.equal(new RoundRobin().pick([cand('a', { available: false })]), undefined);
  });
});

describe('WeightedRandom', () => {
  it('shares 100,000 picks in proportion to weight and never picks weight 0', () => {
    const cs = [
      cand('w1', { weight: 1 }),
      cand('w0', { weight: 0 }),
      cand('w2', { weight: 2 }),
      cand('w3', { weight: 3 }),
      cand('w4', { weight: 4 }),
    ];
    const n = 100_000;
    const got = counts(new WeightedRandom(seeded(SEED)), cs, n);
    assert.equal(got.get('w0'), undefined, 'weight 0 was picked');
    for (const [id, w] of [
      ['w1', 1],
      ['w2', 2],
      ['w3', 3],
      ['w4', 4],
    ] as const) {
      assertShare(got.get(id) ?? 0, n, w / 10, id);
    }
  });

  it('maps the random draw onto cumulative weights, boundaries included', () => {
    const cs = [cand('a', { weight: 1 }), cand('b', { weight: 3 })];
    const at = (r: number) => new WeightedRandom(() => r).pick(cs)?.id;
    assert.equal(at(0), 'a');
    assert.equal(at(0.2499), 'a');
    assert.equal(at(0.25), 'b');
    assert.equal(at(0.9999), 'b');
    assert.equal(at(1), 'b', 'a generator returning 1 must not yield undefined');
  });

  it('leaves unavailable candidates out of the total', () => {
    const cs = [
      cand('a', { weight: 3, available: false }),
      cand('b', { weight: 1 }),
      cand('c', { weight: 1 }),
    ];
    const at = (r: number) => new WeightedRandom(() => r).pick(cs)?.id;
    assert.equal(at(0.49), 'b');
    assert.equal(at(0.51), 'c');
  });

  it('returns undefined when every available candidate has weight 0 or less', () => {
    const cs = [
      cand('a', { weight: 0 }),
      cand('b', { weight: -1 }),
      cand('c', { weight: 5, available: false }),
    ];
    assert.equal(new WeightedRandom(seeded(SEED)).pick(cs), undefined);
  });
});

describe('LeastConnections', () => {
  it('picks the candidate with the fewest in-flight requests', () => {
    const cs = [cand('a', { active: 5 }), cand('b', { active: 2 }), cand('c', { active: 7 })];
    assert.deepEqual(ids(new LeastConnections(), cs, 3), ['b', 'b', 'b']);
  });

  it('rotates among tied candidates instead of always taking the first', () => {
    const cs = [
      cand('a', { active: 3 }),
      cand('b', { active: 1 }),
      cand('c', { active: 1 }),
      cand('d', { active: 5 }),
    ];
    assert.deepEqual(ids(new LeastConnections(), cs, 4), ['b', 'c', 'b', 'c']);
  });

  it('skips an unavailable candidate even when it is the least loaded', () => {
    const cs = [cand('a', { active: 0, available: false }), cand('b', { active: 4 })];
    assert.equal(new LeastConnections().pick(cs)?.id, 'b');
  });

  it('spreads requests evenly when each pick adds load', () => {
    const cs = [cand('a', { active: 10 }), cand('b'), cand('c')];
    const lc = new LeastConnections();
    for (let i = 0; i < 30; i++) lc.pick(cs)!.active++;
    assert.deepEqual(
      cs.map((c) => c.active),
      [14, 13, 13],
    );
  });
});

describe('PowerOfTwo', () => {
  it('never picks the most loaded of three, and picks the middle one only when drawn against it', () => {
    const cs = [cand('heavy', { active: 10 }), cand('light', { active: 0 }), cand('mid', { active: 5 })];
    const n = 30_000;
    const got = counts(new PowerOfTwo(seeded(SEED)), cs, n);
    assert.equal(got.get('heavy'), undefined, 'the most loaded candidate won a draw');
    // Of the three equally likely pairs, mid wins only {heavy, mid}: a share of 1/3.
    // A full scan (Sōzu's variant) would never pick mid at all.
    assertShare(got.get('mid') ?? 0, n, 1 / 3, 'mid');
    assertShare(got.get('light') ?? 0, n, 2 / 3, 'light');
  });

  it('draws two distinct candidates even when the random source repeats itself', () => {
    const zero = () => 0;
    assert.equal(new PowerOfTwo(zero).pick([cand('a', { active: 1 }), cand('b', { active: 0 })])?.id, 'b');
    assert.equal(new PowerOfTwo(zero).pick([cand('a'), cand('b')])?.id, 'a', 'on a tie the first draw wins');
  });

  it('splits equally loaded candidates uniformly', () => {
    const cs = [cand('a'), cand('b'), cand('c')];
    const n = 30_000;
    const got = counts(new PowerOfTwo(seeded(SEED + 1)), cs, n);
    for (const id of ['a', 'b', 'c']) assertShare(got.get(id) ?? 0, n, 1 / 3, id);
  });

  it('returns the only available candidate without drawing', () => {
    let draws = 0;
    const p2c = new PowerOfTwo(() => {
      draws++;
      return 0.5;
    });
    assert.equal(p2c.pick([cand('a', { available: false }), cand('b', { active: 9 })])?.id, 'b');
    assert.equal(draws, 0);
    assert.equal(p2c.pick([cand('a', { available: false })]), undefined);
  });
});

describe('pickBackend', () => {
  const kinds: BalancerKind[] = ['round_robin', 'random', 'least_connections', 'power_of_two'];

  for (const kind of kinds) {
    it(`${kind}: picks only available primaries while one is available`, () => {
      const cs = [cand('p1'), cand('b1', { backup: true }), cand('p2', { available: false }), cand('p3')];
      const balancer = createBalancer(kind, seeded(SEED));
      const seen = new Set<string>();
      for (let i = 0; i < 200; i++) seen.add(pickBackend(balancer, cs)?.id ?? '-');
      assert.deepEqual([...seen].sort(), ['p1', 'p3']);
    });

    it(`${kind}: falls back to available backups only when no primary is available`, () => {
      const cs = [
        cand('p1', { available: false }),
        cand('b1', { backup: true }),
        cand('b2', { backup: true, available: false }),
        cand('b3', { backup: true }),
      ];
      const balancer = createBalancer(kind, seeded(SEED));
      const seen = new Set<string>();
      for (let i = 0; i < 200; i++) seen.add(pickBackend(balancer, cs)?.id ?? '-');
      assert.deepEqual([...seen].sort(), ['b1', 'b3']);
      cs[0]!.available = true;
      assert.equal(pickBackend(balancer, cs)?.id, 'p1', 'a recovered primary takes over again');
    });

    it(`${kind}: returns undefined when nothing is available`, () => {
      const balancer = createBalancer(kind, seeded(SEED));
      assert.equal(pickBackend(balancer, []), undefined);
      const cs = [cand('p', { available: false }), cand('b', { backup: true, available: false })];
      assert.equal(pickBackend(balancer, cs), undefined);
    });
  }

  it('round_robin rotates among backups as it does among primaries', () => {
    const cs = [cand('p', { available: false }), cand('b1', { backup: true }), cand('b2', { backup: true })];
    const rr = createBalancer('round_robin');
    assert.deepEqual(
      Array.from({ length: 4 }, () => pickBackend(rr, cs)?.id),
      ['b1', 'b2', 'b1', 'b2'],
    );
  });

  it('random falls back to backups when every available primary is drained to weight 0', () => {
    const cs = [cand('p', { weight: 0 }), cand('b', { backup: true })];
    assert.equal(pickBackend(createBalancer('random', seeded(SEED)), cs)?.id, 'b');
  });

  it('hands a balancer without tiers filtered copies: primaries, then backups', () => {
    const given: string[][] = [];
    const first: Balancer = {
      pick<C extends Candidate>(cs: readonly C[]): C | undefined {
        given.push(cs.map((c) => c.id));
        return cs[0];
      },
    };
    const cs = [cand('p1', { available: false }), cand('b1', { backup: true }), cand('p2')];
    assert.equal(pickBackend(first, cs)?.id, 'p2');
    cs[2]!.available = false;
    assert.equal(pickBackend(first, cs)?.id, 'b1');
    assert.deepEqual(given, [['p2'], [], ['b1']]);
  });

  it('creates the algorithm each configured name stands for', () => {
    assert.ok(createBalancer('round_robin') instanceof RoundRobin);
    assert.ok(createBalancer('random') instanceof WeightedRandom);
    assert.ok(createBalancer('least_connections') instanceof LeastConnections);
    assert.ok(createBalancer('power_of_two') instanceof PowerOfTwo);
    assert.throws(() => createBalancer('hrw' as BalancerKind), /unknown load balancing "hrw"/);
  });
});
