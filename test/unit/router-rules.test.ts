// Host and path rule parsing and Host header normalization: what each rule text
// becomes, and that every malformed rule is refused with a reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HostRule, normalizeHost, parseHostRule } from '../../src/router/host-rule.js';
import { type PathRuleKind, parsePathRule } from '../../src/router/path-rule.js';
import { ROUTER_RULE_INVALID, RouterRuleError } from '../../src/router/router-rule-error.js';

function labelsOf(rule: HostRule): string[] {
  assert.equal(rule.kind, 'regex');
  return rule.kind === 'regex' ? rule.labels.map((l) => (typeof l === 'string' ? l : `re:${l.source}`)) : [];
}

describe('normalizeHost', () => {
  const valid: [string, string][] = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['Example.COM.:8080', 'example.com'],
    ['example.com:', 'example.com'],
    ['localhost', 'localhost'],
    ['my_host-1.internal', 'my_host-1.internal'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[2001:DB8::1]:443', '[2001:db8::1]'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  ];
  for (const [raw, want] of valid) {
    it(`normalizes ${JSON.stringify(raw)} to ${JSON.stringify(want)}`, () => {
      assert.equal(normalizeHost(raw), want);
    });
  }

  const invalid = [
    '',
    '.',
    '.example.com',
    'example.com..',
    'a..b',
    'exa mple.com',
    'example.com/x',
    'example.com:80a',
    'example.com:65536',
    'example.com:123456',
    'example.com:80:80',
    'user@example.com',
    'bücher.de',
    `${'a'.repeat(64)}.com`,
    `${'a.'.repeat(127)}ab`,
    '[::1',
    '[]',
    '[::1]x',
    '[::1]:99999',
    '[::g]',
    '[::\u0010]',
  ];
  for (const raw of invalid) {
    it(`rejects ${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw)} as a host`, () => {
      assert.equal(normalizeHost(raw), undefined);
    });
  }

  it('returns the same string object when the host is already normal (no allocation)', () => {
    const raw = ['exam', 'ple.com'].join('');
    assert.equal(normalizeHost(raw), raw);
  });
});

describe('parseHostRule', () => {
  it('parses "*" as the catch-all', () => {
    assert.deepEqual(parseHostRule('*'), { kind: 'any' });
  });

  it('lowercases exact hosts and drops one trailing dot', () => {
    assert.deepEqual(parseHostRule('WWW.Example.COM.'), { kind: 'exact', host: 'www.example.com' });
  });

  it('converts internationalized labels to their punycode A-label', () => {
    assert.deepEqual(parseHostRule('Bücher.example'), { kind: 'exact', host: 'xn--bcher-kva.example' });
  });

  it('keeps a bracketed IPv6 literal as an exact host', () => {
    assert.deepEqual(parseHostRule('[2001:DB8::1]'), { kind: 'exact', host: '[2001:db8::1]' });
  });

  it('parses "*.example.com" as a wildcard with suffix example.com', () => {
    assert.deepEqual(parseHostRule('*.Example.com'), { kind: 'wildcard', suffix: 'example.com' });
  });

  it('parses "/cdn[0-9]+/.example.com" as one anchored, case-insensitive regex label and two exact ones', () => {
    const rule = parseHostRule('/cdn[0-9]+/.Example.com');
    assert.deepEqual(labelsOf(rule), ['re:^(?:cdn[0-9]+)$', 'example', 'com']);
    if (rule.kind !== 'regex') return;
    const re = rule.labels[0] as RegExp;
    assert.equal(re.test('cdn12'), true);
    assert.equal(re.test('CDN12'), true);
    assert.equal(re.test('xcdn12'), false, 'anchored at the start');
    assert.equal(re.test('cdn12x'), false, 'anchored at the end');
  });

  it('lets a regex label contain dots and sit anywhere in the name', () => {
    assert.deepEqual(labelsOf(parseHostRule('api./e.|us/.example.com')), [
      'api',
      're:^(?:e.|us)$',
      'example',
      'com',
    ]);
  });

  it('keeps an alternation inside the anchoring group so "a|b" cannot match "ab…"', () => {
    const rule = parseHostRule('/eu|us/.example.com');
    if (rule.kind !== 'regex') return assert.fail('not a regex rule');
    const re = rule.labels[0] as RegExp;
    assert.equal(re.test('eu'), true);
    assert.equal(re.test('euus'), false);
    assert.equal(re.test('xus'), false);
  });

  const invalid: [string, RegExp][] = [
    ['*.*.example.com', /only one leading wildcard label is allowed/],
    ['a.*.example.com', /wildcard must be the whole leftmost label/],
    ['*a.example.com', /wildcard must be the whole leftmost label/],
    ['*.', /wildcard needs a domain after it/],
    ['*./cdn/.example.com', /cannot also contain regex labels/],
    ['', /must not be empty/],
    [' example.com', /whitespace/],
    ['example.com:8080', /must not contain a port/],
    ['a..example.com', /empty label/],
    ['.example.com', /empty label/],
    ['exa mple.com', /may only contain letters, digits/],
    ['exa$mple.com', /may only contain letters, digits/],
    [`${'a'.repeat(64)}.com`, /longer than 63 characters/],
    [`${'abcdefghi.'.repeat(26)}com`, /longer than 253 characters/],
    ['//.example.com', /empty regex label/],
    ['/cdn(/.example.com', /does not compile/],
    ['/a)|(.*/.example.com', /does not compile/],
    ['/cdn.example.com', /has no closing "\/"/],
    [`/${'a'.repeat(257)}/.com`, /longer than 256 characters/],
    ['[::1]:80', /IPv6 literal/],
    ['[zz]', /IPv6 literal/],
  ];
  for (const [text, reason] of invalid) {
    it(`rejects ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)} saying ${reason.source}`, () => {
      assert.throws(
        () => parseHostRule(text),
        (err: unknown) => {
          assert.ok(err instanceof RouterRuleError);
          assert.equal(err.code, ROUTER_RULE_INVALID);
          assert.equal(err.rule, text);
          assert.match(err.message, reason);
          assert.ok(err.message.startsWith(`${JSON.stringify(text)}: `), err.message);
          return true;
        },
      );
    });
  }
});

describe('parsePathRule', () => {
  it('keeps exact and prefix values verbatim (no decoding, no normalization)', () => {
    assert.deepEqual(parsePathRule('exact', '/a/%2e%2e/B'), { kind: 'exact', path: '/a/%2e%2e/B' });
    assert.deepEqual(parsePathRule('prefix', '/api/'), { kind: 'prefix', prefix: '/api/' });
  });

  it('accepts the empty prefix, which matches every path', () => {
    assert.deepEqual(parsePathRule('prefix', ''), { kind: 'prefix', prefix: '' });
  });

  it('anchors a path regex to the whole path, case-sensitively', () => {
    const rule = parsePathRule('regex', '/api/v[0-9]+/.*');
    if (rule.kind !== 'regex') return assert.fail('not a regex rule');
    assert.equal(rule.source, '/api/v[0-9]+/.*');
    assert.equal(rule.re.test('/api/v2/users'), true);
    assert.equal(rule.re.test('/x/api/v2/users'), false);
    assert.equal(rule.re.test('/API/v2/users'), false);
    const admin = parsePathRule('regex', '/admin');
    assert.equal(admin.kind === 'regex' && admin.re.test('/admin/x'), false);
  });

  const invalid: [PathRuleKind, string, RegExp][] = [
    ['exact', '', /must start with "\/"/],
    ['exact', 'api', /must start with "\/"/],
    ['prefix', 'api', /must be empty or start with "\/"/],
    ['exact', '/a b', /cannot appear in a request path/],
    ['prefix', '/caf\u00e9', /percent-encode it/],
    ['prefix', '/a\u0000', /cannot appear in a request path/],
    ['exact', '/search?q=1', /without the query string/],
    ['prefix', '/page#top', /without the query string or fragment/],
    ['regex', '', /empty path regex/],
    ['regex', '/api/(', /does not compile/],
    ['regex', 'x)|(.*', /does not compile/],
    ['exact', `/${'a'.repeat(8192)}`, /limited to 8192 characters/],
    ['glob' as PathRuleKind, '/a', /unknown path rule kind "glob"/],
  ];
  for (const [kind, value, reason] of invalid) {
    const shown = value.length > 30 ? `${value.slice(0, 30)}…` : value;
    it(`rejects ${kind} ${JSON.stringify(shown)} saying ${reason.source}`, () => {
      assert.throws(
        () => parsePathRule(kind, value),
        (err: unknown) => {
          assert.ok(err instanceof RouterRuleError);
          assert.equal(err.rule, value);
          assert.match(err.message, reason);
          return true;
        },
      );
    });
  }
});
