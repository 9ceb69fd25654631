import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FieldIssue } from '../../src/errors.js';
import {
  afterPassiveDown,
  afterProbe,
  firstDelay,
  INITIAL_HEALTH,
  JITTER_FRACTION,
  jitteredDelay,
  type ProbeHealth,
  statusExpected,
  statusRanges,
} from '../../src/main/health-hysteresis.js';
import { clusterSchema, probeTimeoutMs, statusRangesProblem } from '../../src/model/objects.js';

/** The up/down state after each outcome in turn. */
function run(outcomes: boolean[], rise: number, fall: number, from: ProbeHealth = INITIAL_HEALTH): boolean[] {
  const out: boolean[] = [];
  let h = from;
  for (const ok of outcomes) {
    h = afterProbe(h, ok, rise, fall);
    out.push(h.up);
  }
  return out;
}

describe('health check hysteresis', () => {
  it('goes down only after fall failed probes in a row', () => {
    assert.deepEqual(run([false, false, false], 2, 3), [true, true, false]);
    // A good probe in between starts the count again.
    assert.deepEqual(run([false, false, true, false, false, false], 2, 3), [
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
  });

  it('comes up only after rise good probes in a row', () => {
    const down = { up: false, streak: 0 };
    assert.deepEqual(run([true, true], 2, 3, down), [false, true]);
    assert.deepEqual(run([true, false, true, true], 2, 3, down), [false, false, false, true]);
  });

  it('rise 1 and fall 1 follow every probe', () => {
    assert.deepEqual(run([false, true, false, true], 1, 1), [false, true, false, true]);
  });

  it('keeps the state unchanged (same object) when an outcome agrees and nothing is counted', () => {
    assert.equal(afterProbe(INITIAL_HEALTH, true, 2, 3), INITIAL_HEALTH);
    assert.deepEqual(afterProbe({ up: true, streak: 2 }, true, 2, 3), { up: true, streak: 0 });
  });

  it('a passive down is down at once, and needs rise good probes to come back', () => {
    const h = afterPassiveDown({ up: true, streak: 1 });
    assert.deepEqual(h, { up: false, streak: 0 });
    assert.deepEqual(run([true, true, true], 3, 3, h), [false, false, true]);
    const already = { up: false, streak: 1 };
    assert.equal(afterPassiveDown(already), already);
  });
});

describe('health check jitter', () => {
  it('moves the interval by at most a tenth either way, over the whole range', () => {
    assert.equal(JITTER_FRACTION, 0.1);
    assert.equal(jitteredDelay(1_000, 0), 900);
    assert.equal(jitteredDelay(1_000, 0.5), 1_000);
    assert.equal(jitteredDelay(1_000, 0.999_999), 1_100);
    for (let r = 0; r < 1; r += 0.01) {
      const d = jitteredDelay(5_000, r);
      assert.ok(d >= 4_500 && d <= 5_500, `${d}`);
    }
  });

  it('spreads backends started together: different randoms give different delays', () => {
    const delays = new Set([0.1, 0.3, 0.5, 0.7, 0.9].map((r) => jitteredDelay(2_000, r)));
    assert.equal(delays.size, 5);
  });

  it('puts the first probe anywhere within one interval, never at 0 ms', () => {
    assert.equal(firstDelay(1_000, 0), 1);
    assert.equal(firstDelay(1_000, 0.25), 250);
    assert.equal(firstDelay(1_000, 0.999), 999);
  });
});

describe('expected statuses', () => {
  it('parses ranges and single codes', () => {
    const r = statusRanges('200-299, 404,500 - 502');
    assert.deepEqual(r, [
      [200, 299],
      [404, 404],
      [500, 502],
    ]);
    assert.ok(statusExpected(204, r));
    assert.ok(statusExpected(404, r));
    assert.ok(statusExpected(502, r));
    assert.ok(!statusExpected(300, r));
    assert.ok(!statusExpected(503, r));
  });

  it('names what is wrong with a bad spec', () => {
    assert.equal(statusRangesProblem('200-399'), undefined);
    assert.match(statusRangesProblem('2xx') ?? '', /"2xx" is not a status or a range/);
    assert.match(statusRangesProblem('600') ?? '', /"600" is not a status/);
    assert.match(statusRangesProblem('399-200') ?? '', /range "399-200" ends before it starts/);
  });

  it('the cluster schema refuses a bad health_check with the field named, and fills defaults', () => {
    const issues: FieldIssue[] = [];
    clusterSchema.parse(
      {
        id: 'c',
        health_check: { type: 'udp', expect_status: 'ok', interval_ms: 100, timeout_ms: 500, rise: 0 },
      },
      '',
      issues,
    );
    const paths = issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['health_check.expect_status', 'health_check.rise', 'health_check.type']);
    const ok: FieldIssue[] = [];
    const c = clusterSchema.parse({ id: 'c', health_check: {} }, '', ok);
    assert.deepEqual(ok, []);
    assert.equal(c?.fail_open, true);
    assert.deepEqual(c?.health_check, {
      type: 'http',
      path: '/',
      method: 'GET',
      expect_status: '200-399',
      interval_ms: 5_000,
      rise: 2,
      fall: 3,
    });
    assert.equal(probeTimeoutMs(c!.health_check!), 2_000);
    const short = clusterSchema.parse({ id: 'c', health_check: { interval_ms: 300 } }, '', ok);
    assert.deepEqual(ok, [], 'a short interval with the default timeout is not refused');
    assert.equal(probeTimeoutMs(short!.health_check!), 300);
    const overlap: FieldIssue[] = [];
    clusterSchema.parse({ id: 'c', health_check: { interval_ms: 100, timeout_ms: 500 } }, '', overlap);
    assert.deepEqual(
      overlap.map((i) => i.path),
      ['health_check.timeout_ms'],
    );
  });
});
