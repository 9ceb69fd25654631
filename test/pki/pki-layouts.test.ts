// Which files pair up, for each layout the connector accepts, and properties over
// generated trees: every file is used by at most one pair, output is order-free.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { discoverPairs } from '../../connectors/pki/layouts.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);

describe('pki layouts', () => {
  it('certbot live/<name>/ with fullchain.pem and privkey.pem; archive/ and keys/ skipped', () => {
    const d = discoverPairs([
      'live/README',
      'live/a.example/cert.pem',
      'live/a.example/chain.pem',
      'live/a.example/fullchain.pem',
      'live/a.example/privkey.pem',
      'live/a.example/README',
      'archive/a.example/cert1.pem',
      'archive/a.example/privkey1.pem',
      'archive/a.example/fullchain1.pem',
      'keys/0000_key-certbot.pem',
      'accounts/x/meta.json',
    ]);
    assert.deepEqual(d.pairs, [
      {
        id: 'live/a.example/fullchain.pem',
        layout: 'certbot',
        certificate: 'live/a.example/fullchain.pem',
        key: 'live/a.example/privkey.pem',
        label: 'a.example',
      },
    ]);
    assert.deepEqual(d.unpaired, []);
  });

  it('certbot without fullchain uses cert.pem and chain.pem', () => {
    const d = discoverPairs(['x/cert.pem', 'x/chain.pem', 'x/privkey.pem']);
    assert.equal(d.pairs.length, 1);
    assert.equal(d.pairs[0]?.certificate, 'x/cert.pem');
    assert.equal(d.pairs[0]?.chain, 'x/chain.pem');
  });

  it('a watched directory that is live/ itself', () => {
    const d = discoverPairs(['a.example/fullchain.pem', 'a.example/privkey.pem', 'README']);
    assert.equal(d.pairs[0]?.layout, 'certbot');
    assert.equal(d.pairs[0]?.label, 'a.example');
  });

  it('Sōzu style <name>/<name>.crt + .key, flat .crt/.pem + .key, combined .pem', () => {
    const d = discoverPairs([
      'app/app.crt',
      'app/app.key',
      'app/options.json',
      'b.crt',
      'b.key',
      'c.pem',
      'c.key',
      'd.pem',
      'lonely.crt',
      'orphan.key',
      '.hidden.pem',
    ]);
    const summary = d.pairs.map((p) => [p.id, p.layout, p.key]);
    assert.deepEqual(summary, [
      ['app/app.crt', 'sozu', 'app/app.key'],
      ['b.crt', 'flat', 'b.key'],
      ['c.pem', 'flat', 'c.key'],
      ['d.pem', 'combined', 'd.pem'],
    ]);
    assert.deepEqual(d.unpaired, ['lonely.crt', 'orphan.key']);
  });

  it('.crt wins over .pem for the same stem; the .pem is then a combined candidate', () => {
    const d = discoverPairs(['x.crt', 'x.pem', 'x.key']);
    assert.deepEqual(
      d.pairs.map((p) => [p.id, p.layout]),
      [
        ['x.crt', 'flat'],
        ['x.pem', 'combined'],
      ],
    );
  });

  it('properties: each file in at most one pair, ids unique, listing order irrelevant', () => {
    const name = fc.constantFrom('a', 'b', 'live', 'archive', 'x.example', 'keys');
    const file = fc.constantFrom(
      'a.crt',
      'a.key',
      'a.pem',
      'b.pem',
      'b.key',
      'fullchain.pem',
      'privkey.pem',
      'cert.pem',
      'chain.pem',
      'x.example.crt',
      'x.example.key',
      'README',
    );
    const path = fc.tuple(fc.array(name, { maxLength: 3 }), file).map(([dirs, f]) => [...dirs, f].join('/'));
    fc.assert(
      fc.property(fc.uniqueArray(path, { maxLength: 40 }), (files) => {
        const d = discoverPairs(files);
        const used = new Map<string, string>();
        const ids = new Set<string>();
        for (const p of d.pairs) {
          assert.ok(!ids.has(p.id), `duplicate id ${p.id}`);
          ids.add(p.id);
          for (const f of new Set([p.certificate, p.key, p.chain].filter((x) => x !== undefined))) {
            assert.ok(files.includes(f as string), `${f} not in the listing`);
            assert.ok(!used.has(f as string), `${f} used by ${used.get(f as string)} and ${p.id}`);
            used.set(f as string, p.id);
          }
        }
        for (const u of d.unpaired) assert.ok(!used.has(u));
        assert.deepEqual(discoverPairs([...files].reverse()), d);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
