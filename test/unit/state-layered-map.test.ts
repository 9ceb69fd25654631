// LayeredMap against a plain Map as the model: after any sequence of edit
// batches, every read and every iteration agrees, earlier versions stay as
// they were, and a long run folds its patch instead of growing it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LayeredMap } from '../../src/state/layered-map.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 1000);
console.log(`state-layered-map: fast-check seed ${SEED}, ${NUM_RUNS} runs`);

const arbBatch = fc.array(
  fc.tuple(fc.integer({ min: 0, max: 150 }), fc.option(fc.nat(), { nil: undefined })),
  {
    maxLength: 30,
  },
);

function agrees(m: ReadonlyMap<string, number>, model: Map<string, number>): void {
  assert.equal(m.size, model.size);
  assert.deepEqual([...m].sort(), [...model].sort());
  assert.deepEqual([...m.keys()].sort(), [...model.keys()].sort());
  assert.deepEqual(
    [...m.values()].sort((a, b) => a - b),
    [...model.values()].sort((a, b) => a - b),
  );
  for (let k = 0; k <= 150; k++) {
    assert.equal(m.get(`k${k}`), model.get(`k${k}`));
    assert.equal(m.has(`k${k}`), model.has(`k${k}`));
  }
  const seen: string[] = [];
  m.forEach((v, k) => {
    assert.equal(model.get(k), v);
    seen.push(k);
  });
  assert.equal(seen.length, model.size);
}

describe('LayeredMap', () => {
  it('agrees with a plain Map after any edit batches, and older versions never change', () => {
    fc.assert(
      fc.property(fc.array(arbBatch, { maxLength: 40 }), (batches) => {
        let m: ReadonlyMap<string, number> = new Map();
        let model = new Map<string, number>();
        const history: [ReadonlyMap<string, number>, Map<string, number>][] = [];
        for (const batch of batches) {
          const edits = new Map(batch.map(([k, v]) => [`k${k}`, v] as const));
          m = LayeredMap.edit(m, edits);
          model = new Map(model);
          for (const [k, v] of edits) {
            if (v === undefined) model.delete(k);
            else model.set(k, v);
          }
          agrees(m, model);
          history.push([m, model]);
        }
        for (const [old, oldModel] of history) agrees(old, oldModel);
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });

  it('keeps insertion order like Map: updates stay in place, new keys go last', () => {
    const base = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    const m = LayeredMap.edit(
      base,
      new Map<string, number | undefined>([
        ['b', 20],
        ['d', 4],
        ['a', undefined],
      ]),
    );
    assert.deepEqual(
      [...m],
      [
        ['b', 20],
        ['c', 3],
        ['d', 4],
      ],
    );
    assert.deepEqual(
      [...base],
      [
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ],
    );
  });

  it('returns the same map for no edits, and folds a growing patch into a plain Map', () => {
    const base = new Map([['a', 1]]);
    assert.equal(LayeredMap.edit(base, new Map()), base);
    let m: ReadonlyMap<string, number> = base;
    let folds = 0;
    for (let i = 0; i < 1000; i++) {
      m = LayeredMap.edit(m, new Map([[`n${i}`, i]]));
      if (!(m instanceof LayeredMap)) folds++;
    }
    assert.equal(m.size, 1001);
    assert.ok(folds >= 5 && folds <= 20, `folded ${folds} times in 1000 single edits`);
  });
});
