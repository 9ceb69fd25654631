// Sticky sessions and hash keys without sockets: the cookie read by a scan
// (whole names only, quoted values, several Cookie fields), the Set-Cookie
// written, the opaque sticky ids, the data plane's choice (the named backend
// while available, balancing otherwise, a miss published), and the settings
// refused with the path and reason an operator needs.
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, it, type TestContext } from 'node:test';
import { stickyIdOf } from '../../src/balancer/sticky-id.js';
import { configFromObject } from '../../src/config/load-config.js';
import type { FieldIssue, KakehiError } from '../../src/errors.js';
import { clusterWithBackendsSchema, DEFAULT_STICKY_COOKIE } from '../../src/model/objects.js';
import { chooseBackend, DataPlane } from '../../src/proxy/data-plane.js';
import { parseRequestHead, type RequestHead } from '../../src/proxy/http1-head.js';
import { type Affinity, readAffinity } from '../../src/proxy/request-affinity.js';
import {
  cookieValue,
  requestCookie,
  setCookieValue,
  stickySetCookie,
} from '../../src/proxy/sticky-cookie.js';
import { emptyState } from '../../src/state/proxy-state.js';
import { applyChanges } from '../../src/state/transaction.js';
import { backend, cluster } from './state-fixtures.js';

function head(lines: string[]): RequestHead {
  const r = parseRequestHead(
    `GET /a/b?q=1 HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`,
    100,
  );
  assert.ok(!('error' in r));
  return r;
}

describe('the sticky cookie on the wire', () => {
  it('reads one cookie by a whole name, whatever surrounds it', () => {
    assert.equal(cookieValue('KKHSRV=abc', 'KKHSRV'), 'abc');
    assert.equal(cookieValue('a=1; KKHSRV=abc; b=2', 'KKHSRV'), 'abc');
    assert.equal(cookieValue('a=1;KKHSRV=abc', 'KKHSRV'), 'abc');
    assert.equal(
      cookieValue('XKKHSRV=1; KKHSRV=2', 'KKHSRV'),
      '2',
      'a longer name ending in it is another cookie',
    );
    assert.equal(
      cookieValue('a=KKHSRV=evil; KKHSRV=good', 'KKHSRV'),
      'good',
      'the name inside a value is no cookie',
    );
    assert.equal(cookieValue('KKHSRV="q1"', 'KKHSRV'), 'q1');
    assert.equal(cookieValue('KKHSRV=', 'KKHSRV'), '');
    assert.equal(cookieValue('KKHSRVX=1; a=2', 'KKHSRV'), undefined);
    assert.equal(cookieValue('', 'KKHSRV'), undefined);
  });

  it('looks through every Cookie field of a request and takes the first value', () => {
    assert.equal(requestCookie(head(['Cookie: a=1', 'Cookie: KKHSRV=s1; KKHSRV=s2']), 'KKHSRV'), 's1');
    assert.equal(requestCookie(head(['X-Cookie: KKHSRV=no']), 'KKHSRV'), undefined);
  });

  it('writes the Set-Cookie with the configured attributes', () => {
    assert.equal(setCookieValue(DEFAULT_STICKY_COOKIE, 'id1'), 'KKHSRV=id1; Path=/; HttpOnly; SameSite=Lax');
    const spec = cluster('c', {
      sticky_session: true,
      sticky_cookie: {
        name: 'lb',
        path: '/app',
        secure: true,
        http_only: false,
        same_site: 'none',
        max_age_s: 3600,
      },
    });
    assert.equal(
      stickySetCookie(spec, { stickyId: 'id2' }, undefined),
      'lb=id2; Path=/app; Max-Age=3600; Secure; SameSite=None',
    );
    assert.equal(stickySetCookie(spec, { stickyId: 'id2' }, 'id2'), undefined, 'the client already holds it');
    assert.equal(
      stickySetCookie(cluster('c'), { stickyId: 'id2' }, undefined),
      undefined,
      'not a sticky cluster',
    );
  });

  it('names a backend by an opaque id derived from its cluster and id, never its address', () => {
    const a = stickyIdOf(backend('web', 'b1', '10.1.2.3:8080'));
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.equal(
      stickyIdOf(backend('web', 'b1', '10.9.9.9:80')),
      a,
      'an address change keeps the cookie valid',
    );
    assert.notEqual(stickyIdOf(backend('api', 'b1')), a);
    assert.notEqual(stickyIdOf(backend('web', 'b2')), a);
    assert.equal(stickyIdOf(backend('web', 'b1', '10.1.2.3:8080', { sticky_id: 'blue' })), 'blue');
  });
});

describe('affinity of a request', () => {
  const affinity = (): Affinity => ({ sticky: undefined, key: undefined });

  it('reads the hash key the cluster names, and none when the request lacks it', () => {
    const a = affinity();
    const byHeader = cluster('c', { load_balancing: 'hash_maglev', hash_key: 'header:X-User' });
    readAffinity(a, byHeader, head(['x-user: alice']), '10.0.0.1');
    const alice = a.key;
    assert.notEqual(alice, undefined);
    readAffinity(a, byHeader, head(['X-User: alice', 'Cookie: KKHSRV=z']), '10.0.0.2');
    assert.equal(a.key, alice, 'same value, same key, whoever sends it');
    assert.equal(a.sticky, undefined, 'not a sticky cluster: its cookie is not read');
    readAffinity(a, byHeader, head([]), '10.0.0.1');
    assert.equal(a.key, undefined);

    const byIp = cluster('c', { load_balancing: 'hash_rendezvous' });
    readAffinity(a, byIp, head([]), '::ffff:10.0.0.1');
    const mapped = a.key;
    readAffinity(a, byIp, head([]), '10.0.0.1');
    assert.equal(a.key, mapped, 'an IPv4 client is one key on IPv4 and dual-stack listeners');

    const byCookie = cluster('c', {
      load_balancing: 'hash_rendezvous',
      hash_key: 'cookie:sid',
      sticky_session: true,
    });
    readAffinity(a, byCookie, head(['Cookie: sid=42; KKHSRV=b7']), '10.0.0.1');
    assert.equal(a.sticky, 'b7');
    const sid = a.key;
    readAffinity(a, byCookie, head(['Cookie: sid=42']), '10.0.0.9');
    assert.equal(a.key, sid);
    assert.equal(a.sticky, undefined);

    readAffinity(a, cluster('c'), head(['X-User: alice']), '10.0.0.1');
    assert.equal(a.key, undefined, 'round robin hashes nothing');
  });
});

describe('the choice of backend for a sticky cluster', () => {
  function plane(extra: object, backends: [string, object][]) {
    const changes = [
      { op: 'put_cluster' as const, cluster: cluster('c', { sticky_session: true, ...extra }) },
      ...backends.map(([id, more], i) => ({
        op: 'put_backend' as const,
        backend: backend('c', id, `127.0.0.1:${9001 + i}`, more),
      })),
    ];
    const r = applyChanges(emptyState(), changes, 'runtime');
    assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
    const p = new DataPlane(r.state, () => {});
    return { p, c: p.cluster('c')!, state: r.state };
  }
  /** Backends a, b and c, and the sticky misses published while the test runs. */
  function threeBackends(t: TestContext) {
    const { p, c } = plane({}, [
      ['a', {}],
      ['b', {}],
      ['c', {}],
    ]);
    t.after(() => p.close());
    const misses: unknown[] = [];
    const onMiss = (m: unknown) => misses.push(m);
    diagnostics_channel.subscribe('kakehi:sticky:miss', onMiss);
    t.after(() => diagnostics_channel.unsubscribe('kakehi:sticky:miss', onMiss));
    return { p, c, misses };
  }
  const sticky = (id: string): Affinity => ({ sticky: stickyIdOf({ cluster: 'c', id }), key: undefined });

  it('returns the backend the cookie names while it is available, and balances otherwise, counting the miss', (t) => {
    const { c, misses } = threeBackends(t);
    for (let i = 0; i < 100; i++) assert.equal(chooseBackend(c, [], sticky('b'))?.id, 'b');
    assert.deepEqual(misses, []);
    // Backed off (as after failed connects): the cookie no longer holds.
    c.backends[1]!.retryAt = Date.now() + 60_000;
    const elsewhere = chooseBackend(c, [], sticky('b'))?.id;
    assert.ok(elsewhere === 'a' || elsewhere === 'c', String(elsewhere));
    assert.equal(chooseBackend(c, [], { sticky: 'not-a-backend', key: undefined })?.id !== undefined, true);
    assert.deepEqual(misses, ['c', 'c']);
    // A retry after a failed connect is not held to the cookie.
    c.backends[1]!.retryAt = 0;
    assert.notEqual(chooseBackend(c, [c.backends[1]!], sticky('b'))?.id, 'b');
  });

  it('never keeps a client on a drained backend or on a backup while a primary is available', (t) => {
    const { p, c } = plane({}, [
      ['a', {}],
      ['d', { state: 'drain' }],
      ['k', { backup: true }],
    ]);
    t.after(() => p.close());
    for (let i = 0; i < 10; i++) assert.equal(chooseBackend(c, [], sticky('d'))?.id, 'a');
    assert.equal(chooseBackend(c, [], sticky('k'))?.id, 'a');
    c.backends[0]!.retryAt = Date.now() + 60_000;
    assert.equal(chooseBackend(c, [], sticky('k'))?.id, 'k', 'the backup serves while no primary can');
  });

  it('keeps sticky clients in place when the whole cluster fails open, counting no miss', (t) => {
    const { p, c, misses } = threeBackends(t);
    p.setCheckedDown(['c/a', 'c/b', 'c/c']);
    for (let i = 0; i < 10; i++) assert.equal(chooseBackend(c, [], sticky('c'))?.id, 'c');
    assert.deepEqual(misses, []);
  });

  it('finds a backend by its own sticky_id', (t) => {
    const { p, c } = plane({}, [
      ['a', { sticky_id: 'blue' }],
      ['b', { sticky_id: 'green' }],
    ]);
    t.after(() => p.close());
    for (let i = 0; i < 10; i++)
      assert.equal(chooseBackend(c, [], { sticky: 'green', key: undefined })?.id, 'b');
  });

  it('follows a backend whose sticky_id changes at runtime, and back to its derived id', (t) => {
    const { p, c, state } = plane({}, [
      ['a', { sticky_id: 'blue' }],
      ['b', {}],
    ]);
    t.after(() => p.close());
    const put = (extra: object) => {
      const r = applyChanges(
        state,
        [{ op: 'put_backend', backend: backend('c', 'a', '127.0.0.1:9001', extra) }],
        'runtime',
      );
      assert.ok(r.ok);
      p.update(r.state);
    };
    put({ sticky_id: 'navy' });
    assert.equal(chooseBackend(c, [], { sticky: 'navy', key: undefined })?.id, 'a');
    put({});
    assert.equal(chooseBackend(c, [], sticky('a'))?.id, 'a');
    assert.equal(c.backends[0]!.stickyId, stickyIdOf({ cluster: 'c', id: 'a' }));
  });
});

describe('sticky and hash settings refused by name', () => {
  function problems(raw: object): string[] {
    const issues: FieldIssue[] = [];
    clusterWithBackendsSchema.parse({ id: 'c', ...raw }, 'clusters[0]', issues);
    return issues.map((i) => `${i.path}: ${i.reason}`);
  }

  it('names each setting that cannot work as written', () => {
    assert.deepEqual(problems({ hash_key: 'path' }), [
      'clusters[0].hash_key: hash_key is read by load_balancing hash_rendezvous and hash_maglev only, not round_robin',
    ]);
    assert.deepEqual(problems({ load_balancing: 'hash_maglev', hash_key: 'source' }), [
      'clusters[0].hash_key: "source" is not a hash key; use client_ip, path, header:<name> or cookie:<name>',
    ]);
    assert.deepEqual(problems({ sticky_cookie: { name: 'x' } }), [
      'clusters[0].sticky_cookie: sticky_cookie needs sticky_session: true',
    ]);
    assert.deepEqual(problems({ sticky_session: true, sticky_cookie: { same_site: 'none' } }), [
      'clusters[0].sticky_cookie.secure: same_site "none" needs secure: true (browsers refuse it otherwise)',
    ]);
    assert.deepEqual(
      problems({ sticky_session: true, sticky_cookie: { name: '__Host-lb', path: '/a', secure: true } }),
      ['clusters[0].sticky_cookie.name: a __Host-lb cookie needs secure: true and path "/"'],
    );
    assert.deepEqual(problems({ sticky_session: true, sticky_cookie: { name: 'a b' } }), [
      'clusters[0].sticky_cookie.name: "a b" is not a cookie name (a token)',
    ]);
    assert.deepEqual(problems({ backends: [{ id: 'b', address: '127.0.0.1:1', sticky_id: 'a;b' }] }), [
      `clusters[0].backends[0].sticky_id: "a;b" cannot be a cookie value: 1-64 printable ASCII characters without spaces, '"', ',', ';' or '\\'`,
    ]);
    assert.deepEqual(
      problems({ sticky_session: true, load_balancing: 'hash_rendezvous', hash_key: 'cookie:sid' }),
      [],
    );
  });

  it('refuses one sticky_id on two backends of a config file, by their place in the file', () => {
    const config = {
      clusters: [
        {
          id: 'c',
          sticky_session: true,
          backends: [
            { id: 'a', address: '127.0.0.1:1', sticky_id: 'blue' },
            { id: 'b', address: '127.0.0.1:2', sticky_id: 'blue' },
          ],
        },
      ],
    };
    assert.throws(
      () => configFromObject(config, 'test.yaml'),
      (err: KakehiError) => {
        assert.equal(err.code, 'KKH_CONFIG_INVALID');
        assert.deepEqual(
          err.issues.map((i) => `${i.path}: ${i.reason}`),
          [
            'clusters[0].backends[1].sticky_id: "blue" is already the sticky_id of clusters[0].backends[0]; a sticky cookie must name one backend',
          ],
        );
        return true;
      },
    );
  });

  it('refuses two backends of a cluster with one sticky id, naming both', () => {
    const r = applyChanges(
      emptyState(),
      [
        { op: 'put_cluster', cluster: cluster('c') },
        { op: 'put_backend', backend: backend('c', 'a', '127.0.0.1:1', { sticky_id: 'blue' }) },
        { op: 'put_backend', backend: backend('c', 'b', '127.0.0.1:2', { sticky_id: 'blue' }) },
        { op: 'put_backend', backend: backend('other', 'c', '127.0.0.1:3', { sticky_id: 'blue' }) },
        { op: 'put_cluster', cluster: cluster('other') },
      ],
      'runtime',
    );
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.issues.map((i) => `${i.path}: ${i.reason}`), [
      'changes[1].backend.sticky_id: "blue" is also the sticky id of backend c/b; a sticky cookie must name one backend',
      'changes[2].backend.sticky_id: "blue" is also the sticky id of backend c/a; a sticky cookie must name one backend',
    ]);
  });
});
