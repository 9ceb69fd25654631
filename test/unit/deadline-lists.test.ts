// The shared deadline lists behind every client session's idle, head and body
// timeouts: entries fire once, in deadline order, never early, and a cancelled
// or re-armed entry does not fire at its old deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Deadlined, DeadlineLists } from '../../src/proxy/deadline-lists.js';

class Entry implements Deadlined {
  dlPrev: Deadlined | undefined = undefined;
  dlNext: Deadlined | undefined = undefined;
  dlDue = 0;
  dlList: Deadlined['dlList'] = undefined;
  armedAt = 0;
  readonly fired: number[] = [];
  constructor(
    readonly name: string,
    private readonly log: string[],
    private readonly then?: () => void,
  ) {}
  onDeadline(): void {
    this.fired.push(performance.now() - this.armedAt);
    this.log.push(this.name);
    this.then?.();
  }
}

function arm(lists: DeadlineLists, e: Entry, ms: number): void {
  e.armedAt = performance.now();
  lists.arm(e, ms);
}

/** The names fired so far; until(n) resolves when there are n. */
class FiredLog extends Array<string> {
  private waiter: (() => void) | undefined;
  private want = 0;
  override push(...names: string[]): number {
    const n = super.push(...names);
    if (this.waiter !== undefined && this.length >= this.want) this.waiter();
    return n;
  }
  until(n: number): Promise<void> {
    if (this.length >= n) return Promise.resolve();
    this.want = n;
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

describe('DeadlineLists', () => {
  it('fires each entry once, in deadline order across lists, none before its duration', async () => {
    const lists = new DeadlineLists();
    const log = new FiredLog();
    const a = new Entry('a', log);
    const b = new Entry('b', log);
    const c = new Entry('c', log);
    arm(lists, c, 60);
    arm(lists, a, 20);
    arm(lists, b, 20);
    assert.equal(lists.size, 3);
    await log.until(3);
    assert.deepEqual([...log], ['a', 'b', 'c']);
    for (const [e, ms] of [
      [a, 20],
      [b, 20],
      [c, 60],
    ] as const) {
      assert.equal(e.fired.length, 1);
      assert.ok(e.fired[0]! >= ms, `${e.name} fired after ${e.fired[0]} ms, armed for ${ms}`);
    }
    assert.equal(lists.size, 0);
  });

  it('an entry armed later on the same list fires at its own deadline, not with the earlier one', async () => {
    const lists = new DeadlineLists();
    const log = new FiredLog();
    const early = new Entry('early', log);
    const late = new Entry('late', log);
    // `late` joins the 30 ms list about 15 ms after `early`, from another list's callback.
    const starter = new Entry('starter', log, () => arm(lists, late, 30));
    arm(lists, early, 30);
    arm(lists, starter, 15);
    await log.until(3);
    assert.deepEqual([...log], ['starter', 'early', 'late']);
    assert.ok(late.fired[0]! >= 30, `late fired after ${late.fired[0]} ms, armed for 30`);
  });

  it('does not fire a cancelled entry, nor a re-armed one at its old deadline', async () => {
    const lists = new DeadlineLists();
    const log = new FiredLog();
    const gone = new Entry('gone', log);
    const moved = new Entry('moved', log);
    const marker = new Entry('marker', log);
    arm(lists, gone, 10);
    arm(lists, moved, 10);
    arm(lists, marker, 30);
    lists.cancel(gone);
    lists.cancel(gone); // twice is harmless
    arm(lists, moved, 50); // now after the marker
    await log.until(2);
    assert.deepEqual([...log], ['marker', 'moved']);
    assert.deepEqual(gone.fired, []);
    assert.ok(moved.fired[0]! >= 50);
  });

  it('refresh pushes the deadline a full duration from now; on an unarmed entry it does nothing', async () => {
    const lists = new DeadlineLists();
    const log = new FiredLog();
    const idle = new Entry('idle', log);
    const other = new Entry('other', log);
    lists.refresh(idle);
    assert.equal(lists.size, 0);
    arm(lists, idle, 20);
    arm(lists, other, 20);
    idle.armedAt = performance.now();
    lists.refresh(idle); // now behind `other` on the same list
    await log.until(2);
    assert.deepEqual([...log], ['other', 'idle']);
    assert.ok(idle.fired[0]! >= 20);
  });

  it('an entry armed again from its own callback fires again', async () => {
    const lists = new DeadlineLists();
    const log = new FiredLog();
    let rounds = 0;
    const again: Entry = new Entry('again', log, () => {
      if (++rounds < 3) arm(lists, again, 5);
    });
    arm(lists, again, 5);
    await log.until(3);
    assert.deepEqual([...log], ['again', 'again', 'again']);
    assert.equal(lists.size, 0);
  });
});
