// The one scatter/gather for "every worker answered" (Sōzu's Gatherer): a
// numbered message goes to each worker, and the round ends once each has
// answered, gone away or timed out. A change's acks, a metrics query and a
// ticket-key rotation all go through it, so each is bounded the same way.

import type { FromWorker, ToWorker } from '../ipc/messages.js';

/** A worker's answer to a numbered message. */
export type Reply = Extract<FromWorker, { seq: number }>;

/** What a round waits on in one worker: its open rounds by number. */
export interface Answering {
  readonly id: number;
  /** Settled with the reply, or with undefined when the worker is gone. */
  readonly waits: Map<number, (reply: Reply | undefined) => void>;
}

/** Per worker asked: its reply, 'gone' (it exited first) or 'timeout'. */
export interface Gathered<W> {
  worker: W;
  reply: Reply | 'gone' | 'timeout';
}

export interface GatherOptions<W> {
  timeoutMs: number;
  send: (w: W, m: ToWorker) => void;
  /** Called when a worker's time is up, before the round ends (to replace it at once). */
  onTimeout?: (w: W) => void;
}

export class Gatherer {
  #seq = 0;

  /** Sends `message(seq)` to every worker in `workers` and waits for all of them. */
  gather<W extends Answering>(
    workers: readonly W[],
    message: (seq: number) => ToWorker,
    opts: GatherOptions<W>,
  ): Promise<Gathered<W>[]> {
    const seq = ++this.#seq;
    const m = message(seq);
    return Promise.all(
      workers.map(
        (w) =>
          new Promise<Gathered<W>>((resolve) => {
            const timer = setTimeout(() => {
              w.waits.delete(seq);
              opts.onTimeout?.(w);
              resolve({ worker: w, reply: 'timeout' });
            }, opts.timeoutMs);
            w.waits.set(seq, (reply) => {
              clearTimeout(timer);
              resolve({ worker: w, reply: reply ?? 'gone' });
            });
            opts.send(w, m);
          }),
      ),
    );
  }
}

/** True when a round waits on this reply (a late one, after the timeout, is not). */
export function awaited(w: Answering, reply: Reply): boolean {
  return w.waits.has(reply.seq);
}

/** Hands a reply to the round waiting on it; a late reply is dropped. */
export function answer(w: Answering, reply: Reply): void {
  w.waits.get(reply.seq)?.(reply);
  w.waits.delete(reply.seq);
}

/** The worker exited: every round still waiting on it counts it as gone. */
export function abandon(w: Answering): void {
  for (const settle of w.waits.values()) settle(undefined);
  w.waits.clear();
}
