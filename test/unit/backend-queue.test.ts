import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendQueue, type QueueWaiter } from '../../src/proxy/backend-queue.js';

function waiter(log: string[], name: string): QueueWaiter & { timedOut: Promise<number> } {
  let timedOut: (ms: number) => void = () => {};
  const p = new Promise<number>((r) => {
    timedOut = r;
  });
  return {
    onSlot: () => log.push(`${name} slot`),
    onQueueTimeout: (ms) => {
      log.push(`${name} timeout`);
      timedOut(ms);
    },
    timedOut: p,
  };
}

describe('backend queue', () => {
  it('serves first in, first out, and refuses past its size', () => {
    const q = new BackendQueue();
    const log: string[] = [];
    const a = waiter(log, 'a');
    const b = waiter(log, 'b');
    assert.equal(q.enqueue(a, 2, 60_000), true);
    assert.equal(q.enqueue(b, 2, 60_000), true);
    assert.equal(q.enqueue(waiter(log, 'c'), 2, 60_000), false);
    assert.equal(q.length, 2);
    q.shift()?.onSlot();
    q.shift()?.onSlot();
    assert.deepEqual(log, ['a slot', 'b slot']);
    assert.equal(q.shift(), undefined);
  });

  it('a size of 0 queues nothing', () => {
    assert.equal(new BackendQueue().enqueue(waiter([], 'a'), 0, 1000), false);
  });

  it('a waiter that leaves is out of the line and never told', () => {
    const q = new BackendQueue();
    const log: string[] = [];
    const a = waiter(log, 'a');
    const b = waiter(log, 'b');
    q.enqueue(a, 5, 60_000);
    q.enqueue(b, 5, 60_000);
    q.remove(a);
    q.remove(a);
    q.shift()?.onSlot();
    assert.deepEqual(log, ['b slot']);
    assert.equal(q.length, 0);
  });

  it('times a waiter out once, after its timeout, and takes it out of the line', async () => {
    const q = new BackendQueue();
    const log: string[] = [];
    const a = waiter(log, 'a');
    q.enqueue(a, 5, 20);
    assert.equal(typeof (await a.timedOut), 'number');
    assert.equal(q.length, 0);
    assert.equal(q.shift(), undefined);
    assert.deepEqual(log, ['a timeout']);
  });
});
