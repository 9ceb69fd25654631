// When the proxy refuses a certificate the connector accepted (a newer proxy with
// stricter rules, a listener-specific problem), the pair keeps the certificate the
// proxy last took, the refusal is shown and counted, and it is not sent again and
// again. The proxy here is a fake command server holding certificates in memory, so
// that it can refuse on demand; the connector runs in-process.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PkiConnector } from '../../connectors/pki/connector.js';
import { createLogger } from '../../src/log/logger.js';
import { derSha256, issueCert, makeCa } from '../helpers/certs.js';
import { FakeCommandServer } from '../helpers/fake-command-server.js';
import { eventually, writeAtomic } from '../helpers/pki.js';

const LISTENER = '127.0.0.1:8443';

interface Held {
  listener: string;
  fingerprint: string;
  source: string;
}

async function fakeProxy(refuse: Set<string>, opts: { namePaths: boolean }) {
  const held = new Map<string, Held>();
  const server = await FakeCommandServer.start((req, reply) => {
    switch (req.type) {
      case 'list_listeners':
        return reply.ok({ listeners: [{ address: LISTENER, protocol: 'https', source: 'config' }] });
      case 'list_certificates':
        return reply.ok({ certificates: [...held.values()] });
      case 'subscribe_events':
        return; // events never come; the subscription stays open
      case 'transaction': {
        const changes = req.body['changes'] as Record<string, unknown>[];
        const issues: { path: string; reason: string }[] = [];
        changes.forEach((c, i) => {
          if (c['op'] !== 'put_certificate') return;
          const cert = c['certificate'] as { certificate: string };
          if (refuse.has(derSha256(cert.certificate))) {
            issues.push({
              path: opts.namePaths ? `changes[${i}].certificate` : 'certificate',
              reason: 'refused by the test',
            });
          }
        });
        if (issues.length > 0) return reply.error('KKH_CHANGE_INVALID', 'refused', issues);
        for (const c of changes) {
          if (c['op'] === 'put_certificate') {
            const cert = c['certificate'] as { listener: string; certificate: string };
            const fingerprint = derSha256(cert.certificate);
            held.set(`${cert.listener} ${fingerprint}`, {
              listener: cert.listener,
              fingerprint,
              source: 'pki',
            });
          } else held.delete(`${c['listener']} ${c['fingerprint']}`);
        }
        return reply.ok({ generation: 1, live_ms: 0, applied: [] });
      }
      default:
        return reply.error('KKH_REQUEST_UNKNOWN_TYPE', `not in this fake: ${req.type}`);
    }
  });
  return { server, held: () => [...held.values()].map((h) => h.fingerprint).sort() };
}

function connector(socketPath: string, dir: string): PkiConnector {
  return new PkiConnector(
    {
      socketPath,
      directories: [{ path: dir, listeners: undefined }],
      settleMs: 100,
      rescanIntervalMs: 60_000,
      watch: true,
      checkIntervalMs: 0,
      source: 'pki',
      expiryWarningDays: [21, 7],
      listen: undefined,
      maxPairs: 1_000,
      logLevel: 'silent',
    },
    createLogger('silent', 'kakehi-pki-test'),
  );
}

describe('pki connector when the proxy refuses a certificate', () => {
  const ca = makeCa();
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanup) await f();
  });

  it('a refused renewal leaves the previous certificate served, is reported once, and a later good one goes through', async () => {
    const refuse = new Set<string>();
    const proxy = await fakeProxy(refuse, { namePaths: true });
    const dir = mkdtempSync(join(tmpdir(), 'pki-refuse-'));
    const [v1, v2, v3] = [1, 2, 3].map(() => issueCert(ca, ['r.pki.test']));
    writeAtomic(join(dir, 'r.pem'), v1!.fullchainPem + v1!.keyPem);
    const c = connector(proxy.server.path, dir);
    cleanup.push(
      () => c.close(),
      () => proxy.server.close(),
    );
    await c.start();
    await eventually(() => assert.deepEqual(proxy.held(), [v1!.fingerprint]), { what: 'v1 held' });

    refuse.add(v2!.fingerprint);
    writeAtomic(join(dir, 'r.pem'), v2!.fullchainPem + v2!.keyPem);
    await eventually(
      () => {
        const pair = (c.status()['pairs'] as { state: string; last_error: string | null }[])[0];
        assert.equal(pair?.state, 'refused_by_proxy');
        assert.match(pair?.last_error ?? '', /refused by the test/);
      },
      { what: 'the refusal in status' },
    );
    assert.deepEqual(proxy.held(), [v1!.fingerprint], 'the old one is not deleted with the refused put');
    const metrics = await c.metrics.registry.metrics();
    assert.match(metrics, /kakehi_pki_invalid_pairs_total\{by="proxy"\} 1/);

    // Resyncing does not send the refused certificate again.
    const transactions = () => proxy.server.requests.filter((r) => r.type === 'transaction').length;
    const before = transactions();
    await c.requestSync();
    await c.requestSync();
    assert.equal(transactions(), before);
    assert.deepEqual(proxy.held(), [v1!.fingerprint]);

    writeAtomic(join(dir, 'r.pem'), v3!.fullchainPem + v3!.keyPem);
    await eventually(() => assert.deepEqual(proxy.held(), [v3!.fingerprint]), { what: 'v3 replaces v1' });
    // The fake holds v3 as it applies the transaction; the connector marks the pair
    // ok once it reads the answer, a moment later.
    await eventually(
      () => {
        const pair = (c.status()['pairs'] as { state: string; last_error: string | null }[])[0];
        assert.equal(pair?.state, 'ok');
        assert.equal(pair?.last_error, null);
      },
      { what: 'the pair ok again' },
    );
  });

  it('a refusal that names no change is narrowed down one put at a time; the others are served', async () => {
    const refuse = new Set<string>();
    const proxy = await fakeProxy(refuse, { namePaths: false });
    const dir = mkdtempSync(join(tmpdir(), 'pki-refuse-'));
    const good = ['a', 'b', 'c'].map((n) => issueCert(ca, [`${n}.pki.test`]));
    const bad = issueCert(ca, ['bad.pki.test']);
    refuse.add(bad.fingerprint);
    for (const [i, leaf] of [...good, bad].entries())
      writeAtomic(join(dir, `p${i}.pem`), leaf.fullchainPem + leaf.keyPem);
    const c = connector(proxy.server.path, dir);
    cleanup.push(
      () => c.close(),
      () => proxy.server.close(),
    );
    await c.start();
    await eventually(() => assert.deepEqual(proxy.held(), good.map((g) => g.fingerprint).sort()), {
      what: 'the three good ones held',
    });
    const states = (c.status()['pairs'] as { pair: string; state: string }[]).map((p) => p.state);
    assert.deepEqual(states, ['ok', 'ok', 'ok', 'refused_by_proxy']);
  });
});
