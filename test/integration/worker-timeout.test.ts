import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ok } from '../helpers/command.js';
import { startKakehi } from '../helpers/kakehi-process.js';

describe('a worker that stops answering', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('is reported and replaced, and the change still lands everywhere', async () => {
    const kakehi = await startKakehi({
      workers: 2,
      worker_timeout_ms: 1000,
      listeners: [{ address: '127.0.0.1:0' }],
      access_log: 'off',
    });
    cleanup.push(() => kakehi.stop('SIGKILL'));
    const [frozen] = (await ok(kakehi.socketPath, 'status'))['workers'] as { pid: number }[];
    // SIGSTOP: the process lives but answers nothing, as a worker stuck in a loop would.
    process.kill(frozen!.pid, 'SIGSTOP');
    const r = await ok(kakehi.socketPath, 'add_cluster', { cluster: { id: 'after-freeze' } });
    const reported = await kakehi.waitLog((l) => l.msg === 'worker not answering; replacing it');
    assert.equal(reported['generation'], r['generation']);
    await kakehi.waitLog((l) => l.msg === 'worker restarted');
    const status = await ok(kakehi.socketPath, 'status');
    const workers = status['workers'] as { pid: number; generation: number }[];
    assert.equal(workers.length, 2);
    assert.ok(!workers.some((w) => w.pid === frozen!.pid), 'the frozen worker is gone');
    for (const w of workers) assert.equal(w.generation, r['generation']);
  });
});
