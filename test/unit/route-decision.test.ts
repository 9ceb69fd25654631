// The route decision shared by the data plane and query_route: each answer kakehi
// gives itself, in order of precedence, and forwarding without allocation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cluster, Frontend } from '../../src/model/objects.js';
import { decideRoute, frontendRoute, type RouteTarget } from '../../src/proxy/route-decision.js';
import { Router } from '../../src/router/router.js';
import { cluster, frontend } from './state-fixtures.js';

function router(frontends: Frontend[], clusters: Cluster[]): Router<RouteTarget> {
  const byId = new Map(clusters.map((c) => [c.id, { spec: c }]));
  return new Router(
    frontends.map((f) => frontendRoute(f, f.cluster === undefined ? undefined : byId.get(f.cluster))),
  );
}

const req = (host: string, target = '/x?q=1') => ({
  host,
  path: target.split('?')[0]!,
  method: 'GET',
  target,
});

const r = router(
  [
    frontend({ hostname: 'api.test', path: '/', cluster: 'api' }),
    frontend({ hostname: 'closed.test', path: '/', deny: true }),
    frontend({ hostname: 'old.test', path: '/', redirect: { to: 'https://new.test{path}', status: 308 } }),
    frontend({ hostname: 'lost.test', path: '/', cluster: 'missing' }),
    frontend({ hostname: 'secure.test', path: '/', cluster: 'secure' }),
  ],
  [cluster('api'), cluster('secure', { https_redirect: true, https_redirect_port: 8443 })],
);

describe('route decision', () => {
  it('forwards on the route target itself, so a forwarded request allocates nothing', () => {
    const a = decideRoute(r, req('API.test:80'), 'http', false, undefined);
    const b = decideRoute(r, req('api.test'), 'http', false, undefined);
    assert.equal(a.kind, 'forward');
    assert.equal(a, b);
    assert.equal(a.cluster?.spec.id, 'api');
  });

  for (const [name, host, proto, status, location] of [
    ['an invalid Host with 400', 'bad host', 'http', 400, undefined],
    ['an unrouted host with 404', 'other.test', 'http', 404, undefined],
    ['a deny route with 403', 'closed.test', 'http', 403, undefined],
    [
      'a redirect route with its status and location, query kept',
      'old.test',
      'http',
      308,
      'https://new.test/x?q=1',
    ],
    ['a route whose cluster is missing with 503', 'lost.test', 'http', 503, undefined],
    [
      'plain HTTP to an https_redirect cluster with a redirect',
      'secure.test',
      'http',
      301,
      'https://secure.test:8443/x?q=1',
    ],
  ] as const) {
    it(`answers ${name}`, () => {
      const d = decideRoute(r, req(host), proto, false, undefined);
      assert.equal(d.kind, 'answer');
      if (d.kind !== 'answer') return;
      assert.equal(d.status, status);
      assert.equal(d.location, location);
      assert.equal(d.target === undefined, status === 400 || status === 404);
    });
  }

  it('forwards HTTPS to an https_redirect cluster', () => {
    assert.equal(decideRoute(r, req('secure.test'), 'https', false, undefined).kind, 'forward');
  });
});
