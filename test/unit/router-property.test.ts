// Router.lookup against a naive reference: a linear scan over every route that
// spells out the documented precedence, compared on generated rule sets and
// requests (fast-check, fixed seed so a failure replays).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type HostRule, normalizeHost, parseHostRule } from '../../src/router/host-rule.js';
import { type PathRule, type PathRuleKind, parsePathRule } from '../../src/router/path-rule.js';
import { type Route, Router } from '../../src/router/router.js';

const SEED = Number(process.env.FC_SEED ?? 20261127);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 1000);

// --- the reference: no maps, no trie, no pre-sorting --------------------------------

/** A host rule's identity: two routes with equal identities share one host. */
function hostIdentity(rule: HostRule): string {
  switch (rule.kind) {
    case 'exact':
      return `e:${rule.host}`;
    case 'wildcard':
      return `w:${rule.suffix}`;
    case 'regex':
      return `r:${rule.labels.map((l) => (typeof l === 'string' ? `s${l}` : `x${l.source}`)).join('\u0000')}`;
    case 'any':
      return 'a';
  }
}

/** 0 exact, 1 wildcard, 2 regex, 3 any; undefined when the rule does not match `host`. */
function hostClass(rule: HostRule, host: string): number | undefined {
  const literal = host.startsWith('[');
  switch (rule.kind) {
    case 'exact':
      return rule.host === host ? 0 : undefined;
    case 'wildcard': {
      const labels = host.split('.');
      return !literal && labels.length >= 2 && labels.slice(1).join('.') === rule.suffix ? 1 : undefined;
    }
    case 'regex': {
      const labels = host.split('.');
      if (literal || labels.length !== rule.labels.length) return undefined;
      const ok = rule.labels.every((l, i) => (typeof l === 'string' ? l === labels[i] : l.test(labels[i]!)));
      return ok ? 2 : undefined;
    }
    case 'any':
      return 3;
  }
}

function pathMatches(rule: PathRule, path: string): boolean {
  if (rule.kind === 'exact') return rule.path === path;
  if (rule.kind === 'prefix') return path.slice(0, rule.prefix.length) === rule.prefix;
  return rule.re.test(path);
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The winning route's target and the class of its host (for coverage counts), or undefined. */
function naiveLookup<T>(
  routes: Route<T>[],
  rawHost: string,
  path: string,
  method: string,
): { target: T; hostClass: number; fellBack: boolean } | undefined {
  const host = normalizeHost(rawHost);
  if (host === undefined) return undefined;
  // Host groups ranked by class, then (regex) by the index of their first route.
  const firstIndex = (id: string): number => routes.findIndex((r) => hostIdentity(r.host) === id);
  const groups: { id: string; rank: number[] }[] = [];
  for (const r of routes) {
    const cls = hostClass(r.host, host);
    const id = hostIdentity(r.host);
    if (cls !== undefined && !groups.some((g) => g.id === id))
      groups.push({ id, rank: [cls, firstIndex(id)] });
  }
  groups.sort((a, b) => compare(a.rank, b.rank));
  for (const [rank, group] of groups.entries()) {
    let best: { score: number[]; target: T } | undefined;
    routes.forEach((r, index) => {
      if (hostIdentity(r.host) !== group.id) return;
      if (r.method !== undefined && r.method !== method) return;
      if (!pathMatches(r.path, path)) return;
      const p = r.path;
      const kindRank = p.kind === 'exact' ? 0 : p.kind === 'regex' ? 1 : 2;
      const within =
        p.kind === 'regex'
          ? routes.findIndex(
              (o) =>
                hostIdentity(o.host) === group.id && o.path.kind === 'regex' && o.path.source === p.source,
            )
          : p.kind === 'prefix'
            ? -p.prefix.length
            : 0;
      const score = [kindRank, within, r.method === undefined ? 1 : 0, index];
      if (best === undefined || compare(score, best.score) < 0) best = { score, target: r.target };
    });
    if (best !== undefined) return { target: best.target, hostClass: group.rank[0]!, fellBack: rank > 0 };
  }
  return undefined;
}

// --- generators ---------------------------------------------------------------------

const LABELS = ['a', 'b', 'x1', 'cdn1'];
const REGEX_LABELS = ['/[a-c]+/', '/cdn[0-9]+/', '/x[0-9]/', '/a|b/', '/.*/', '/A.?/'];
const label = fc.constantFrom(...LABELS);
const exactHost = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join('.'));

const hostRuleText = fc.oneof(
  { weight: 4, arbitrary: exactHost },
  { weight: 3, arbitrary: fc.array(label, { minLength: 1, maxLength: 2 }).map((ls) => `*.${ls.join('.')}`) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.oneof(label, fc.constantFrom(...REGEX_LABELS)), { minLength: 1, maxLength: 3 })
      .filter((ls) => ls.some((l) => l.startsWith('/')))
      .map((ls) => ls.join('.')),
  },
  { weight: 1, arbitrary: fc.constant('*') },
);

const PATHS: Record<PathRuleKind, string[]> = {
  exact: ['/', '/a', '/a/b', '/ab', '/b'],
  prefix: ['', '/', '/a', '/a/', '/ab', '/a/b'],
  regex: ['/a.*', '/[ab]+', '/a/[a-z]+', '/.*b', '/(a|b)/.*'],
};
const pathRule = fc
  .constantFrom<PathRuleKind>('exact', 'prefix', 'regex')
  .chain((kind) => fc.constantFrom(...PATHS[kind]).map((value) => parsePathRule(kind, value)));

const routeSpec = fc.record({
  host: hostRuleText,
  path: pathRule,
  method: fc.constantFrom(undefined, 'GET', 'POST'),
});

const routeList = fc.array(routeSpec, { minLength: 1, maxLength: 30, size: 'max' }).map((specs) =>
  specs.map(
    (s, i): Route<number> => ({
      key: String(i),
      host: parseHostRule(s.host),
      path: s.path,
      ...(s.method === undefined ? {} : { method: s.method }),
      target: i,
    }),
  ),
);

const requestHost = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.array(label, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.constantFrom('', '.', ':8080', '.:443'),
      )
      .map(([ls, upper, tail]) => {
        const h = ls.join('.');
        return (upper ? h.toUpperCase() : h) + tail;
      }),
  },
  { weight: 1, arbitrary: fc.constantFrom('', 'a..b', '[::1]', 'a b', 'localhost') },
);
const request = fc.record({
  host: requestHost,
  path: fc.constantFrom(...PATHS.exact, ...PATHS.prefix, '/a/b/c', '/abc', '/c', '/a?x', '/ba/b'),
  method: fc.constantFrom('GET', 'POST', 'PUT'),
});

describe('Router against the naive reference', () => {
  it('returns what the linear reference returns, for every generated rule set and request', (t) => {
    t.diagnostic(`fast-check seed ${SEED}, ${NUM_RUNS} runs (FC_SEED/FC_RUNS to change)`);
    const byClass = [0, 0, 0, 0];
    let total = 0;
    let fellBack = 0;
    fc.assert(
      fc.property(
        routeList,
        fc.array(request, { minLength: 1, maxLength: 25, size: 'max' }),
        (routes, requests) => {
          const router = new Router(routes);
          for (const q of requests) {
            const want = naiveLookup(routes, q.host, q.path, q.method);
            assert.equal(
              router.lookup(q.host, q.path, q.method),
              want?.target,
              `${q.method} ${q.host} ${q.path}`,
            );
            total++;
            if (want !== undefined) byClass[want.hostClass]!++;
            if (want?.fellBack) fellBack++;
          }
        },
      ),
      { seed: SEED, numRuns: NUM_RUNS },
    );
    const matched = byClass.reduce((a, b) => a + b, 0);
    t.diagnostic(
      `${total} lookups, ${matched} routed; by host class exact/wildcard/regex/any: ${byClass.join('/')}; ${fellBack} after a host fallback`,
    );
    // Generators that rarely route, or never through some host class, would make the
    // comparison vacuous there.
    assert.ok(matched > total / 5, `only ${matched} of ${total} lookups routed`);
    assert.ok(matched < total, 'every lookup routed: misses are not exercised');
    assert.ok(fellBack > total / 100, `host fallback under-exercised: ${fellBack}`);
    for (const n of byClass) assert.ok(n > total / 50, `host classes under-exercised: ${byClass.join('/')}`);
  });

  it('gives the same answer for a host whatever its case, port or trailing dot', (t) => {
    t.diagnostic(`fast-check seed ${SEED}, ${NUM_RUNS} runs`);
    fc.assert(
      fc.property(routeList, exactHost, request, (routes, host, q) => {
        const router = new Router(routes);
        const plain = router.lookup(host, q.path, q.method);
        for (const variant of [host.toUpperCase(), `${host}.`, `${host}:8080`, `${host.toUpperCase()}.:1`]) {
          assert.equal(router.lookup(variant, q.path, q.method), plain, variant);
        }
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });
});
