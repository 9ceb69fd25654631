import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sameObject } from '../../connectors/pulsar/sync-plan.js';
import type { FieldIssue } from '../../src/errors.js';
import { parseScryptHash, redactFrontend } from '../../src/model/frontend-rules.js';
import { frontendSchema } from '../../src/model/objects.js';
import { BasicAuth, hashPassword } from '../../src/proxy/basic-auth.js';
import { compilePathRewrite } from '../../src/proxy/path-rewrite.js';
import { compileRedirect } from '../../src/proxy/redirect.js';
import { cidrProblem, ipList } from '../../src/router/ip-list.js';
import { parsePathRule } from '../../src/router/path-rule.js';
import type { Change } from '../../src/state/change.js';

function issuesOf(frontend: Record<string, unknown>): FieldIssue[] {
  const issues: FieldIssue[] = [];
  frontendSchema.parse({ hostname: 'a.test', cluster: 'c', ...frontend }, 'f', issues);
  return issues;
}

describe('CIDR lists', () => {
  it('match IPv4 blocks, including from IPv4-mapped IPv6 clients', () => {
    const l = ipList(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12']);
    for (const a of [
      '10.1.2.3',
      '10.255.255.255',
      '192.168.1.7',
      '172.31.0.1',
      '::ffff:10.0.0.1',
      '::FFFF:192.168.1.7',
    ])
      assert.ok(l.matches(a), a);
    for (const a of ['11.0.0.1', '192.168.1.8', '172.32.0.1', '::1', '::10.0.0.1', 'nonsense', ''])
      assert.ok(!l.matches(a), a);
  });

  it('match IPv6 blocks, and never an IPv4 client against them', () => {
    const l = ipList(['2001:db8::/32', '::1', 'fe80::/10']);
    for (const a of ['2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '::1', 'fe80::1', 'febf::1'])
      assert.ok(l.matches(a), a);
    for (const a of ['2001:db9::1', '::2', 'fec0::1', '127.0.0.1', '::ffff:127.0.0.1'])
      assert.ok(!l.matches(a), a);
    assert.ok(ipList(['::/0']).matches('2a00::1'));
    assert.ok(!ipList(['::/0']).matches('127.0.0.1'), '::/0 is IPv6 only');
    assert.ok(ipList(['0.0.0.0/0']).matches('::ffff:1.2.3.4'));
  });

  it('take IPv4-mapped blocks as IPv4 ones', () => {
    const l = ipList(['::ffff:10.0.0.0/104']);
    assert.ok(l.matches('10.9.9.9'));
    assert.ok(!l.matches('11.0.0.0'));
  });

  it('refuse what is not a block, naming it and the network address to write', () => {
    assert.equal(cidrProblem('10.0.0.0/8'), undefined);
    assert.match(cidrProblem('10.0.0.1/8') ?? '', /write the network address \(10\.0\.0\.0\/8\)/);
    assert.match(cidrProblem('10.0.0.0/33') ?? '', /from 0 to 32/);
    assert.match(cidrProblem('2001:db8::/129') ?? '', /from 0 to 128/);
    assert.match(cidrProblem('2001:db8::1/32') ?? '', /2001:db8:0:0:0:0:0:0\/32/);
    for (const bad of ['localhost', '10.0.0', '1.2.3.4/', '1.2.3.4/x', 'fe80::1%eth0', ''])
      assert.ok(cidrProblem(bad), bad);
  });
});

describe('header rule validation', () => {
  it('refuses framing, hop-by-hop and kakehi-set fields, naming the place', () => {
    for (const name of [
      'Content-Length',
      'transfer-encoding',
      'Connection',
      'Upgrade',
      'TE',
      'Keep-Alive',
      'Trailer',
    ]) {
      for (const dir of ['request_headers', 'response_headers']) {
        const issues = issuesOf({ [dir]: { set: { [name]: 'x' } } });
        assert.equal(issues[0]?.path, `f.${dir}.set.${name}`, `${dir} ${name}`);
      }
    }
    assert.match(
      issuesOf({ request_headers: { remove: ['X-Forwarded-For'] } })[0]?.reason ?? '',
      /set by kakehi/,
    );
    assert.match(issuesOf({ request_headers: { add: { Host: 'h' } } })[0]?.reason ?? '', /host_rewrite/);
    assert.match(
      issuesOf({ response_headers: { set: { 'Strict-Transport-Security': 'x' } } })[0]?.reason ?? '',
      /hsts/,
    );
    assert.match(
      issuesOf({ request_headers: { set: { 'Bad Name': 'x' } } })[0]?.reason ?? '',
      /not a header field name/,
    );
  });

  it('refuses values that could inject a field or end the head', () => {
    for (const v of ['a\r\nX-Evil: 1', 'a\nb', 'a\rb', 'nul\0', 'é', ' lead', 'trail\t']) {
      const issues = issuesOf({ request_headers: { set: { 'X-A': v } } });
      assert.equal(issues[0]?.path, 'f.request_headers.set.X-A', JSON.stringify(v));
    }
    assert.deepEqual(
      issuesOf({ request_headers: { set: { 'X-A': 'a {client_ip} {request_id} {host} {proto}' } } }),
      [],
    );
    assert.match(
      issuesOf({ request_headers: { set: { 'X-A': '{nope}' } } })[0]?.reason ?? '',
      /not a variable/,
    );
  });

  it('refuses contradictions and rewrites on frontends that do not forward', () => {
    assert.match(
      issuesOf({ request_headers: { remove: ['X-A'], set: { 'x-a': '1' } } })[0]?.reason ?? '',
      /also removed/,
    );
    assert.match(
      issuesOf({ request_headers: { set: { 'X-A': '1' }, add: { 'X-A': '2' } } })[0]?.reason ?? '',
      /use one/,
    );
    assert.match(
      issuesOf({ strip_prefix: '/a', replace_prefix: { from: '/a', to: '/b' } })[0]?.reason ?? '',
      /exclude each other/,
    );
    const issues: FieldIssue[] = [];
    frontendSchema.parse({ hostname: 'a.test', deny: true, host_rewrite: 'b.test' }, 'f', issues);
    assert.equal(issues[0]?.path, 'f.host_rewrite');
    assert.ok(issuesOf({ host_rewrite: 'a b' }).length > 0);
    assert.ok(issuesOf({ replace_prefix: { from: '/a', to: '/b?c' } }).length > 0);
  });

  it('checks redirect captures against the path regex', () => {
    const redirect = (to: string, path: Record<string, unknown>) => {
      const issues: FieldIssue[] = [];
      frontendSchema.parse({ hostname: 'a.test', redirect: { to }, ...path }, 'f', issues);
      return issues;
    };
    assert.deepEqual(redirect('/x/{2}', { path_type: 'regex', path: '/(a)/(b)' }), []);
    assert.match(redirect('/x/{3}', { path_type: 'regex', path: '/(a)/(b)' })[0]?.reason ?? '', /has 2/);
    assert.match(redirect('/x/{1}', { path: '/a' })[0]?.reason ?? '', /only a regex path/);
    assert.match(redirect('/x\r\nSet-Cookie: a', {})[0]?.reason ?? '', /visible ASCII/);
  });
});

describe('path rewrite and redirect', () => {
  it('strips and replaces prefixes, keeping the query and a leading /', () => {
    const strip = compilePathRewrite({ strip_prefix: '/api' })!;
    const at = (rw: typeof strip, target: string) => rw(target, target.split('?')[0]!);
    assert.equal(at(strip, '/api/v1?x=1'), '/v1?x=1');
    assert.equal(at(strip, '/api'), '/');
    assert.equal(at(strip, '/api?q'), '/?q');
    assert.equal(at(strip, '/apix'), '/x');
    assert.equal(at(strip, '/other/api'), '/other/api');
    const replace = compilePathRewrite({ replace_prefix: { from: '/old', to: '/new/' } })!;
    assert.equal(at(replace, '/old/a?b=c'), '/new/a?b=c');
    assert.equal(at(replace, '/old'), '/new/');
    assert.equal(compilePathRewrite({}), undefined);
  });

  it('expands host, path and captures, a literal "host" staying literal', () => {
    const rule = parsePathRule('regex', '/u/([0-9]+)');
    const r = compileRedirect('https://{host}/users/{1}/host{path}', rule);
    assert.equal(r({ host: 'a.test', path: '/u/7', target: '/u/7?x' }), 'https://a.test/users/7/host/u/7?x');
  });
});

describe('basic authentication', () => {
  it('takes only scrypt hashes in PHC form within its bounds', async () => {
    const h = await hashPassword('pw', 10);
    assert.match(h, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(typeof parseScryptHash(h), 'object');
    assert.match(parseScryptHash('pw') as string, /hash-password/);
    assert.match(parseScryptHash(h.replace('ln=10', 'ln=9')) as string, /from 10 to 20/);
    assert.match(parseScryptHash(h.replace('ln=10,r=8', 'ln=20,r=32')) as string, /MiB/);
  });

  it('accepts the right password only, with or without a remembered success', async () => {
    const auth = new BasicAuth({
      realm: 'r',
      users: [{ name: 'ann', password_hash: await hashPassword('pw', 10) }],
    });
    const header = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    assert.equal(auth.check(undefined), 'refused');
    assert.equal(auth.check('Basic !!!'), 'refused');
    assert.equal(auth.check(`Basic ${Buffer.from('no-colon').toString('base64')}`), 'refused');
    assert.equal(await auth.check(header('ann', 'nope')), false);
    assert.equal(await auth.check(header('bob', 'pw')), false);
    assert.equal(await auth.check(header('ann', 'pw')), true);
    assert.equal(auth.check(header('ann', 'pw')), 'ok', 'remembered');
    assert.equal(
      auth.check(header('ann', 'pw').replace('Basic', 'basic')),
      'ok',
      'the scheme is case-insensitive',
    );
    assert.equal(auth.challenge, 'Basic realm="r", charset="UTF-8"');
  });

  it('redacts every hash as a digest marker, stable for the same hash', async () => {
    const h = await hashPassword('pw', 10);
    const f = { basic_auth: { realm: 'r', users: [{ name: 'ann', password_hash: h }] } };
    const shown = redactFrontend(f);
    assert.ok(!JSON.stringify(shown).includes(h.split('$').at(-1)!));
    assert.deepEqual(shown, redactFrontend(f));
    assert.deepEqual(redactFrontend(shown), shown, 'a marker stays a marker');
    assert.equal(f.basic_auth.users[0]!.password_hash, h, 'the frontend itself is untouched');
  });

  it('lets the Pulsar connector tell a changed hash from the same one through the redaction', async () => {
    const put = (hash: string): Extract<Change, { op: 'put_frontend' }> => ({
      op: 'put_frontend',
      frontend: frontendSchema.parse(
        { hostname: 'a.test', cluster: 'c', basic_auth: { users: [{ name: 'ann', password_hash: hash }] } },
        '',
        [],
      )!,
    });
    const h = await hashPassword('pw', 10);
    const held = put(h);
    const shown = { ...held, frontend: redactFrontend(held.frontend) };
    assert.ok(sameObject(shown, put(h)), 'the same hash: nothing to send');
    assert.ok(!sameObject(shown, put(await hashPassword('pw', 10))), 'a new hash: sent again');
  });
});
