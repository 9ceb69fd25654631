// The console's session store and login limiter on a clock the test moves:
// sessions end at their age limit and the store never holds more than its
// bound; an address earns login attempts back at the refill rate, never more
// than the burst.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  csrfMatches,
  LOGIN_BURST,
  LOGIN_REFILL_MS,
  LoginLimiter,
  MAX_SESSIONS,
  SESSION_TTL_MS,
  Sessions,
} from '../../connectors/console/sessions.js';

function clock() {
  const c = { t: 1_000_000, now: () => c.t };
  return c;
}

describe('console sessions', () => {
  test('a session ends at its age limit, and its id is then unknown', () => {
    const c = clock();
    const sessions = new Sessions(c.now);
    const s = sessions.create('editor');
    c.t += SESSION_TTL_MS - 1;
    assert.equal(sessions.get(s.id)?.role, 'editor');
    c.t += 1;
    assert.equal(sessions.get(s.id), undefined);
  });

  test('holds at most MAX_SESSIONS, forgetting the oldest first', () => {
    const sessions = new Sessions(clock().now);
    const first = sessions.create('viewer');
    const second = sessions.create('viewer');
    for (let i = 2; i < MAX_SESSIONS; i++) sessions.create('viewer');
    assert.ok(sessions.get(first.id));
    sessions.create('editor');
    assert.equal(sessions.get(first.id), undefined, 'the oldest went');
    assert.ok(sessions.get(second.id), 'the next one stays');
  });

  test('a CSRF header matches only its own session token', () => {
    const sessions = new Sessions(clock().now);
    const a = sessions.create('editor');
    const b = sessions.create('editor');
    assert.equal(csrfMatches(a, a.csrf), true);
    assert.equal(csrfMatches(a, b.csrf), false);
    assert.equal(csrfMatches(a, undefined), false);
    assert.equal(csrfMatches(a, a.csrf.slice(1)), false);
  });
});

describe('console login limiter', () => {
  test('allows a burst per address, then one attempt per refill period, never more than the burst', () => {
    const c = clock();
    const limiter = new LoginLimiter(c.now);
    for (let i = 0; i < LOGIN_BURST; i++) assert.equal(limiter.take('10.0.0.1'), true, `attempt ${i + 1}`);
    assert.equal(limiter.take('10.0.0.1'), false);
    assert.equal(limiter.take('10.0.0.2'), true, 'another address has its own bucket');
    c.t += LOGIN_REFILL_MS;
    assert.equal(limiter.take('10.0.0.1'), true);
    assert.equal(limiter.take('10.0.0.1'), false);
    c.t += LOGIN_REFILL_MS * 100;
    let allowed = 0;
    while (limiter.take('10.0.0.1')) allowed++;
    assert.equal(allowed, LOGIN_BURST);
  });

  test('a successful login gives its attempt back', () => {
    const limiter = new LoginLimiter(clock().now);
    for (let i = 0; i < LOGIN_BURST; i++) {
      assert.equal(limiter.take('10.0.0.1'), true);
      limiter.refund('10.0.0.1');
    }
    assert.equal(limiter.take('10.0.0.1'), true);
  });
});
