// A thousand certificate/key pairs in the directory when the connector starts: all
// of them end up served (each checked by a real TLS handshake), and the time it
// takes is printed for docs/performance.md.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { eventually, issueMany, servedCertificate, startPki } from '../helpers/pki.js';

const COUNT = Number(process.env.PKI_BULK_COUNT ?? 1000);

describe('pki connector at scale', { timeout: 300_000 }, () => {
  it(`${COUNT} certificates in the directory at start are all served`, async () => {
    const ca = makeCa({ keyType: 'rsa' });
    const t0 = Date.now();
    const leaves = issueMany(ca, COUNT, (i) => `c${i}.bulk.pki.test`);
    const dir = mkdtempSync(join(tmpdir(), 'pki-bulk-'));
    for (const [i, leaf] of leaves.entries()) {
      writeFileSync(join(dir, `c${i}.crt`), leaf.certPem);
      writeFileSync(join(dir, `c${i}.key`), leaf.keyPem);
    }
    const made = Date.now() - t0;
    const kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0', protocol: 'https' }] });
    const port = kakehi.port;
    const start = Date.now();
    const c = await startPki(['-s', kakehi.socketPath, dir]);
    try {
      const heldAt = await eventually(
        async () => {
          const r = await ok(kakehi.socketPath, 'list_certificates');
          const n = (r['certificates'] as { source: string }[]).filter((x) => x.source === 'pki').length;
          assert.equal(n, COUNT);
          return Date.now();
        },
        { timeoutMs: 180_000, intervalMs: 100, what: `${COUNT} certificates held by the proxy` },
      );
      const want = new Map(leaves.map((l) => [l.name, l.fingerprint]));
      const names = [...want.keys()];
      const wrong: string[] = [];
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < names.length; i = next++) {
          const name = names[i] as string;
          const s = await servedCertificate(port, name);
          if (s.fingerprint !== want.get(name)) wrong.push(name);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const done = Date.now();
      assert.deepEqual(wrong, []);
      const status = await c.status();
      assert.equal(status.pairs.filter((p) => p.state === 'ok').length, COUNT);
      // Where the time went, from the connector's own log lines.
      const at = (l: Record<string, unknown> | undefined) => Date.parse(String(l?.['time'] ?? ''));
      const t = (msg: string) => at(c.logs.find((l) => l.msg === msg));
      const found = c.logs.filter((l) => l.msg === 'certificate found').map(at);
      const applied = c.logs
        .filter((l) => l.msg === 'proxy certificates updated')
        .reduce((sum, l) => sum + Number(l['ms']), 0);
      const rss = Number(/process_resident_memory_bytes (\d+)/.exec(await c.metrics())?.[1] ?? 0);
      console.log(
        `# ${COUNT} certificates: made in ${made} ms; connector start to all held by the proxy ${heldAt - start} ms; ` +
          `${COUNT} handshakes checked in ${done - heldAt} ms; connector RSS ${Math.round(rss / 1048576)} MiB; ` +
          `of which: process start to listening ${t('listening') - start} ms, reading and validating the pairs ` +
          `${Math.max(...found) - t('pki connector starting')} ms, transactions until the proxy acknowledged ${applied} ms`,
      );
    } finally {
      await c.stop();
      await kakehi.stop();
    }
  });
});
