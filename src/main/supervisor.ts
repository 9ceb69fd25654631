// The main process: owns the one authoritative state and its generation,
// runs the workers (node:cluster, sharing listening sockets), and applies every
// change — from the command socket, a reload or a saved state — as one
// serialized transaction acknowledged only once every worker serves it.

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { backoffMs } from '../backoff.js';
import { type Config, loadConfigFile } from '../config/load-config.js';
import { KakehiError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { mergeFamilies, retainCounts } from '../metrics/aggregate.js';
import type { Family } from '../metrics/registry.js';
import { Registry } from '../metrics/registry.js';
import { keyOf } from '../model/objects.js';
import type { Change } from '../state/change.js';
import { diffStates, reloadDiff } from '../state/diff.js';
import type { ProxyState } from '../state/proxy-state.js';
import { saveStateFile } from '../state/state-file.js';
import { type Applied, applyChanges, applyTransaction } from '../state/transaction.js';
import { servedCertificate } from '../tls/certificate-store.js';
import { TICKET_KEY_ROTATION_MS } from '../tls/policy.js';
import { type FromWorker, isFromWorker, snapshotOf, type TlsSetupMessage, type ToWorker } from './ipc.js';

export interface SupervisorEvent {
  type: string;
  [key: string]: unknown;
}

export interface ChangeResult {
  generation: number;
  live_ms: number;
  applied: Applied[];
}

export interface DryRunResult {
  dry_run: true;
  generation: number;
  diff: Applied[];
}

interface WorkerHandle {
  id: number;
  worker: Worker;
  state: 'starting' | 'ready' | 'draining';
  generation: number;
  startedAt: number;
  listeners: { key: string; address: string; port: number }[];
  ready: Promise<void>;
  onReady: (err?: Error) => void;
  acks: Map<number, (r: { ok: true } | { ok: false; message: string }) => void>;
  metricsWaits: Map<number, (families: Family[] | undefined) => void>;
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
}

export class Supervisor extends EventEmitter {
  state: ProxyState;
  generation = 1;
  readonly startedAt = Date.now();
  private readonly workers = new Map<number, WorkerHandle>();
  private seq = 0;
  private metricsSeq = 0;
  // Main's own metrics: the control plane, not the data plane.
  private readonly registry = new Registry();
  private readonly generationGauge = this.registry
    .gauge('kakehi_config_generation', 'Generation of the configuration state main serves.')
    .get('', () => ({}));
  private readonly applyTime = this.registry
    .histogram(
      'kakehi_change_apply_seconds',
      'Time for a change to be live in every worker (validation to the last ack), in seconds.',
    )
    .get('', () => ({}));
  private readonly workersGauge = this.registry
    .gauge('kakehi_workers', 'Worker processes running (starting, ready or draining).')
    .get('', () => ({}));
  private readonly certificateExpiry = this.registry.gauge(
    'kakehi_certificate_expiry_timestamp_seconds',
    'When each certificate stops being valid (its not-after), as a Unix time in seconds.',
  );
  /** Self-signed default certificate and shared ticket keys, the same for every worker. */
  private readonly tls: TlsSetupMessage = { ticketKeys: randomBytes(48).toString('base64') };
  private ticketRotation: NodeJS.Timeout | undefined;
  /** Counters and histograms of workers that drained and left (upgrade), so totals never go back. */
  private retained: Family[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private nextWorkerId = 1;

  constructor(
    private config: Config,
    private readonly configPath: string | undefined,
    readonly log: Logger,
  ) {
    super();
    this.state = config.state;
  }

  get workerCount(): number {
    return this.config.settings.workers > 0 ? this.config.settings.workers : availableParallelism();
  }

  get settings(): Config['settings'] {
    return this.config.settings;
  }

  /** Forks the workers and resolves once every one serves the initial state. */
  async start(entry: string): Promise<void> {
    // Workers accept on the shared sockets themselves (no round-robin through
    // main). Node freezes the policy at the first setupPrimary, so it goes first:
    // set after, every connection went through main and an IPC message.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: entry, args: ['__worker'], silent: false });
    this.scheduleTicketRotation();
    this.warnSelfSignedDefaults(this.state);
    await this.ensureSelfSigned(this.state);
    await Promise.all(Array.from({ length: this.workerCount }, () => this.fork().ready));
  }

  /**
   * The self-signed default certificate, made once the state has an https
   * listener (an RSA key takes up to a second to generate, so HTTP-only
   * proxies never pay it) and sent to every worker ahead of the change.
   */
  private async ensureSelfSigned(state: ProxyState): Promise<void> {
    if (this.tls.selfSigned !== undefined) return;
    if (![...state.listeners.values()].some((l) => l.protocol === 'https')) return;
    // node-forge is loaded only by proxies that serve HTTPS.
    const { selfSignedCertificateAsync } = await import('../tls/self-signed.js');
    const made = await selfSignedCertificateAsync(['localhost']);
    this.tls.selfSigned = made;
    for (const w of this.workers.values()) this.send(w, { t: 'self_signed', ...made });
  }

  private scheduleTicketRotation(): void {
    clearInterval(this.ticketRotation);
    this.ticketRotation = setInterval(() => void this.rotateTicketKeys('schedule'), TICKET_KEY_ROTATION_MS);
    this.ticketRotation.unref();
  }

  /**
   * Every worker gets the same new keys; a worker started later gets them in its
   * init. Resolves once every ready worker uses them: IPC to a worker is ordered,
   * so a worker that answers a metrics request sent after the keys has applied
   * them. Asked for by an operator (a key may have leaked), the 12-hour period
   * restarts from now.
   */
  async rotateTicketKeys(
    by: 'schedule' | 'command',
  ): Promise<{ workers: number; rotated_at: string; next_rotation_at: string }> {
    this.tls.ticketKeys = randomBytes(48).toString('base64');
    for (const w of this.workers.values()) this.send(w, { t: 'ticket_keys', keys: this.tls.ticketKeys });
    if (by === 'command') this.scheduleTicketRotation();
    const answered = await this.workerMetrics(this.config.settings.workerTimeoutMs);
    const now = Date.now();
    this.log.info({ by, workers: answered.length }, 'TLS session ticket keys rotated');
    return {
      workers: answered.length,
      rotated_at: new Date(now).toISOString(),
      next_rotation_at: new Date(now + TICKET_KEY_ROTATION_MS).toISOString(),
    };
  }

  /** An https listener with no default certificate answers SNI-less and unknown names with a self-signed one. */
  private warnSelfSignedDefaults(state: ProxyState, only?: ReadonlySet<string>): void {
    if (only !== undefined && only.size === 0) return;
    for (const [key, l] of state.listeners) {
      if (l.protocol !== 'https' || (only !== undefined && !only.has(key))) continue;
      const hasDefault = [...state.certificates.values()].some(
        (c) => c.default && keyOf('listener', { address: c.listener }) === key,
      );
      if (!hasDefault)
        this.log.warn(
          { listener: key },
          'https listener has no default certificate: clients without SNI or with an unknown name get a self-signed one',
        );
    }
  }

  listWorkers(): {
    id: number;
    pid: number | undefined;
    state: string;
    generation: number;
    uptime_s: number;
  }[] {
    return [...this.workers.values()].map((w) => ({
      id: w.id,
      pid: w.worker.process.pid,
      state: w.state,
      generation: w.generation,
      uptime_s: Math.round((Date.now() - w.startedAt) / 1000),
    }));
  }

  /** Bound ports, from the first ready worker (all share the same sockets). */
  boundListeners(): { key: string; address: string; port: number }[] {
    for (const w of this.workers.values()) if (w.state === 'ready') return w.listeners;
    return [];
  }

  private send(w: WorkerHandle, m: ToWorker): void {
    if (w.outbox !== undefined) w.outbox.push(m);
    else if (w.worker.isConnected()) {
      // A worker can be on its way out while it still looks connected (it drained and
      // exited, or crashed): the write then fails with EPIPE. Its exit handler settles
      // whatever waited on it; the failed send must not take main down.
      w.worker.send(m, undefined, (err) => {
        if (err)
          this.log.debug({ worker: w.id, t: m.t, err: err.message }, 'message to a departing worker lost');
      });
    }
  }

  private fork(): WorkerHandle {
    const id = this.nextWorkerId++;
    const worker = cluster.fork({ KAKEHI_LOG_LEVEL: this.settings.logLevel });
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
      acks: new Map(),
      metricsWaits: new Map(),
      outbox: [],
    };
    ready.catch(() => {});
    this.workers.set(id, h);
    h.startTimer = setTimeout(() => {
      if (h.state === 'starting') {
        this.log.error({ worker: id }, 'worker did not start in time; replacing it');
        h.onReady(new Error(`worker ${id} did not start within ${this.settings.workerTimeoutMs} ms`));
        worker.process.kill('SIGKILL');
      }
    }, this.settings.workerTimeoutMs * 3);
    worker.on('message', (m: unknown) => {
      if (isFromWorker(m)) this.onWorkerMessage(h, m);
    });
    // IPC errors (EPIPE, a channel closed mid-send) come here; an unhandled one would crash main.
    worker.on('error', (err: Error) => {
      this.log.warn({ worker: id, err: err.message }, 'IPC error with a worker');
    });
    worker.on('exit', (code, signal) => {
      clearTimeout(h.startTimer);
      this.workers.delete(id);
      for (const ack of h.acks.values()) ack({ ok: true }); // a dead worker holds no transaction back
      h.acks.clear();
      for (const done of h.metricsWaits.values()) done(undefined); // gone: it counts no more
      h.metricsWaits.clear();
      // Died without handing its final counts over (a crash, or a drain cut short):
      // keep them as of the last metrics query, so sums never go back. What it
      // counted after that query is lost; a scrape interval's worth at most.
      if (!h.drained && !this.stopping && h.lastFamilies !== undefined) {
        this.retained = retainCounts(this.retained, h.lastFamilies);
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
      this.log.error({ worker: id, pid: worker.process.pid, code, signal }, 'worker crashed; restarting it');
      this.emit('event', { type: 'worker_crashed', worker: id, code, signal });
      // Through the queue: the replacement's snapshot is then the committed state.
      this.restart(id, 0);
    });
    return h;
  }

  /** Forks a replacement for a crashed worker; retries with backoff if it cannot start. */
  private restart(replaces: number, attempt: number): void {
    void this.enqueue(async () => {
      if (this.stopping) return;
      const next = this.fork();
      try {
        await next.ready;
        this.log.info(
          { worker: next.id, pid: next.worker.process.pid, generation: this.generation },
          'worker restarted',
        );
        this.emit('event', {
          type: 'worker_restarted',
          worker: next.id,
          replaces,
          generation: this.generation,
        });
      } catch (err) {
        const delay = backoffMs(attempt, { initialMs: 1_000, maxMs: 30_000 });
        this.log.error(
          { err: (err as Error).message, retry_in_ms: delay },
          'replacement worker failed to start',
        );
        setTimeout(() => this.restart(replaces, attempt + 1), delay).unref();
      }
    });
  }

  private onWorkerMessage(h: WorkerHandle, m: FromWorker): void {
    switch (m.t) {
      case 'hello': {
        // The snapshot is the committed state now; anything broadcast since the
        // fork waits in the outbox and follows it, in order.
        const held = h.outbox ?? [];
        h.outbox = undefined;
        this.send(h, {
          t: 'init',
          generation: this.generation,
          snapshot: snapshotOf(this.state),
          accessLog: this.settings.accessLog,
          tls: this.tls,
        });
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
        h.acks.get(m.seq)?.({ ok: true });
        h.acks.delete(m.seq);
        return;
      case 'nack':
        h.acks.get(m.seq)?.({ ok: false, message: m.message });
        h.acks.delete(m.seq);
        return;
      case 'health':
        this.emit('event', { ...m.event, worker: h.id });
        return;
      case 'failed':
        h.failure = { code: m.code, message: m.message };
        return;
      case 'closed':
        h.closed = true;
        if ([...this.workers.values()].every((w) => w.closed)) this.emit('closed');
        return;
      case 'drained':
        if (h.drained) return;
        h.drained = true;
        this.retained = retainCounts(this.retained, m.families);
        this.log.info({ worker: h.id, pid: h.worker.process.pid, cut: m.cut }, 'worker drained');
        return;
      case 'metrics':
        h.metricsWaits.get(m.seq)?.(m.families);
        h.metricsWaits.delete(m.seq);
        return;
    }
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Sends changes to every live worker and waits for all of them (Sōzu's
   * gatherer): ends on all acks, on the first refusal, or at the worker
   * timeout, after which a silent worker is replaced.
   */
  private async broadcast(
    changes: Change[],
    generation: number,
  ): Promise<{ ok: true } | { ok: false; message: string }> {
    const seq = ++this.seq;
    const waits: Promise<{ ok: true } | { ok: false; message: string }>[] = [];
    for (const w of this.workers.values()) {
      if (w.state === 'draining') continue;
      waits.push(
        new Promise((resolve) => {
          const timer = setTimeout(() => {
            w.acks.delete(seq);
            this.log.error({ worker: w.id, generation }, 'worker not answering; replacing it');
            this.emit('event', { type: 'worker_not_answering', worker: w.id, generation });
            w.worker.process.kill('SIGKILL');
            resolve({ ok: true });
          }, this.settings.workerTimeoutMs);
          w.acks.set(seq, (r) => {
            clearTimeout(timer);
            resolve(r);
          });
          this.send(w, { t: 'apply', seq, generation, changes });
        }),
      );
    }
    const results = await Promise.all(waits);
    return results.find((r) => !r.ok) ?? { ok: true };
  }

  /** Validates and applies a transaction; nothing changes unless all of it applies everywhere. */
  transact(
    changes: Change[],
    opts: {
      source: string;
      /** One source per change, when they differ (a state file restores each object's own). */
      sources?: readonly string[];
      dryRun?: boolean;
      expectGeneration?: number | undefined;
    },
  ): Promise<ChangeResult | DryRunResult> {
    return this.enqueue(async () => {
      const t0 = performance.now();
      if (opts.expectGeneration !== undefined && opts.expectGeneration !== this.generation) {
        throw new KakehiError(
          'KKH_GENERATION_MISMATCH',
          `expected generation ${opts.expectGeneration}, but the state is at generation ${this.generation}`,
        );
      }
      const sources = opts.sources;
      const r =
        sources === undefined
          ? applyChanges(this.state, changes, opts.source, { now: Date.now() })
          : applyTransaction(
              this.state,
              changes.map((change, i) => ({ change, source: sources[i] ?? opts.source })),
            );
      if (!r.ok) {
        throw new KakehiError('KKH_CHANGE_INVALID', `the change was refused: ${r.issues.length} problem(s)`, {
          issues: r.issues,
        });
      }
      if (opts.dryRun) return { dry_run: true, generation: this.generation, diff: r.applied };
      if (r.applied.every((a) => a.effect === 'unchanged')) {
        return { generation: this.generation, live_ms: 0, applied: r.applied };
      }
      const next = this.generation + 1;
      await this.ensureSelfSigned(r.state);
      const outcome = await this.broadcast(changes, next);
      if (!outcome.ok) {
        // Some worker could not serve it (a listener that cannot bind): put back the old state everywhere.
        await this.broadcast(diffStates(r.state, this.state), this.generation);
        throw new KakehiError('KKH_CHANGE_FAILED', `a worker could not apply the change: ${outcome.message}`);
      }
      this.state = r.state;
      this.generation = next;
      const liveMs = Math.round((performance.now() - t0) * 1000) / 1000;
      this.applyTime.observe(liveMs / 1000);
      this.persist();
      this.warnSelfSignedDefaults(r.state, listenersLosingDefaults(r.applied));
      this.emit('event', {
        type: 'change_applied',
        generation: next,
        source: opts.source,
        applied: r.applied,
      });
      return { generation: next, live_ms: liveMs, applied: r.applied };
    });
  }

  private persist(): void {
    const path = this.settings.stateFile;
    if (path === undefined) return;
    try {
      saveStateFile(path, this.state, this.generation);
    } catch (err) {
      this.log.error({ err, path }, 'could not save the state file');
    }
  }

  /** Re-reads the config file and applies its difference to config-sourced objects. */
  async reload(path?: string): Promise<ChangeResult | DryRunResult> {
    const file = path ?? this.configPath;
    if (file === undefined) {
      throw new KakehiError(
        'KKH_CONFIG_UNREADABLE',
        'kakehi runs on its embedded default: there is no file to reload',
      );
    }
    const next = loadConfigFile(file);
    const changes = reloadDiff(this.state, next.state);
    const result = await this.transact(changes, { source: 'config' });
    this.log.info({ file, generation: result.generation, changes: changes.length }, 'configuration reloaded');
    return result;
  }

  /** Replaces every worker with a fresh process running the code now on disk, one at a time. */
  upgrade(onProgress: (message: string) => void): Promise<{ replaced: number; generation: number }> {
    return this.enqueue(async () => {
      const old = [...this.workers.values()].filter((w) => w.state !== 'draining');
      for (const w of old) {
        const next = this.fork();
        await next.ready;
        w.state = 'draining';
        this.send(w, { t: 'drain', timeoutMs: this.settings.drainTimeoutMs });
        onProgress(`worker ${w.id} replaced by worker ${next.id} (pid ${next.worker.process.pid})`);
      }
      return { replaced: old.length, generation: this.generation };
    });
  }

  /** Main's own families, read now. */
  mainMetrics(): Family[] {
    this.generationGauge.set(this.generation);
    this.workersGauge.set(this.workers.size);
    const present = new Set<string>();
    for (const [key, c] of this.state.certificates) {
      present.add(key);
      const facts = servedCertificate(c)?.facts;
      if (facts === undefined) continue;
      this.certificateExpiry
        .get(key, () => ({
          listener: keyOf('listener', { address: c.listener }),
          fingerprint: facts.fingerprint,
          name: facts.names[0] ?? '',
        }))
        .set(Date.parse(facts.not_after) / 1000);
    }
    this.certificateExpiry.retain((k) => present.has(k));
    return this.registry.families();
  }

  /** Counters and histograms kept from workers that drained and left; a copy. */
  retainedMetrics(): Family[] {
    return mergeFamilies([this.retained]);
  }

  /**
   * Asks every serving worker, and every draining one still finishing its
   * requests, for its metrics. A worker that does not answer within `timeoutMs`
   * is left out (a scrape must not hang on one stuck process). A worker that
   * drained while asked is left out too: its final counts are retained now.
   */
  async workerMetrics(timeoutMs: number): Promise<{ worker: number; pid: number; families: Family[] }[]> {
    const seq = ++this.metricsSeq;
    const asked = [...this.workers.values()].filter(
      (w) => w.state === 'ready' || (w.state === 'draining' && !w.drained),
    );
    const asks = asked.map(
      (w) =>
        new Promise<{ worker: number; pid: number; families: Family[] } | undefined>((resolve) => {
          const timer = setTimeout(() => {
            w.metricsWaits.delete(seq);
            resolve(undefined);
          }, timeoutMs);
          w.metricsWaits.set(seq, (families) => {
            clearTimeout(timer);
            if (families) w.lastFamilies = families;
            resolve(families && { worker: w.id, pid: w.worker.process.pid ?? 0, families });
          });
          this.send(w, { t: 'metrics', seq });
        }),
    );
    const answers = await Promise.all(asks);
    return answers.filter((r, i) => r !== undefined && !asked[i]!.drained).map((r) => r!);
  }

  /** Drains every worker (soft) or kills them (hard). */
  async stop(hard: boolean): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticketRotation);
    const exits = [...this.workers.values()].map(
      (w) =>
        new Promise<void>((resolve) =>
          w.worker.isDead() ? resolve() : w.worker.once('exit', () => resolve()),
        ),
    );
    for (const w of this.workers.values()) {
      w.state = 'draining';
      if (hard) w.worker.process.kill('SIGKILL');
      else this.send(w, { t: 'drain', timeoutMs: this.settings.drainTimeoutMs });
    }
    await Promise.all(exits);
  }
}

/** Listeners a change may have left without a default certificate: new ones, and those that lost a certificate. */
function listenersLosingDefaults(applied: readonly Applied[]): Set<string> {
  const out = new Set<string>();
  for (const a of applied) {
    if (a.op === 'put_listener' && a.effect === 'created') out.add(a.key);
    // A certificate's key is "<listener> <fingerprint>".
    if (a.op === 'delete_certificate' && a.effect === 'deleted')
      out.add(a.key.slice(0, a.key.lastIndexOf(' ')));
  }
  return out;
}
