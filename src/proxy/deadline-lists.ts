// Deadlines for many connections on few timers: one list per duration, kept in
// deadline order because every entry of a list was added with the same
// duration, and one Node timer per list, set for its earliest entry. The entry
// is the connection itself (a few fields, see Deadlined): an idle keep-alive
// connection holds no Timeout object and no closure, which at 10,000 of them
// was about 190 bytes each (bench:memory).

/** What a connection carries to be on a list; only DeadlineLists touches these fields. */
export interface Deadlined {
  dlPrev: Deadlined | undefined;
  dlNext: Deadlined | undefined;
  /** performance.now() at which it is due. */
  dlDue: number;
  /** The list it is on; undefined when not armed. */
  dlList: DeadlineList | undefined;
  /** Called once when the deadline passes; the entry is off its list by then. */
  onDeadline(): void;
}

class DeadlineList {
  head: Deadlined | undefined;
  tail: Deadlined | undefined;
  timer: NodeJS.Timeout | undefined;

  constructor(readonly ms: number) {}
}

export class DeadlineLists {
  /** One per distinct duration: as many as the listeners' configured timeouts, not per connection. */
  private readonly lists = new Map<number, DeadlineList>();

  /**
   * (Re)starts `e`'s deadline `ms` from now, replacing any it had. `now`: a
   * performance.now() the caller just took, so as not to read the clock twice.
   */
  arm(e: Deadlined, ms: number, now = performance.now()): void {
    this.cancel(e);
    let list = this.lists.get(ms);
    if (list === undefined) {
      list = new DeadlineList(ms);
      this.lists.set(ms, list);
    }
    e.dlDue = now + ms;
    e.dlList = list;
    e.dlPrev = list.tail;
    e.dlNext = undefined;
    if (list.tail === undefined) list.head = e;
    else list.tail.dlNext = e;
    list.tail = e;
    if (list.timer === undefined) this.schedule(list, ms);
  }

  /** Pushes `e`'s deadline to a full duration from now; nothing when it is not armed. */
  refresh(e: Deadlined, now = performance.now()): void {
    const list = e.dlList;
    if (list !== undefined) this.arm(e, list.ms, now);
  }

  /** Takes `e` off its list; nothing when it is not armed. */
  cancel(e: Deadlined): void {
    const list = e.dlList;
    if (list === undefined) return;
    if (e.dlPrev === undefined) list.head = e.dlNext;
    else e.dlPrev.dlNext = e.dlNext;
    if (e.dlNext === undefined) list.tail = e.dlPrev;
    else e.dlNext.dlPrev = e.dlPrev;
    e.dlPrev = undefined;
    e.dlNext = undefined;
    e.dlList = undefined;
    // The list's timer stays: it finds the list empty (or a later head) and acts on that.
  }

  /** How many entries are armed (for tests). */
  get size(): number {
    let n = 0;
    for (const list of this.lists.values()) for (let e = list.head; e !== undefined; e = e.dlNext) n++;
    return n;
  }

  private schedule(list: DeadlineList, ms: number): void {
    list.timer = setTimeout(() => this.expire(list), Math.max(1, Math.ceil(ms)));
  }

  private expire(list: DeadlineList): void {
    list.timer = undefined;
    const now = performance.now();
    for (let e = list.head; e !== undefined && e.dlDue <= now; e = list.head) {
      this.cancel(e);
      e.onDeadline();
    }
    // A fired callback may have armed entries on this list again (and so set its timer).
    if (list.timer !== undefined) return;
    const head = list.head;
    if (head !== undefined) this.schedule(list, head.dlDue - now);
    else this.lists.delete(list.ms);
  }
}

/**
 * A second deadline for an owner that is already an entry itself (a session's
 * backend side): made once per owner and reused, so arming it allocates nothing.
 */
export class DeadlineEntry implements Deadlined {
  dlPrev: Deadlined | undefined = undefined;
  dlNext: Deadlined | undefined = undefined;
  dlDue = 0;
  dlList: DeadlineList | undefined = undefined;
  /** The duration it was last armed with, for the owner's message when it passes. */
  ms = 0;

  constructor(private readonly owner: { onEntryDeadline(entry: DeadlineEntry): void }) {}

  onDeadline(): void {
    this.owner.onEntryDeadline(this);
  }
}

/** The worker's lists: every client session of the process shares them. */
export const sessionDeadlines = new DeadlineLists();
