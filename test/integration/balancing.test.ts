import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { after, describe, it } from 'node:test';
import { type Backend, closedPort, echoBackend, gatedBackend } from '../helpers/backends.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

function backendOf(port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve(
          res.statusCode === 200
            ? (JSON.parse(body) as { backend: string }).backend
            : `status ${res.statusCode}`,
        ),
      );
    });
    r.on('error', reject);
    r.end();
  });
}

async function counts(port: number, n: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const b = await backendOf(port);
    m.set(b, (m.get(b) ?? 0) + 1);
  }
  return m;
}

describe('load balancing over real backends', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function setup(
    lb: string,
    specs: { weight?: number; backup?: boolean; dead?: boolean }[],
  ): Promise<{ kakehi: Kakehi; backends: Backend[] }> {
    const backends: Backend[] = [];
    const list: object[] = [];
    for (const [i, s] of specs.entries()) {
      if (s.dead) {
        list.push({
          id: `b${i}`,
          address: `127.0.0.1:${await closedPort()}`,
          ...(s.backup ? { backup: true } : {}),
        });
        continue;
      }
      const b = await echoBackend(`b${i}`);
      cleanup.push(() => b.close());
      backends.push(b);
      list.push({
        id: `b${i}`,
        address: b.address,
        ...(s.weight === undefined ? {} : { weight: s.weight }),
        ...(s.backup ? { backup: true } : {}),
      });
    }
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', load_balancing: lb, backends: list }],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    return { kakehi, backends };
  }

  it('round_robin rotates through every backend in order', async () => {
    const { kakehi } = await setup('round_robin', [{}, {}, {}]);
    const seq: string[] = [];
    for (let i = 0; i < 9; i++) seq.push(await backendOf(kakehi.port));
    // Whatever the starting point, the sequence is a strict rotation.
    for (let i = 3; i < 9; i++) assert.equal(seq[i], seq[i - 3], `position ${i} in ${seq.join(',')}`);
    assert.equal(new Set(seq.slice(0, 3)).size, 3);
  });

  it('random honours weights: weight 0 gets nothing, the rest share', async () => {
    const { kakehi } = await setup('random', [{ weight: 0 }, { weight: 100 }, { weight: 100 }]);
    const m = await counts(kakehi.port, 60);
    assert.equal(m.get('b0'), undefined);
    assert.ok((m.get('b1') ?? 0) > 0 && (m.get('b2') ?? 0) > 0, JSON.stringify([...m]));
  });

  it('least_connections sends a new request away from a backend busy with a slow one', async () => {
    const slow = await gatedBackend('slow', {
      answer: (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"backend":"slow"}');
      },
    });
    const fast = await echoBackend('fast');
    cleanup.push(
      () => slow.close(),
      () => fast.close(),
    );
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [
        {
          id: 'c',
          load_balancing: 'least_connections',
          backends: [
            { id: 'slow', address: slow.address },
            { id: 'fast', address: fast.address },
          ],
        },
      ],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop());
    // Send requests until one is held by the slow backend (ties may first go to fast).
    const pendingSlow: Promise<string>[] = [];
    for (let i = 0; i < 20 && pendingSlow.length === 0; i++) {
      const p = backendOf(kakehi.port);
      const which = await Promise.race([
        p.then(() => 'answered'),
        once(slow.server, 'request').then(() => 'held'),
      ]);
      if (which === 'held') pendingSlow.push(p);
    }
    assert.equal(pendingSlow.length, 1, 'a request is held by the slow backend');
    // With one request in flight on slow, the next ones must all go to fast.
    const m = await counts(kakehi.port, 6);
    assert.equal(m.get('fast'), 6, JSON.stringify([...m]));
    slow.release();
    await Promise.all(pendingSlow);
  });

  it('power_of_two uses every backend', async () => {
    const { kakehi } = await setup('power_of_two', [{}, {}, {}]);
    const m = await counts(kakehi.port, 60);
    assert.equal(m.size, 3, JSON.stringify([...m]));
  });

  it('uses backups only while no primary is available, then retries past a dead primary', async () => {
    const { kakehi } = await setup('round_robin', [{ dead: true }, { backup: true }]);
    // The primary refuses connections: the request is retried on the backup, and answered.
    const first = await backendOf(kakehi.port);
    assert.equal(first, 'b1');
    const m = await counts(kakehi.port, 5);
    assert.equal(m.get('b1'), 5);
  });

  it('never sends to a backup while a primary is up', async () => {
    const { kakehi } = await setup('round_robin', [{}, { backup: true }]);
    const m = await counts(kakehi.port, 10);
    assert.deepEqual([...m], [['b0', 10]]);
  });
});
