// Router precedence and matching, rule by rule: host classes and their fallback,
// path kinds, methods, normalization of the request host, and construction errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHostRule } from '../../src/router/host-rule.js';
import { type PathRuleKind, parsePathRule } from '../../src/router/path-rule.js';
import { type Route, Router } from '../../src/router/router.js';
import { RouterRuleError } from '../../src/router/router-rule-error.js';

type Spec = [key: string, host: string, kind: PathRuleKind, path: string, method?: string];

function build(specs: Spec[]): Router<string> {
  const routes: Route<string>[] = specs.map(([key, host, kind, path, method]) => ({
    key,
    host: parseHostRule(host),
    path: parsePathRule(kind, path),
    ...(method === undefined ? {} : { method }),
    target: key,
  }));
  return new Router(routes);
}

/** Each row: [host, path, method, expected target or undefined]. */
function expectAll(router: Router<string>, rows: [string, string, string, string | undefined][]): void {
  for (const [host, path, method, want] of rows) {
    assert.equal(router.lookup(host, path, method), want, `${method} ${host}${path}`);
  }
}

describe('Router hostnames', () => {
  it('matches an exact host case-insensitively, ignoring the port and one trailing dot', () => {
    const r = build([['site', 'Example.com', 'prefix', '/']]);
    expectAll(r, [
      ['example.com', '/', 'GET', 'site'],
      ['EXAMPLE.COM', '/', 'GET', 'site'],
      ['example.com:8080', '/', 'GET', 'site'],
      ['example.com.', '/', 'GET', 'site'],
      ['Example.COM.:8080', '/', 'GET', 'site'],
      ['example.com..', '/', 'GET', undefined],
      ['www.example.com', '/', 'GET', undefined],
      ['example.co', '/', 'GET', undefined],
      ['example.com.evil', '/', 'GET', undefined],
    ]);
  });

  it('matches "*.example.com" on exactly one extra leftmost label', () => {
    const r = build([['wild', '*.example.com', 'prefix', '/']]);
    expectAll(r, [
      ['a.example.com', '/', 'GET', 'wild'],
      ['A.Example.Com:443', '/', 'GET', 'wild'],
      ['a.b.example.com', '/', 'GET', undefined],
      ['example.com', '/', 'GET', undefined],
      ['aexample.com', '/', 'GET', undefined],
      ['a.example.org', '/', 'GET', undefined],
    ]);
  });

  it('matches regex labels one whole label each, with the same label count', () => {
    const r = build([
      ['cdn', '/cdn[0-9]+/.example.com', 'prefix', '/'],
      ['region', 'api./eu|us/.example.com', 'prefix', '/'],
    ]);
    expectAll(r, [
      ['cdn1.example.com', '/', 'GET', 'cdn'],
      ['CDN22.example.com:80', '/', 'GET', 'cdn'],
      ['cdn.example.com', '/', 'GET', undefined],
      ['xcdn1.example.com', '/', 'GET', undefined],
      ['cdn1x.example.com', '/', 'GET', undefined],
      ['a.cdn1.example.com', '/', 'GET', undefined],
      ['cdn1.a.example.com', '/', 'GET', undefined],
      ['cdn1.example.org', '/', 'GET', undefined],
      ['api.eu.example.com', '/', 'GET', 'region'],
      ['api.us.example.com', '/', 'GET', 'region'],
      ['api.euus.example.com', '/', 'GET', undefined],
      ['web.eu.example.com', '/', 'GET', undefined],
    ]);
  });

  it('matches any valid host with "*", including IPs and localhost', () => {
    const r = build([['all', '*', 'prefix', '']]);
    expectAll(r, [
      ['localhost', '/', 'GET', 'all'],
      ['127.0.0.1:8080', '/x', 'GET', 'all'],
      ['[::1]:80', '*', 'OPTIONS', 'all'],
      ['a.b.c.d.e', '/', 'GET', 'all'],
    ]);
  });

  it('never matches an invalid Host, not even with "*"', () => {
    const r = build([['all', '*', 'prefix', '']]);
    expectAll(r, [
      ['', '/', 'GET', undefined],
      ['a..b', '/', 'GET', undefined],
      ['evil.com/x', '/', 'GET', undefined],
      ['a.com:http', '/', 'GET', undefined],
    ]);
  });

  it('matches an IPv6 literal only by an exact rule', () => {
    const r = build([
      ['v6', '[::1]', 'prefix', '/'],
      ['re', '/.*/', 'prefix', '/'],
    ]);
    expectAll(r, [
      ['[::1]:8080', '/', 'GET', 'v6'],
      ['[::2]', '/', 'GET', undefined],
      ['localhost', '/', 'GET', 're'],
    ]);
  });
});

describe('Router host precedence', () => {
  const all: Spec[] = [
    ['exact', 'cdn1.example.com', 'prefix', '/'],
    ['wild', '*.example.com', 'prefix', '/'],
    ['regex', '/cdn[0-9]+/.example.com', 'prefix', '/'],
    ['any', '*', 'prefix', '/'],
  ];

  it('prefers exact > wildcard > regex > any, whatever the declaration order', () => {
    for (let drop = 0; drop < all.length; drop++) {
      const kept = all.slice(drop);
      for (const specs of [kept, [...kept].reverse()]) {
        assert.equal(
          build(specs).lookup('cdn1.example.com', '/x', 'GET'),
          kept[0]![0],
          `with ${kept.length} rules`,
        );
      }
    }
  });

  it('falls back to the next less specific host when the specific one routes no path for the request', () => {
    const r = build([
      ['exact-api', 'cdn1.example.com', 'prefix', '/api'],
      ['wild-img', '*.example.com', 'prefix', '/img'],
      ['regex-get', '/cdn[0-9]+/.example.com', 'prefix', '/', 'GET'],
      ['any', '*', 'prefix', '/'],
    ]);
    expectAll(r, [
      ['cdn1.example.com', '/api/x', 'GET', 'exact-api'],
      ['cdn1.example.com', '/img/x', 'GET', 'wild-img'],
      ['cdn1.example.com', '/other', 'GET', 'regex-get'],
      ['cdn1.example.com', '/other', 'POST', 'any'],
      ['cdn2.example.com', '/api/x', 'POST', 'any'],
    ]);
  });

  it('tries matching regex hosts in declaration order, falling through one that routes nothing', () => {
    const r = build([
      ['first', '/[a-z]+[0-9]/.example.com', 'prefix', '/a'],
      ['second', '/cdn[0-9]/.example.com', 'prefix', '/'],
    ]);
    expectAll(r, [
      ['cdn1.example.com', '/a', 'GET', 'first'],
      ['cdn1.example.com', '/b', 'GET', 'second'],
      ['web1.example.com', '/b', 'GET', undefined],
    ]);
    const reversed = build([
      ['second', '/cdn[0-9]/.example.com', 'prefix', '/'],
      ['first', '/[a-z]+[0-9]/.example.com', 'prefix', '/a'],
    ]);
    assert.equal(reversed.lookup('cdn1.example.com', '/a', 'GET'), 'second');
  });

  it('treats two spellings of the same host rule as one host', () => {
    const r = build([
      ['upper', 'EXAMPLE.com', 'prefix', '/a'],
      ['lower', 'example.com.', 'exact', '/b'],
    ]);
    expectAll(r, [
      ['example.com', '/a', 'GET', 'upper'],
      ['example.com', '/b', 'GET', 'lower'],
    ]);
  });
});

describe('Router paths', () => {
  it('prefers an exact path, then a regex, then a prefix', () => {
    const r = build([
      ['prefix', 'h', 'prefix', '/a'],
      ['regex', 'h', 'regex', '/a[a-z]*'],
      ['exact', 'h', 'exact', '/a'],
    ]);
    expectAll(r, [
      ['h', '/a', 'GET', 'exact'],
      ['h', '/ab', 'GET', 'regex'],
      ['h', '/a1', 'GET', 'prefix'],
      ['h', '/b', 'GET', undefined],
    ]);
  });

  it('tries regexes in declaration order', () => {
    const r = build([
      ['broad', 'h', 'regex', '/a.*'],
      ['narrow', 'h', 'regex', '/ab.*'],
    ]);
    assert.equal(r.lookup('h', '/abc', 'GET'), 'broad');
    const flipped = build([
      ['narrow', 'h', 'regex', '/ab.*'],
      ['broad', 'h', 'regex', '/a.*'],
    ]);
    assert.equal(flipped.lookup('h', '/abc', 'GET'), 'narrow');
  });

  it('anchors path regexes to the whole path', () => {
    const r = build([['admin', 'h', 'regex', '/admin']]);
    expectAll(r, [
      ['h', '/admin', 'GET', 'admin'],
      ['h', '/admin/x', 'GET', undefined],
      ['h', '/x/admin', 'GET', undefined],
    ]);
  });

  it('picks the longest matching prefix, compared as a plain string prefix', () => {
    const r = build([
      ['root', 'h', 'prefix', '/'],
      ['v1', 'h', 'prefix', '/api/v1'],
      ['api', 'h', 'prefix', '/api'],
    ]);
    expectAll(r, [
      ['h', '/api/v1/users', 'GET', 'v1'],
      ['h', '/api/v1', 'GET', 'v1'],
      ['h', '/api/v2', 'GET', 'api'],
      ['h', '/apix', 'GET', 'api'],
      ['h', '/x', 'GET', 'root'],
      ['h', '', 'GET', undefined],
    ]);
  });

  it('compares the path verbatim: no query stripping, no decoding, case-sensitive', () => {
    const r = build([['a', 'h', 'exact', '/a']]);
    expectAll(r, [
      ['h', '/a', 'GET', 'a'],
      ['h', '/a?x=1', 'GET', undefined],
      ['h', '/%61', 'GET', undefined],
      ['h', '/A', 'GET', undefined],
      ['h', '/a/', 'GET', undefined],
    ]);
  });
});

describe('Router methods', () => {
  it('prefers a method-specific route over a method-less one on the same rule, whatever the order', () => {
    for (const specs of [
      [
        ['any', 'h', 'prefix', '/'],
        ['get', 'h', 'prefix', '/', 'GET'],
      ],
      [
        ['get', 'h', 'prefix', '/', 'GET'],
        ['any', 'h', 'prefix', '/'],
      ],
    ] as Spec[][]) {
      const r = build(specs);
      expectAll(r, [
        ['h', '/x', 'GET', 'get'],
        ['h', '/x', 'POST', 'any'],
      ]);
    }
  });

  it('compares methods case-sensitively', () => {
    const r = build([['get', 'h', 'prefix', '/', 'GET']]);
    expectAll(r, [
      ['h', '/', 'GET', 'get'],
      ['h', '/', 'get', undefined],
    ]);
  });

  it('passes to the next path rule when a matching rule has no route for the method', () => {
    const r = build([
      ['exact-get', 'h', 'exact', '/a', 'GET'],
      ['regex-put', 'h', 'regex', '/a.*', 'PUT'],
      ['long-post', 'h', 'prefix', '/a', 'POST'],
      ['short', 'h', 'prefix', '/'],
    ]);
    expectAll(r, [
      ['h', '/a', 'GET', 'exact-get'],
      ['h', '/a', 'PUT', 'regex-put'],
      ['h', '/a', 'POST', 'long-post'],
      ['h', '/a', 'DELETE', 'short'],
    ]);
  });

  it('keeps the first route declared for the same host, path and method', () => {
    const r = build([
      ['first', 'h', 'prefix', '/', 'GET'],
      ['second', 'H.', 'prefix', '/', 'GET'],
      ['third', 'h', 'prefix', '/'],
      ['fourth', 'h', 'prefix', '/'],
    ]);
    expectAll(r, [
      ['h', '/', 'GET', 'first'],
      ['h', '/', 'POST', 'third'],
    ]);
  });
});

describe('Router construction', () => {
  it('counts its routes in size', () => {
    assert.equal(build([]).size, 0);
    assert.equal(
      build([
        ['a', 'h', 'prefix', '/'],
        ['b', 'h', 'prefix', '/'],
        ['c', '*', 'exact', '/'],
      ]).size,
      3,
    );
  });

  it('routes nothing when empty', () => {
    assert.equal(build([]).lookup('example.com', '/', 'GET'), undefined);
  });

  it('refuses a duplicate route key', () => {
    assert.throws(
      () =>
        build([
          ['k', 'a', 'prefix', '/'],
          ['k', 'b', 'prefix', '/'],
        ]),
      (err: unknown) => err instanceof RouterRuleError && /duplicate route key/.test(err.message),
    );
  });

  it('refuses a method that is not an HTTP token', () => {
    for (const method of ['', 'GE T', 'GET\r\n', 'GÉT']) {
      assert.throws(
        () => build([['k', 'a', 'prefix', '/', method]]),
        (err: unknown) => err instanceof RouterRuleError && /must be an HTTP token/.test(err.message),
        JSON.stringify(method),
      );
    }
  });

  it('normalizes hand-built host rules like parsed ones', () => {
    const r = new Router<string>([
      {
        key: 'e',
        host: { kind: 'exact', host: 'Example.COM.' },
        path: parsePathRule('prefix', '/'),
        target: 'e',
      },
      {
        key: 'w',
        host: { kind: 'wildcard', suffix: 'Wild.ORG' },
        path: parsePathRule('prefix', '/'),
        target: 'w',
      },
    ]);
    expectAll(r, [
      ['example.com', '/', 'GET', 'e'],
      ['x.wild.org', '/', 'GET', 'w'],
    ]);
  });

  it('refuses a hand-built exact or wildcard host that is not a hostname', () => {
    for (const host of [
      { kind: 'exact', host: 'a.com:80' },
      { kind: 'exact', host: 'a b' },
      { kind: 'wildcard', suffix: '' },
      { kind: 'wildcard', suffix: '*.a.com' },
    ] as const) {
      assert.throws(
        () => new Router([{ key: 'k', host, path: parsePathRule('prefix', '/'), target: 1 }]),
        (err: unknown) => err instanceof RouterRuleError && /not a valid hostname/.test(err.message),
        JSON.stringify(host),
      );
    }
  });

  it('is frozen after construction', () => {
    const r = build([['a', 'h', 'prefix', '/']]);
    assert.ok(Object.isFrozen(r));
    assert.throws(() => {
      (r as unknown as { size: number }).size = 5;
    }, TypeError);
  });
});
