// The hash balancers over plain candidate arrays: rendezvous (HRW) and Maglev
// map a key to the same backend every time and in every instance, spread 10,000
// keys evenly (within five binomial σ), and when one of 10 backends goes only
// about a tenth of the keys move: for HRW exactly the keys it held, for Maglev
// those and a few more; putting it back restores every key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Candidate, KeyedBalancer } from '../../src/balancer/candidate.js';
import { hashString, parseHashKey } from '../../src/balancer/hash-key.js';
import { buildMaglevTable, Maglev, maglevTableSize } from '../../src/balancer/maglev.js';
import { Rendezvous } from '../../src/balancer/rendezvous.js';
import { createBalancer, pickBackend } from '../../src/balancer/select.js';

function cand(id: string, opts: Partial<Omit<Candidate, 'id'>> = {}): Candidate {
  return { id, weight: 100, backup: false, available: true, active: 0, ...opts };
}

const tenBackends = () => Array.from({ length: 10 }, (_, i) => cand(`b${i}`));
const KEYS = Array.from({ length: 10_000 }, (_, i) => hashString(`user-${i}`));

const algorithms: [string, () => KeyedBalancer][] = [
  ['hash_rendezvous', () => new Rendezvous()],
  ['hash_maglev', () => new Maglev()],
];

/** The backend id each key maps to. */
function mapping(balancer: KeyedBalancer, cs: readonly Candidate[]): string[] {
  return KEYS.map((k) => pickBackend(balancer, cs, k)?.id ?? '-');
}

function assertShare(actual: number, n: number, p: number, label: string): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  assert.ok(
    Math.abs(actual - n * p) <= 5 * sigma,
    `${label}: ${actual} keys, expected ${(n * p).toFixed(0)} ± ${(5 * sigma).toFixed(0)}`,
  );
}

function countBy(ids: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

for (const [name, make] of algorithms) {
  describe(name, () => {
    it('maps a key to the same backend every time, in every instance, whatever the list order', () => {
      const cs = tenBackends();
      const first = mapping(make(), cs);
      assert.deepEqual(mapping(make(), cs), first);
      const again = make();
      assert.deepEqual(mapping(again, cs), first, 'a second pass over the same instance');
      if (name === 'hash_rendezvous') {
        // HRW scores each backend on its own: order cannot matter. (Maglev's table
        // fills in list order; the data plane keeps its list in state order.)
        assert.deepEqual(mapping(make(), [...cs].reverse()), first);
      }
    });

    it('spreads 10,000 keys over 10 backends within 5σ of a tenth each', () => {
      const counts = countBy(mapping(make(), tenBackends()));
      assert.equal(counts.size, 10);
      for (const [id, n] of counts) assertShare(n, KEYS.length, 0.1, id);
    });

    it('moves about a tenth of the keys when one of 10 backends goes, and restores them when it comes back', (t) => {
      const b = make();
      const all = tenBackends();
      const before = mapping(b, all);
      const without = all.filter((c) => c.id !== 'b3');
      const after = mapping(b, without);
      let moved = 0;
      let movedFromSurvivors = 0;
      for (let i = 0; i < KEYS.length; i++) {
        if (before[i] === after[i]) continue;
        moved++;
        if (before[i] !== 'b3') movedFromSurvivors++;
      }
      const share = moved / KEYS.length;
      t.diagnostic(
        `${name}: removing 1 of 10 backends moved ${(share * 100).toFixed(2)}% of keys (${movedFromSurvivors} from surviving backends)`,
      );
      assert.ok(share >= 0.05 && share <= 0.15, `moved ${share}`);
      assert.ok(after.every((id) => id !== 'b3'));
      if (name === 'hash_rendezvous')
        assert.equal(movedFromSurvivors, 0, 'HRW moves only the keys of the backend that went');
      // Maglev's rebuilt table shifts a few slots between survivors (the paper's ~1-2 % at this size).
      else
        assert.ok(
          movedFromSurvivors <= KEYS.length * 0.03,
          `${movedFromSurvivors} keys left a surviving backend`,
        );
      // The keys of the gone backend spread over the others, not onto one.
      const inherited = countBy(after.filter((_, i) => before[i] === 'b3'));
      assert.ok(inherited.size >= 8, `b3's keys went to ${inherited.size} backends`);
      assert.deepEqual(mapping(b, all), before, 'adding it back restores every key');
    });

    it('sends the keys of an unavailable backend to others and leaves every other key where it was', () => {
      const b = make();
      const cs = tenBackends();
      const before = mapping(b, cs);
      cs[7]!.available = false;
      const after = mapping(b, cs);
      for (let i = 0; i < KEYS.length; i++) {
        if (before[i] === 'b7') assert.notEqual(after[i], 'b7');
        else assert.equal(after[i], before[i]);
      }
      cs[7]!.available = true;
      assert.deepEqual(mapping(b, cs), before);
    });

    it('gives weighted backends shares in proportion to their weights', () => {
      const cs = [cand('a', { weight: 1 }), cand('b', { weight: 2 }), cand('c', { weight: 5 })];
      const counts = countBy(mapping(make(), cs));
      assertShare(counts.get('a') ?? 0, KEYS.length, 1 / 8, 'a');
      assertShare(counts.get('b') ?? 0, KEYS.length, 2 / 8, 'b');
      assertShare(counts.get('c') ?? 0, KEYS.length, 5 / 8, 'c');
    });

    it('uses backups only when no primary is available, and none at all when nothing is', () => {
      const cs = [cand('p1'), cand('p2'), cand('k1', { backup: true }), cand('k2', { backup: true })];
      const b = make();
      assert.ok(mapping(b, cs).every((id) => id === 'p1' || id === 'p2'));
      cs[0]!.available = false;
      cs[1]!.available = false;
      const onBackups = countBy(mapping(b, cs));
      assert.deepEqual([...onBackups.keys()].sort(), ['k1', 'k2']);
      cs[2]!.available = false;
      cs[3]!.available = false;
      assert.equal(pickBackend(b, cs, KEYS[0]), undefined);
      assert.equal(pickBackend(b, [], KEYS[0]), undefined);
    });

    it('balances a request without a key round robin', () => {
      const b = make();
      const cs = tenBackends();
      assert.deepEqual(
        Array.from({ length: 12 }, () => pickBackend(b, cs)?.id),
        ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9', 'b0', 'b1'],
      );
    });
  });
}

describe('Maglev table', () => {
  it('gives each of N backends ⌊M/N⌋ or ⌈M/N⌉ slots of a prime table at least 100·N long', () => {
    const cs = Array.from({ length: 7 }, (_, i) => cand(`m${i}`));
    const { slots } = buildMaglevTable(
      cs,
      cs.map((_, i) => i),
    );
    assert.equal(slots.length, 65_537);
    const per = new Array<number>(7).fill(0);
    for (const s of slots) per[s]!++;
    for (const n of per) assert.ok(n === Math.floor(65_537 / 7) || n === Math.ceil(65_537 / 7), String(n));
    assert.equal(maglevTableSize(655), 65_537);
    assert.equal(maglevTableSize(656), 131_071);
    assert.equal(maglevTableSize(100_000), 1_048_573);
  });

  it('is built once per set of backends: a new list with the same ids reuses it, a changed weight rebuilds it', () => {
    const b = new Maglev();
    const cs = tenBackends();
    const before = mapping(b, cs);
    assert.equal(b.tablesBuilt, 1, '10,000 picks, one table');
    // Another list, same backends (the data plane makes one per state): the table stays.
    const copy = cs.map((c) => ({ ...c }));
    assert.deepEqual(mapping(b, copy), before);
    assert.equal(b.tablesBuilt, 1);
    cs[4]!.available = false;
    mapping(b, cs);
    assert.equal(b.tablesBuilt, 1, 'availability is walked past, not rebuilt for');
    const heavier = cs.map((c) => (c.id === 'b0' ? { ...c, weight: 1000 } : { ...c }));
    const counts = countBy(mapping(b, heavier));
    assert.ok((counts.get('b0') ?? 0) > 4000, `b0 has ${counts.get('b0')} keys at weight 1000 of 1900`);
    assert.equal(b.tablesBuilt, 2);
  });
});

describe('createBalancer and hash_key', () => {
  it('makes the hash balancers by name', () => {
    assert.ok(createBalancer('hash_rendezvous') instanceof Rendezvous);
    assert.ok(createBalancer('hash_maglev') instanceof Maglev);
  });

  it('parses the hash keys kakehi knows and names what is wrong with others', () => {
    assert.deepEqual(parseHashKey('client_ip'), { from: 'client_ip' });
    assert.deepEqual(parseHashKey('path'), { from: 'path' });
    assert.deepEqual(parseHashKey('header:X-User-Id'), { from: 'header', name: 'x-user-id' });
    assert.deepEqual(parseHashKey('cookie:Session'), { from: 'cookie', name: 'Session' });
    assert.match(String(parseHashKey('header:')), /header: must be followed by a header name/);
    assert.match(String(parseHashKey('cookie:a b')), /cookie: must be followed by a cookie name/);
    assert.match(String(parseHashKey('source')), /"source" is not a hash key; use client_ip, path/);
  });
});
