import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { type ClientEvent, PulsarClient, tokenAuth } from '../../connectors/pulsar/client/index.js';
import { env, newClient, text, uniqueTopic, waitFor } from './helpers.js';

function sign(claims: Record<string, unknown>): string {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64(JSON.stringify(claims));
  const sig = createHmac('sha256', Buffer.from(env.tokenSecret, 'base64')).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64(sig)}`;
}

describe('TLS and token auth against a real broker', () => {
  it('round-trips over pulsar+ssl:// with the test CA (lookup returns the TLS URL)', async () => {
    const client = new PulsarClient({
      serviceUrl: env.tlsUrl,
      auth: tokenAuth(env.token),
      tls: { ca: env.ca },
    });
    const topic = uniqueTopic('tls');
    const c = await client.subscribe({ topic, subscription: 's', initialPosition: 'earliest' });
    const p = await client.createProducer({ topic });
    await p.send({ payload: 'over tls' });
    assert.equal(text((await c.receive(AbortSignal.timeout(30_000))).payload), 'over tls');
    await client.close();
  });

  it('refuses a broker certificate from an unknown CA', async () => {
    const client = new PulsarClient({ serviceUrl: env.tlsUrl, auth: tokenAuth(env.token) });
    await assert.rejects(
      client.createProducer({ topic: uniqueTopic('tls-noca') }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PULSAR_CONNECT_FAILED');
        assert.match(err.message, /self.signed|unable to verify|certificate/i);
        return true;
      },
    );
    await client.close();
  });

  it('refuses a certificate that does not name the host (hostname verification)', async () => {
    // The broker's certificate names IP 127.0.0.1 only; "localhost" resolves there but is not in it.
    const url = env.tlsUrl.replace('127.0.0.1', 'localhost');
    const client = new PulsarClient({ serviceUrl: url, auth: tokenAuth(env.token), tls: { ca: env.ca } });
    await assert.rejects(
      client.createProducer({ topic: uniqueTopic('tls-host') }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PULSAR_CONNECT_FAILED');
        assert.match(err.message, /altnames|hostname|Host/i);
        return true;
      },
    );
    await client.close();
  });

  it('rejects a bad token with PULSAR_AUTH_FAILED', async () => {
    const client = newClient({ auth: tokenAuth(`${env.token}x`) });
    await assert.rejects(client.createProducer({ topic: uniqueTopic('badtoken') }), {
      code: 'PULSAR_AUTH_FAILED',
    });
    await client.close();
  });

  it('answers AUTH_CHALLENGE with a fresh token when the old one expires, keeping the connection', async () => {
    let issued = 0;
    const client = newClient({
      auth: tokenAuth(() => {
        issued++;
        return sign({ sub: 'admin', exp: Math.floor(Date.now() / 1000) + 3 });
      }),
    });
    const events: ClientEvent[] = [];
    const stream = client.events();
    const collecting = (async () => {
      for await (const ev of stream) events.push(ev);
    })();
    const topic = uniqueTopic('refresh');
    const c = await client.subscribe({ topic, subscription: 's', initialPosition: 'earliest' });
    const p = await client.createProducer({ topic });
    await waitFor(
      'two auth refreshes',
      () => (events.filter((e) => e.type === 'auth-refreshed').length >= 2 ? true : undefined),
      60_000,
    );
    await p.send({ payload: 'after refresh' });
    assert.equal(text((await c.receive(AbortSignal.timeout(30_000))).payload), 'after refresh');
    assert.deepEqual(
      events.filter((e) => e.type === 'disconnected'),
      [],
      'the broker never dropped the connection',
    );
    assert.ok(issued >= 3, `tokens issued: ${issued}`);
    await client.close();
    await collecting;
  });
});
