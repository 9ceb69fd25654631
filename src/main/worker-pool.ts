// Main's worker processes (node:cluster, sharing listening sockets): forking,
// the hello/init handshake, messages in order, what a worker's exit settles,
// and the rounds that wait for every worker to answer (worker-gather.ts).
// What to do with a crashed worker, and every change, is the supervisor's.

import type { SendHandle } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { ProxyEvent, WorkerInfo } from '../command/protocol.js';
import type { Settings } from '../config/load-config.js';
import { KakehiError } from '../errors.js';
import type { FromWorker, ListeningHandle, ToWorker } from '../ipc/messages.js';
import { isFromWorker } from '../ipc/messages.js';
import type { Logger } from '../log/logger.js';
import type { Family } from '../metrics/registry.js';
import type { MainMetrics } from './main-metrics.js';
import {
  type Answering,
  abandon,
  answer,
  awaited,
  type Gathered,
  Gatherer,
  type GatherOptions,
  type Reply,
} from './worker-gather.js';

/** What main tells subscribers: the protocol's events. */
export type SupervisorEvent = ProxyEvent;
export type { WorkerInfo };

export interface WorkerHandle extends Answering {
  id: number;
  worker: Worker;
  state: 'starting' | 'ready' | 'draining';
  generation: number;
  startedAt: number;
  listeners: { key: string; address: string; port: number }[];
  ready: Promise<void>;
  onReady: (err?: Error) => void;
  startTimer?: NodeJS.Timeout;
  /** Messages held until the worker says hello (it would drop them before). */
  outbox: ToWorker[] | undefined;
  /** Stopped accepting (draining). */
  closed?: boolean;
  /** Drained: its final counts are in the retained totals, so it is no longer asked. */
  drained?: boolean;
  /** Its families as of the last metrics query: what of its counts survives a crash. */
  lastFamilies?: Family[];
  failure?: { code: string; message: string };
  /** Listening sockets this worker sent back (send_listener_handles), by listener key. */
  handedBack?: Map<string, ListeningHandle>;
}

export interface PoolHooks {
  /** The init a worker gets once it says hello: main's committed state now. */
  init(): Extract<ToWorker, { t: 'init' }>;
  /** For subscribers: health events, worker_crashed, worker_not_answering. */
  event(ev: SupervisorEvent): void;
  /** A serving worker died unasked; main replaces it. */
  crashed(id: number): void;
  /** Every worker stopped accepting. */
  allClosed(): void;
  /** Listening sockets a previous main handed over: each worker listens on these before binding. */
  adopted(): ReadonlyMap<string, ListeningHandle>;
}

export class WorkerPool {
  readonly #workers = new Map<number, WorkerHandle>();
  readonly #gatherer = new Gatherer();
  #nextWorkerId = 1;
  /** Set by stop(): exits are then expected, and nothing is replaced. */
  stopping = false;

  constructor(
    private readonly settings: Settings,
    private readonly log: Logger,
    private readonly metrics: MainMetrics,
    private readonly hooks: PoolHooks,
  ) {}

  get size(): number {
    return this.#workers.size;
  }

  all(): WorkerHandle[] {
    return [...this.#workers.values()];
  }

  /** Sends `message(seq)` to `workers` and waits for each to answer, go away or time out. */
  gather(
    workers: readonly WorkerHandle[],
    message: (seq: number) => ToWorker,
    opts: Omit<GatherOptions<WorkerHandle>, 'send'>,
  ): Promise<Gathered<WorkerHandle>[]> {
    return this.#gatherer.gather(workers, message, { ...opts, send: (w, m) => this.send(w, m) });
  }

  listWorkers(): WorkerInfo[] {
    return this.all().map((w) => ({
      id: w.id,
      pid: w.worker.process.pid,
      state: w.state,
      generation: w.generation,
      uptime_s: Math.round((Date.now() - w.startedAt) / 1000),
    }));
  }

  /** Bound ports, from the first ready worker (all share the same sockets). */
  boundListeners(): { key: string; address: string; port: number }[] {
    for (const w of this.#workers.values()) if (w.state === 'ready') return w.listeners;
    return [];
  }

  send(w: WorkerHandle, m: ToWorker): void {
    if (w.outbox !== undefined) w.outbox.push(m);
    else if (w.worker.isConnected()) {
      // A worker can be on its way out while it still looks connected (it drained and
      // exited, or crashed): the write then fails with EPIPE. Its exit handler settles
      // whatever waited on it; the failed send must not take main down.
      w.worker.send(m, undefined, (err) => {
        if (err)
          this.log.debug(
            { worker: w.id, message: m.t, err: err.message },
            'message to a departing worker lost',
          );
      });
    }
  }

  /** To every worker, whatever its state (a starting one gets it after its init). */
  sendAll(m: ToWorker): void {
    for (const w of this.#workers.values()) this.send(w, m);
  }

  /** Tells a worker to stop accepting and finish what it carries; it exits when done. */
  drain(w: WorkerHandle): void {
    w.state = 'draining';
    this.send(w, { t: 'drain', timeoutMs: this.settings.drainTimeoutMs });
  }

  fork(): WorkerHandle {
    const id = this.#nextWorkerId++;
    const worker = cluster.fork({
      KAKEHI_LOG_LEVEL: this.settings.logLevel,
      // Rate limits are shared out among the workers (src/proxy/rate-limit.ts).
      KAKEHI_WORKER_COUNT: String(this.settings.workers > 0 ? this.settings.workers : availableParallelism()),
    });
    let onReady: (err?: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      onReady = (err) => (err ? reject(err) : resolve());
    });
    const h: WorkerHandle = {
      id,
      worker,
      state: 'starting',
      generation: 0,
      startedAt: Date.now(),
      listeners: [],
      ready,
      onReady,
      waits: new Map(),
      outbox: [],
    };
    ready.catch(() => {});
    this.#workers.set(id, h);
    h.startTimer = setTimeout(() => {
      if (h.state === 'starting') {
        this.log.error({ worker: id }, 'worker did not start in time; replacing it');
        h.onReady(new Error(`worker ${id} did not start within ${this.settings.workerTimeoutMs} ms`));
        worker.process.kill('SIGKILL');
      }
    }, this.settings.workerTimeoutMs * 3);
    worker.on('message', (m: unknown, passed: unknown) => {
      if (!isFromWorker(m)) return;
      if (m.t === 'listener_handle' && typeof passed === 'object' && passed !== null) {
        h.handedBack?.set(m.key, passed);
        return;
      }
      this.#onMessage(h, m);
    });
    // IPC errors (EPIPE, a channel closed mid-send) come here; an unhandled one would crash main.
    worker.on('error', (err: Error) => {
      this.log.warn({ worker: id, err: err.message }, 'IPC error with a worker');
    });
    worker.on('exit', (code, signal) => this.#onExit(h, code, signal));
    return h;
  }

  #onExit(h: WorkerHandle, code: number | null, signal: string | null): void {
    const id = h.id;
    clearTimeout(h.startTimer);
    this.#workers.delete(id);
    // A dead worker holds no round back: a change goes on without it, a query leaves it out.
    abandon(h);
    // Died without handing its final counts over (a crash, or a drain cut short):
    // keep them as of the last metrics query, so sums never go back. What it
    // counted after that query is lost; a scrape interval's worth at most.
    if (!h.drained && !this.stopping && h.lastFamilies !== undefined) {
      this.metrics.retain(h.lastFamilies);
      h.lastFamilies = undefined;
      this.log.info({ worker: id }, 'kept the counts of a worker that died, as of the last metrics query');
    }
    if (h.state === 'draining' || this.stopping) return;
    if (h.state === 'starting') {
      // Never served: whoever forked it decides what to do (start fails, a restart retries).
      h.onReady(
        h.failure
          ? new KakehiError(
              h.failure.code === 'KKH_LISTEN_FAILED' ? 'KKH_LISTEN_FAILED' : 'KKH_INTERNAL',
              h.failure.message,
            )
          : new Error(`worker ${id} exited (${code ?? signal}) before it was ready`),
      );
      return;
    }
    this.log.error(
      { worker: id, worker_pid: h.worker.process.pid, code, signal },
      'worker crashed; restarting it',
    );
    this.hooks.event({ type: 'worker_crashed', worker: id, code, signal });
    this.hooks.crashed(id);
  }

  #onMessage(h: WorkerHandle, m: FromWorker): void {
    switch (m.t) {
      case 'hello': {
        // The snapshot is the committed state now; anything broadcast since the
        // fork waits in the outbox and follows it, in order.
        const held = h.outbox ?? [];
        h.outbox = undefined;
        for (const [key, handle] of this.hooks.adopted()) {
          // Node types sendHandle as Socket | Server; a bare TCP handle is what it sends underneath.
          h.worker.send({ t: 'listener_handle', key } satisfies ToWorker, handle as unknown as SendHandle);
        }
        this.send(h, this.hooks.init());
        for (const msg of held) this.send(h, msg);
        return;
      }
      case 'ready':
        clearTimeout(h.startTimer);
        h.state = 'ready';
        h.generation = m.generation;
        h.listeners = m.listeners;
        this.log.info(
          { worker: h.id, worker_pid: h.worker.process.pid, generation: m.generation },
          'worker ready',
        );
        h.onReady();
        return;
      case 'ack':
        h.generation = m.generation;
        h.listeners = m.listeners;
        answer(h, m);
        return;
      case 'metrics':
        if (awaited(h, m)) h.lastFamilies = m.families;
        answer(h, m);
        return;
      case 'listener_handle':
        return; // one without its handle: nothing to keep
      case 'nack':
      case 'backends':
      case 'ticket_keys_set':
      case 'listener_handles_sent':
        answer(h, m satisfies Reply);
        return;
      case 'health':
        this.hooks.event({ ...m.event, worker: h.id });
        return;
      case 'failed':
        h.failure = { code: m.code, message: m.message };
        return;
      case 'closed':
        h.closed = true;
        if (this.all().every((w) => w.closed)) this.hooks.allClosed();
        return;
      case 'drained':
        if (h.drained) return;
        h.drained = true;
        this.metrics.retain(m.families);
        this.log.info({ worker: h.id, worker_pid: h.worker.process.pid, cut: m.cut }, 'worker drained');
        return;
    }
  }

  /**
   * The listening sockets, from one serving worker (all share the same ones), by
   * listener key: for handing them to a new main. Main's copies stay open until
   * closed; they do not accept (bare handles, never listened on here).
   */
  async listeningHandles(timeoutMs: number): Promise<Map<string, ListeningHandle>> {
    const w = this.all().find((x) => x.state === 'ready');
    if (w === undefined)
      throw new KakehiError('KKH_UPGRADE_FAILED', 'no serving worker to take the listening sockets from');
    const handles = new Map<string, ListeningHandle>();
    w.handedBack = handles;
    const [r] = await this.gather([w], (seq) => ({ t: 'send_listener_handles', seq }), { timeoutMs });
    w.handedBack = undefined;
    const reply = r?.reply;
    const missing =
      typeof reply === 'object' && reply.t === 'listener_handles_sent'
        ? reply.keys.filter((k) => !handles.has(k))
        : ['(no answer)'];
    if (missing.length > 0) {
      for (const h of handles.values()) h.close?.();
      throw new KakehiError(
        'KKH_UPGRADE_FAILED',
        `worker ${w.id} did not hand over every listening socket: ${missing.join(', ')}`,
      );
    }
    return handles;
  }

  /** Drains every worker (soft) or kills them (hard); resolves once all have exited. */
  async stop(hard: boolean): Promise<void> {
    this.stopping = true;
    const exits = this.all().map(
      (w) =>
        new Promise<void>((resolve) =>
          w.worker.isDead() ? resolve() : w.worker.once('exit', () => resolve()),
        ),
    );
    for (const w of this.#workers.values()) {
      if (hard) {
        w.state = 'draining';
        w.worker.process.kill('SIGKILL');
      } else this.drain(w);
    }
    await Promise.all(exits);
  }
}
