import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { echoBackend } from '../helpers/backends.js';
import { startKakehi } from '../helpers/kakehi-process.js';
import { startLoad } from '../helpers/load.js';

describe('access log with several workers', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('writes exactly one whole JSON line per request, never interleaved across workers', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'stdout',
    });
    cleanup.push(() => kakehi.stop());
    const total = 3000;
    const load = startLoad(kakehi.port, { concurrency: 16, maxRequests: total });
    await load.done();
    await kakehi.waitAccess(total);
    assert.deepEqual(load.result.failed, []);
    assert.equal(load.result.ok, total);
    const broken = kakehi.access.filter((l) => l['unparsed'] === true);
    assert.deepEqual(broken.slice(0, 3), []);
    assert.equal(kakehi.access.length, total);
    const clients = new Set(kakehi.access.map((l) => l['client']));
    assert.ok(clients.size > 1, 'several client connections were logged');
  });
});
