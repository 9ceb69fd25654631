// Sticky sessions and hashing against a real kakehi (two workers, so a client's
// connections land on either) and real backends: a client holding the cookie
// stays on one backend across 100 requests while clients without it are spread;
// the first answer sets the cookie with the configured attributes; a drained or
// removed backend loses its clients, who get a new cookie; hashing by a header
// and by the client address sends a key to one backend and spreads keys.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type Backend, echoBackend, gatedBackend } from '../helpers/backends.js';
import { command, ok } from '../helpers/command.js';
import { ctl, ctlRow } from '../helpers/ctl-table.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

interface Answer {
  backend: string;
  setCookie: string[];
  /** What the backend received as Cookie. */
  cookie: string | undefined;
}

/** One request on a fresh connection to `to`, from `localAddress` when given (any 127.x.y.z is ours on Linux). */
function get(
  port: number,
  host: string,
  headers: Record<string, string> = {},
  localAddress?: string,
  /** The address kakehi listens on. */
  to = '127.0.0.1',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: to,
        port,
        path: '/',
        headers: { host, ...headers },
        agent: false,
        ...(localAddress ? { localAddress } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`status ${res.statusCode}: ${body}`));
            return;
          }
          const echo = JSON.parse(body) as { backend: string; headers: Record<string, string> };
          resolve({
            backend: echo.backend,
            setCookie: res.headers['set-cookie'] ?? [],
            cookie: echo.headers['cookie'],
          });
        });
      },
    );
    r.on('error', reject);
    r.end();
  });
}

/** The value of cookie `name` set by one answer. */
function cookieSet(a: Answer, name: string): string | undefined {
  for (const c of a.setCookie) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return undefined;
}

async function metric(socket: string, name: string, cluster: string): Promise<number | undefined> {
  const r = await ok(socket, 'query_metrics', { names: [name] });
  const families = r['families'] as {
    name: string;
    samples: { labels: Record<string, string>; value: number }[];
  }[];
  return families.find((f) => f.name === name)?.samples.find((s) => s.labels['cluster'] === cluster)?.value;
}

describe('sticky sessions and hashing over real backends', () => {
  const backends: Backend[] = [];
  let kakehi: Kakehi;
  const names = ['s0', 's1', 's2', 's3'];
  const list = () => backends.map((b, i) => ({ id: names[i]!, address: b.address }));

  before(async () => {
    for (const n of names) backends.push(await echoBackend(n));
    kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }, { address: '127.0.0.2:0', protocol: 'tcp', cluster: 'by-ip' }],
      clusters: [
        {
          id: 'sticky',
          sticky_session: true,
          sticky_cookie: { name: 'lb', same_site: 'strict', max_age_s: 600 },
          backends: list(),
        },
        { id: 'plain-sticky', sticky_session: true, backends: list() },
        { id: 'by-header', load_balancing: 'hash_maglev', hash_key: 'header:X-User', backends: list() },
        { id: 'by-ip', load_balancing: 'hash_rendezvous', backends: list() },
      ],
      frontends: [
        { hostname: 'sticky.test', cluster: 'sticky' },
        { hostname: 'plain.test', cluster: 'plain-sticky' },
        { hostname: 'header.test', cluster: 'by-header' },
        { hostname: 'ip.test', cluster: 'by-ip' },
      ],
      access_log: 'off',
    });
  });
  after(async () => {
    await kakehi?.stop();
    for (const b of backends) await b.close();
  });

  it('sets the cookie with the configured attributes on the first answer, and keeps the client on that backend for 100 requests', async () => {
    const first = await get(kakehi.port, 'sticky.test');
    assert.equal(first.setCookie.length, 1, JSON.stringify(first.setCookie));
    const id = cookieSet(first, 'lb');
    assert.match(id ?? '', /^[0-9a-f]{16}$/, 'an opaque id, not the address');
    assert.equal(first.setCookie[0], `lb=${id}; Path=/; Max-Age=600; HttpOnly; SameSite=Strict`);
    for (let i = 0; i < 100; i++) {
      const a = await get(kakehi.port, 'sticky.test', { cookie: `theme=dark; lb=${id}` });
      assert.equal(a.backend, first.backend, `request ${i}`);
      assert.deepEqual(a.setCookie, [], 'a client holding the right cookie is not sent it again');
    }
    // Without the cookie the same cluster balances (round robin): every backend serves.
    const spread = new Set<string>();
    for (let i = 0; i < 8; i++) spread.add((await get(kakehi.port, 'sticky.test')).backend);
    assert.equal(spread.size, 4, [...spread].join(','));
  });

  it('uses the default cookie (KKHSRV, Path=/, HttpOnly, SameSite=Lax) when only sticky_session is set', async () => {
    const a = await get(kakehi.port, 'plain.test');
    const id = cookieSet(a, 'KKHSRV');
    assert.equal(a.setCookie[0], `KKHSRV=${id}; Path=/; HttpOnly; SameSite=Lax`);
  });

  it('moves a client off a drained backend, then off a removed one, each time with a new cookie', async () => {
    const sock = kakehi.socketPath;
    const first = await get(kakehi.port, 'sticky.test');
    const id = cookieSet(first, 'lb')!;
    const missesBefore = (await metric(sock, 'kakehi_sticky_misses_total', 'sticky')) ?? 0;

    await ok(sock, 'set_backend_state', { cluster: 'sticky', backend: first.backend, state: 'drain' });
    const moved = await get(kakehi.port, 'sticky.test', { cookie: `lb=${id}` });
    assert.notEqual(moved.backend, first.backend);
    const id2 = cookieSet(moved, 'lb');
    assert.ok(id2 !== undefined && id2 !== id, `a new cookie: ${JSON.stringify(moved.setCookie)}`);
    for (let i = 0; i < 10; i++)
      assert.equal((await get(kakehi.port, 'sticky.test', { cookie: `lb=${id2}` })).backend, moved.backend);
    assert.equal((await metric(sock, 'kakehi_sticky_misses_total', 'sticky')) ?? 0, missesBefore + 1);

    await ok(sock, 'remove_backend', { cluster: 'sticky', backend: moved.backend });
    const again = await get(kakehi.port, 'sticky.test', { cookie: `lb=${id2}` });
    assert.ok(again.backend !== moved.backend && again.backend !== first.backend, again.backend);
    const id3 = cookieSet(again, 'lb');
    assert.ok(id3 !== undefined && id3 !== id2);

    // Back in rotation, the first backend has its clients again: the cookie names it by a stable id.
    await ok(sock, 'set_backend_state', { cluster: 'sticky', backend: first.backend, state: 'active' });
    const back = await get(kakehi.port, 'sticky.test', { cookie: `lb=${id}` });
    assert.equal(back.backend, first.backend);
    assert.deepEqual(back.setCookie, []);
    assert.equal(back.cookie, `lb=${id}`, 'the cookie reaches the backend as sent');
  });

  it('hashes by a header: one value always reaches one backend, values spread, and a drained backend moves only its own', async () => {
    const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    const where = new Map<string, string>();
    for (const u of users) where.set(u, (await get(kakehi.port, 'header.test', { 'x-user': u })).backend);
    for (const u of users.slice(0, 5))
      for (let i = 0; i < 10; i++)
        assert.equal((await get(kakehi.port, 'header.test', { 'x-user': u })).backend, where.get(u), u);
    assert.ok(new Set(where.values()).size >= 3, JSON.stringify([...where]));

    const out = where.get(users[0]!)!;
    await ok(kakehi.socketPath, 'set_backend_state', { cluster: 'by-header', backend: out, state: 'drain' });
    for (const u of users) {
      const now = (await get(kakehi.port, 'header.test', { 'x-user': u })).backend;
      if (where.get(u) === out) assert.notEqual(now, out, u);
      else assert.equal(now, where.get(u), `${u} stays where it was`);
    }
    await ok(kakehi.socketPath, 'set_backend_state', { cluster: 'by-header', backend: out, state: 'active' });
  });

  it('hashes by the client address: one address always reaches one backend, addresses spread', async () => {
    const where = new Map<string, string>();
    for (let i = 1; i <= 24; i++) {
      const from = `127.0.0.${i}`;
      where.set(from, (await get(kakehi.port, 'ip.test', {}, from)).backend);
    }
    for (const from of ['127.0.0.1', '127.0.0.7', '127.0.0.19'])
      for (let i = 0; i < 10; i++)
        assert.equal((await get(kakehi.port, 'ip.test', {}, from)).backend, where.get(from), from);
    assert.ok(new Set(where.values()).size >= 2, JSON.stringify([...where]));
    // A tcp listener on the same cluster hashes the same address to the same backend.
    for (const [from, backend] of where)
      assert.equal(
        (await get(kakehi.ports[1]!, 'ip.test', {}, from, '127.0.0.2')).backend,
        backend,
        `tcp from ${from}`,
      );
  });

  it('shows the algorithm, hash key and cookie in ctl clusters, and the sticky ids in ctl backends', async () => {
    const run = await ctl(kakehi.socketPath, 'clusters');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(ctlRow(run.stdout, 'by-header', 0)['LOAD_BALANCING'], 'hash_maglev by header:X-User');
    assert.equal(ctlRow(run.stdout, 'by-ip', 0)['LOAD_BALANCING'], 'hash_rendezvous by client_ip');
    assert.equal(ctlRow(run.stdout, 'sticky', 0)['STICKY'], 'lb Path=/ Max-Age=600 HttpOnly SameSite=Strict');
    assert.equal(ctlRow(run.stdout, 'by-ip', 0)['STICKY'], '-');
    const b = await ctl(kakehi.socketPath, 'backends', '--cluster', 'plain-sticky');
    assert.equal(b.code, 0, b.stderr);
    const a = await get(kakehi.port, 'plain.test');
    assert.equal(ctlRow(b.stdout, a.backend)['STICKY_ID'], cookieSet(a, 'KKHSRV'));
  });

  it('refuses hash_key without a hash algorithm over the socket, naming the field, and changes nothing', async () => {
    const f = await command(kakehi.socketPath, 'add_cluster', {
      cluster: { id: 'by-header', load_balancing: 'round_robin', hash_key: 'header:X-User' },
    });
    assert.equal(f.status, 'error');
    assert.equal(f.error?.code, 'KKH_CHANGE_INVALID');
    assert.match(
      JSON.stringify(f.error?.issues),
      /hash_key is read by load_balancing hash_rendezvous and hash_maglev only/,
    );
    const run = await ctl(kakehi.socketPath, 'clusters');
    assert.equal(ctlRow(run.stdout, 'by-header', 0)['LOAD_BALANCING'], 'hash_maglev by header:X-User');
  });
});

describe('turning hashing and stickiness on at runtime', () => {
  it('drops no request in flight, and the next requests follow the new settings', async (t) => {
    const g = await gatedBackend('g', { holds: (req) => req.url === '/slow' });
    const e1 = await echoBackend('e1');
    const e2 = await echoBackend('e2');
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [
        {
          id: 'hot',
          backends: [
            { id: 'g', address: g.address },
            { id: 'e1', address: e1.address },
            { id: 'e2', address: e2.address },
          ],
        },
      ],
      frontends: [{ hostname: '*', cluster: 'hot' }],
      access_log: 'off',
    });
    t.after(async () => {
      await kakehi.stop();
      for (const b of [g, e1, e2]) await b.close();
    });
    // Round robin: send /slow until the gated backend holds one.
    let held: Promise<[IncomingMessage]> | undefined;
    for (let i = 0; i < 3 && held === undefined; i++) {
      const r = request({ host: '127.0.0.1', port: kakehi.port, path: '/slow', agent: false });
      r.end();
      const response = once(r, 'response') as Promise<[IncomingMessage]>;
      const which = await Promise.race([response.then(() => 'answered'), g.holding.then(() => 'held')]);
      if (which === 'held') held = response;
    }
    assert.ok(held !== undefined, 'a request is held by backend g');

    await ok(kakehi.socketPath, 'add_cluster', {
      cluster: {
        id: 'hot',
        load_balancing: 'hash_rendezvous',
        hash_key: 'header:X-User',
        sticky_session: true,
      },
    });
    g.release();
    const [res] = await held;
    let body = '';
    for await (const c of res) body += String(c);
    assert.equal(res.statusCode, 200);
    assert.equal(body, 'finished', 'the request in flight across the change is answered');

    const first = await get(kakehi.port, 'any.test', { 'x-user': 'carol' });
    assert.ok(cookieSet(first, 'KKHSRV') !== undefined, 'sticky now: the answer sets the cookie');
    for (let i = 0; i < 10; i++)
      assert.equal((await get(kakehi.port, 'any.test', { 'x-user': 'carol' })).backend, first.backend);
  });
});
