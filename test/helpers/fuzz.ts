// Shared settings of the fuzz properties (test/unit/*-fuzz.test.ts): the normal
// suite runs each at 1e3, `npm run fuzz` at 1e5 (FUZZ_RUNS). The seed is printed
// so a failure replays with FUZZ_SEED.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KakehiError } from '../../src/errors.js';

export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
/** Per-test options: at 1e5 runs a property may outlive the runner's default 10-minute test timeout. */
export const FUZZ_TEST = { timeout: Math.max(600_000, FUZZ_RUNS * 20) };
// Fixed in the normal suite (a CI failure replays as is); `npm run fuzz` picks a new one each night.
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261203);

/** Runs a property FUZZ_RUNS times from FUZZ_SEED, after saying how to replay it. */
export function fuzz<Ts extends unknown[]>(name: string, p: fc.IPropertyWithHooks<Ts>): void {
  console.log(`${name}: fast-check seed ${FUZZ_SEED}, ${FUZZ_RUNS} runs (FUZZ_SEED / FUZZ_RUNS to change)`);
  fc.assert(p, { seed: FUZZ_SEED, numRuns: FUZZ_RUNS });
}

/** Calls fn; a throw must be a KakehiError with one of `codes` (a typed, named refusal), else it fails. */
export function refusedOnlyWith<T>(codes: readonly string[], fn: () => T): T | KakehiError {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof KakehiError, `threw something other than a KakehiError: ${String(err)}`);
    assert.ok(codes.includes(err.code), `refused with ${err.code}, expected one of ${codes.join(', ')}`);
    assert.ok(err.message.length > 0);
    return err;
  }
}

/** Values of every JSON-ish shape, with strings likely to hit parsers' edges. */
export const arbEdgeString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', ' ', '0', '-1', '1e400', 'NaN', '127.0.0.1:0', '[::1]:80', '*', '/', '\u0000', '\r\n'),
);
export const arbValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    arbEdgeString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(arbEdgeString, tie('v'), { maxKeys: 4 }),
  ),
})).v;
