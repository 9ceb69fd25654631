import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FieldIssue } from '../../src/errors.js';
import { type Frontend, frontendSchema, listenerSchema, type RateLimit } from '../../src/model/objects.js';
import { RateLimits, TokenBuckets } from '../../src/proxy/rate-limit.js';

const limit = (requests_per_second: number, burst?: number): RateLimit => ({
  requests_per_second,
  burst,
  key: 'client_ip',
});

describe('token buckets', () => {
  it('admits a burst, refuses the next with the seconds until a token is back, then refills at the rate', () => {
    const b = new TokenBuckets(limit(2, 3), 1);
    for (let i = 0; i < 3; i++) assert.equal(b.take('a', 0), undefined, `request ${i + 1} of the burst`);
    assert.deepEqual(b.take('a', 0), { retryAfterS: 1 });
    // 2 per second: one token after 500 ms, not before; a refused request takes nothing.
    assert.deepEqual(b.take('a', 400), { retryAfterS: 1 });
    assert.equal(b.take('a', 600), undefined);
    assert.ok(b.take('a', 600) !== undefined);
  });

  it('keeps keys apart: one key over its limit leaves another untouched', () => {
    const b = new TokenBuckets(limit(1), 1);
    assert.equal(b.take('a', 0), undefined);
    assert.ok(b.take('a', 0) !== undefined);
    assert.equal(b.take('b', 0), undefined);
  });

  it('says how long to wait when the rate is below one per second', () => {
    // 1 per second shared by 4 workers: a token every 4 s in each.
    const b = new TokenBuckets(limit(1, 4), 4);
    assert.equal(b.take('a', 0), undefined);
    assert.deepEqual(b.take('a', 0), { retryAfterS: 4 });
  });

  it('divides rate and burst among the workers, never below one token of burst', () => {
    const b = new TokenBuckets(limit(10, 10), 2);
    let admitted = 0;
    for (let i = 0; i < 10; i++) if (b.take('a', 0) === undefined) admitted++;
    assert.equal(admitted, 5);
    const tiny = new TokenBuckets(limit(1, 1), 8);
    assert.equal(tiny.take('a', 0), undefined);
  });

  it('holds at most maxKeys keys, forgetting refilled ones first, then the least recently seen', () => {
    const b = new TokenBuckets(limit(1, 1), 1, 3);
    for (const k of ['a', 'b', 'c']) b.take(k, 0);
    b.take('a', 500); // a is seen again: b is now the least recently seen
    b.take('d', 500);
    assert.equal(b.size, 3);
    // b was forgotten, so it starts with a full bucket; a was kept, so it is still empty.
    assert.equal(b.take('b', 600), undefined);
    assert.ok(b.take('a', 600) !== undefined);
    // After a second every bucket is full again: all can go to make room.
    b.take('e', 5_000);
    assert.ok(b.size <= 3);
  });

  it('a lower limit cuts the tokens a key holds; the buckets carry on', () => {
    const b = new TokenBuckets(limit(10, 10), 1);
    b.take('a', 0);
    b.configure(limit(1, 1));
    assert.equal(b.take('a', 0), undefined);
    assert.ok(b.take('a', 0) !== undefined);
  });
});

describe('rate limits of frontends', () => {
  const frontend = (rate_limit: object | undefined): Frontend => {
    const f = frontendSchema.parse({ hostname: 'a.test', cluster: 'c', rate_limit }, '', []);
    assert.ok(f !== undefined);
    return f;
  };
  const head = (headers: Record<string, string>) => ({
    lower: Object.keys(headers),
    values: Object.values(headers),
  });

  it('keys by a header, and by the client address when the header is absent', () => {
    const f = frontend({ requests_per_second: 1, key: 'header:X-Api-Key' });
    const limits = new RateLimits(1);
    limits.sync([f]);
    assert.equal(limits.admit(f, '10.0.0.1', head({ 'x-api-key': 'k1' })), undefined);
    assert.ok(limits.admit(f, '10.0.0.2', head({ 'x-api-key': 'k1' })) !== undefined);
    assert.equal(limits.admit(f, '10.0.0.1', head({ 'x-api-key': 'k2' })), undefined);
    assert.equal(limits.admit(f, '10.0.0.1', head({})), undefined);
    assert.ok(limits.admit(f, '10.0.0.1', head({})) !== undefined);
  });

  it('a frontend without a limit is never refused; a changed limit keeps the buckets', () => {
    const limits = new RateLimits(1);
    const free = frontend(undefined);
    const f1 = frontend({ requests_per_second: 1, key: 'client_ip' });
    limits.sync([free, f1]);
    for (let i = 0; i < 5; i++) assert.equal(limits.admit(free, 'ip', head({})), undefined);
    assert.equal(limits.admit(f1, 'ip', head({})), undefined);
    // The same frontend (same key) with a new limit: the key's empty bucket stays empty.
    const f2 = frontend({ requests_per_second: 2, key: 'client_ip' });
    limits.sync([free, f2]);
    assert.ok(limits.admit(f2, 'ip', head({})) !== undefined);
  });
});

describe('limit settings are validated with their path named', () => {
  const issuesOf = (parse: (issues: FieldIssue[]) => unknown) => {
    const issues: FieldIssue[] = [];
    assert.equal(parse(issues), undefined);
    return issues;
  };

  it('refuses a rate limit key that is not client_ip or header:<name>, and a rate of 0', () => {
    const issues = issuesOf((i) =>
      frontendSchema.parse(
        { hostname: 'a.test', cluster: 'c', rate_limit: { requests_per_second: 0, key: 'cookie:sid' } },
        'frontends[0]',
        i,
      ),
    );
    assert.deepEqual(
      issues.map((i) => i.path),
      ['frontends[0].rate_limit.requests_per_second', 'frontends[0].rate_limit.key'],
    );
    assert.match(issues[1]!.reason, /use client_ip or header:<name>/);
  });

  it('refuses max_request_body_bytes on a tcp listener, and names the replacement of maxconn', () => {
    const tcp = issuesOf((i) =>
      listenerSchema.parse(
        { address: '127.0.0.1:9000', protocol: 'tcp', cluster: 'c', max_request_body_bytes: 10 },
        '',
        i,
      ),
    );
    assert.match(tcp[0]!.reason, /carries bytes, not requests/);
    const renamed = issuesOf((i) => listenerSchema.parse({ address: '127.0.0.1:9000', maxconn: 10 }, '', i));
    assert.deepEqual(renamed, [{ path: 'maxconn', reason: 'unknown key; use max_connections' }]);
  });
});
