// The main process: owns the one authoritative state and its generation, and
// applies every change — from the command socket, a reload or a saved state —
// as one serialized transaction acknowledged only once every worker serves it.
// The workers themselves are in worker-pool.ts, "every worker answered" in
// worker-gather.ts, TLS material in tls-material.ts, main's metrics in
// main-metrics.ts.

import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { backoffMs } from '../backoff.js';
import type { ChangeResult, DryRunResult, ReloadResult } from '../command/protocol.js';
import { type Config, loadConfigFile } from '../config/load-config.js';
import { KakehiError } from '../errors.js';
import type { ListeningHandle, TlsSetupMessage } from '../ipc/messages.js';
import type { Logger } from '../log/logger.js';
import type { Family } from '../metrics/registry.js';
import type { BackendLive } from '../proxy/backend-runtime.js';
import { type Change, changeKey } from '../state/change.js';
import { diffStates, reloadDiff, type ShadowedObject, shadowedObjects } from '../state/diff.js';
import type { ProxyState } from '../state/proxy-state.js';
import { snapshotOf } from '../state/snapshot.js';
import { saveStateFile, sourcedPuts } from '../state/state-file.js';
import { applyChanges, applyTransaction } from '../state/transaction.js';
import { TICKET_KEY_ROTATION_MS } from '../tls/policy.js';
import { warnUnverifiedBackendTls } from './backend-tls-warning.js';
import { auditChange, refusalOf } from './change-audit.js';
import { HealthChecks } from './health-checks.js';
import { MainMetrics } from './main-metrics.js';
import { listenersLosingDefaults, TlsMaterial } from './tls-material.js';
import { type SupervisorEvent, type WorkerInfo, WorkerPool } from './worker-pool.js';

export type { ChangeResult, DryRunResult } from '../command/protocol.js';

/** What a main started by `ctl upgrade --main` takes over from the one before (succession.ts). */
export interface Inheritance {
  generation: number;
  tls: TlsSetupMessage;
  listeners: Map<string, ListeningHandle>;
  /** Backends the old main's health checks had down (absent from an older predecessor). */
  healthDown?: { key: string; reason: string | null }[];
}

/** A log line names this many shadowed objects and counts the rest (the reload answer has them all). */
const MAX_SHADOWED_LOGGED = 50;

export type { SupervisorEvent } from './worker-pool.js';

/**
 * A 1 MB young generation per semi-space instead of V8's up to 16 MB: a worker's
 * garbage is short-lived (one request's strings and heads), and the larger
 * spaces stayed resident, about 4 KB per idle connection at 10,000 of them
 * (bench:memory); throughput did not drop with it (docs/performance.md).
 */
const WORKER_V8_FLAGS = ['--max-semi-space-size=1'];

export class Supervisor extends EventEmitter {
  state: ProxyState;
  generation = 1;
  readonly startedAt = Date.now();
  readonly #metrics = new MainMetrics();
  readonly #tls: TlsMaterial;
  readonly #pool: WorkerPool;
  /** Main's active health checks: probed here once, their results sent to every worker. */
  readonly #checks: HealthChecks;
  /** Every change, restart and upgrade runs in turn, so each sees the state the last one committed. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Listening sockets handed over by a previous main, by listener key (succession.ts). */
  readonly #adopted: Map<string, ListeningHandle>;
  /** The top-level max_connections now: the file's at start, then its value at each reload. */
  #maxConnections: number | undefined;

  constructor(
    private readonly config: Config,
    private readonly configPath: string | undefined,
    readonly log: Logger,
    takeover?: Inheritance,
  ) {
    super();
    this.state = config.state;
    this.#maxConnections = config.settings.maxConnections;
    this.#tls = new TlsMaterial(log);
    this.#adopted = takeover?.listeners ?? new Map();
    if (takeover !== undefined) {
      this.generation = takeover.generation;
      Object.assign(this.#tls.setup, takeover.tls);
    }
    this.#checks = new HealthChecks(log, {
      changed: (down) => this.#pool.sendAll({ t: 'health_checks', down }),
      event: (ev) => this.emit('event', ev),
    });
    if (takeover?.healthDown !== undefined) this.#checks.inherit(takeover.healthDown);
    this.#pool = new WorkerPool(config.settings, log, this.#metrics, {
      init: () => ({
        t: 'init',
        generation: this.generation,
        snapshot: snapshotOf(this.state),
        accessLog: this.settings.accessLog,
        accessLogFields: this.settings.accessLogFields,
        tls: this.#tls.setup,
        healthDown: this.#checks.down(),
        maxConnections: this.#maxConnections,
      }),
      event: (ev: SupervisorEvent) => {
        // A worker's traffic found a backend failing: its health check takes it out everywhere now.
        if (ev.type === 'backend_down' && ev.worker !== undefined)
          this.#checks.passiveDown(ev.cluster, ev.backend, ev.reason ?? 'connections failed');
        const fromTraffic =
          (ev.type === 'backend_down' || ev.type === 'backend_up') && ev.worker !== undefined;
        this.emit('event', fromTraffic ? { ...ev, by: 'traffic' } : ev);
      },
      // Through the queue: the replacement's snapshot is then the committed state.
      crashed: (id) => this.#restart(id, 0),
      allClosed: () => this.emit('closed'),
      adopted: () => this.#adopted,
    });
  }

  get workerCount(): number {
    return this.config.settings.workers > 0 ? this.config.settings.workers : availableParallelism();
  }

  /** Each worker's overall connection limit now; undefined: none. */
  get maxConnections(): number | undefined {
    return this.#maxConnections;
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
    cluster.setupPrimary({
      exec: entry,
      args: ['__worker'],
      silent: false,
      // Ours first, so a flag given to main's node (and inherited) overrides it.
      execArgv: [...WORKER_V8_FLAGS, ...process.execArgv],
    });
    this.#tls.scheduleRotation(() => void this.rotateTicketKeys('schedule'));
    this.#tls.warnSelfSignedDefaults(this.state);
    warnUnverifiedBackendTls(this.log, this.state);
    await this.#ensureSelfSigned(this.state);
    await Promise.all(Array.from({ length: this.workerCount }, () => this.#pool.fork().ready));
    this.#checks.sync(this.state);
  }

  /** The self-signed default certificate goes to every worker ahead of the change that needs it. */
  async #ensureSelfSigned(state: ProxyState): Promise<void> {
    const made = await this.#tls.selfSignedFor(state);
    if (made !== undefined) this.#pool.sendAll({ t: 'self_signed', ...made });
  }

  /**
   * Every worker gets the same new keys; a worker started later gets them in its
   * init. Resolves once every ready worker says it uses them (a draining one
   * accepts no handshakes, so it is not waited for); one that does not answer
   * within the worker timeout is left out of the count. Asked for by an operator
   * (a key may have leaked), the 12-hour period restarts from now.
   */
  async rotateTicketKeys(
    by: 'schedule' | 'command',
  ): Promise<{ workers: number; rotated_at: string; next_rotation_at: string }> {
    const keys = this.#tls.rotateTicketKeys();
    const asked = this.#pool.all().filter((w) => w.state === 'ready');
    for (const w of this.#pool.all()) if (!asked.includes(w)) this.#pool.send(w, { t: 'ticket_keys', keys });
    if (by === 'command') this.#tls.scheduleRotation(() => void this.rotateTicketKeys('schedule'));
    const replies = await this.#pool.gather(asked, (seq) => ({ t: 'ticket_keys', keys, seq }), {
      timeoutMs: this.settings.workerTimeoutMs,
    });
    const answered = replies.filter((r) => typeof r.reply === 'object').length;
    const now = Date.now();
    this.log.info({ by, workers: answered }, 'TLS session ticket keys rotated');
    return {
      workers: answered,
      rotated_at: new Date(now).toISOString(),
      next_rotation_at: new Date(now + TICKET_KEY_ROTATION_MS).toISOString(),
    };
  }

  listWorkers(): WorkerInfo[] {
    return this.#pool.listWorkers();
  }

  /** Bound ports, from the first ready worker (all share the same sockets). */
  boundListeners(): { key: string; address: string; port: number }[] {
    return this.#pool.boundListeners();
  }

  /** Forks a replacement for a crashed worker; retries with backoff if it cannot start. */
  #restart(replaces: number, attempt: number): void {
    void this.#enqueue(async () => {
      if (this.#pool.stopping) return;
      const next = this.#pool.fork();
      try {
        await next.ready;
        this.log.info(
          { worker: next.id, worker_pid: next.worker.process.pid, generation: this.generation },
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
        setTimeout(() => this.#restart(replaces, attempt + 1), delay).unref();
      }
    });
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job, job);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Sends changes to every live worker and waits for all of them (Sōzu's
   * gatherer): ends on all acks or refusals, or at the worker timeout, after
   * which a silent worker is replaced; the first refusal is the outcome.
   */
  async #broadcast(
    changes: Change[],
    generation: number,
  ): Promise<{ ok: true } | { ok: false; message: string }> {
    const live = this.#pool.all().filter((w) => w.state !== 'draining');
    const replies = await this.#pool.gather(live, (seq) => ({ t: 'apply', seq, generation, changes }), {
      timeoutMs: this.settings.workerTimeoutMs,
      onTimeout: (w) => {
        this.log.error({ worker: w.id, generation }, 'worker not answering; replacing it');
        this.emit('event', { type: 'worker_not_answering', worker: w.id, generation });
        w.worker.process.kill('SIGKILL');
      },
    });
    // A worker that died or timed out holds no transaction back: it is replaced
    // with the committed state.
    for (const { reply } of replies) {
      if (typeof reply === 'object' && reply.t === 'nack') return { ok: false, message: reply.message };
    }
    return { ok: true };
  }

  /**
   * Validates and applies a transaction; nothing changes unless all of it applies
   * everywhere. `given` may be a function of the state the transaction meets, for
   * changes that depend on it (a cluster's nested backends replace its others).
   */
  transact(
    given: Change[] | ((state: ProxyState) => Change[]),
    opts: {
      source: string;
      /** One source per change, when they differ (a state file restores each object's own). */
      sources?: readonly string[];
      dryRun?: boolean;
      expectGeneration?: number | undefined;
      /** What asked, for the audit line: a request type, `reload` or `SIGHUP`. */
      request?: string;
    },
  ): Promise<ChangeResult | DryRunResult> {
    let before = this.generation;
    let changes: Change[] = typeof given === 'function' ? [] : given;
    const applied = this.#enqueue(async (): Promise<ChangeResult | DryRunResult> => {
      before = this.generation;
      changes = typeof given === 'function' ? given(this.state) : given;
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
          ? applyChanges(this.state, changes, opts.source, { now: Date.now(), refuseAbsent: true })
          : applyTransaction(
              this.state,
              changes.map((change, i) => ({ change, source: sources[i] ?? opts.source })),
            );
      if (!r.ok) {
        const code = r.notFound === true ? 'KKH_OBJECT_NOT_FOUND' : 'KKH_CHANGE_INVALID';
        throw new KakehiError(code, `the change was refused: ${r.issues.length} problem(s)`, {
          issues: r.issues,
        });
      }
      if (opts.dryRun) return { dry_run: true, generation: this.generation, diff: r.applied };
      if (r.applied.every((a) => a.effect === 'unchanged')) {
        warnUnverifiedBackendTls(this.log, r.state, r.applied);
        return { generation: this.generation, live_ms: 0, applied: r.applied };
      }
      const next = this.generation + 1;
      this.#releaseAdopted(r.state);
      await this.#ensureSelfSigned(r.state);
      const outcome = await this.#broadcast(changes, next);
      if (!outcome.ok) {
        // Some worker could not serve it (a listener that cannot bind): put back the old state everywhere.
        await this.#broadcast(diffStates(r.state, this.state), this.generation);
        throw new KakehiError('KKH_CHANGE_FAILED', `a worker could not apply the change: ${outcome.message}`);
      }
      this.state = r.state;
      this.generation = next;
      this.#checks.sync(r.state);
      const liveMs = Math.round((performance.now() - t0) * 1000) / 1000;
      this.#metrics.observeApply(liveMs / 1000);
      this.#persist();
      this.#tls.warnSelfSignedDefaults(r.state, listenersLosingDefaults(r.applied));
      warnUnverifiedBackendTls(this.log, r.state, r.applied);
      this.emit('event', {
        type: 'change_applied',
        generation: next,
        source: opts.source,
        applied: r.applied,
      });
      return { generation: next, live_ms: liveMs, applied: r.applied };
    });
    if (opts.dryRun === true) return applied;
    const facts = { request: opts.request ?? 'transaction', source: opts.source };
    return applied.then(
      (r) => {
        if (!('dry_run' in r))
          auditChange(
            this.log,
            { ...facts, generationBefore: before },
            { ...r, generationAfter: r.generation },
          );
        return r;
      },
      (err: unknown) => {
        const keys = changes.map(changeKey);
        auditChange(this.log, { ...facts, generationBefore: before }, { ...refusalOf(err), keys });
        throw err;
      },
    );
  }

  /**
   * A handed-over socket whose listener goes away or changes protocol is closed
   * here first: while main holds it the port stays bound, and the workers'
   * fresh bind (or a later re-add) would fail.
   */
  #releaseAdopted(next: ProxyState): void {
    for (const [key, handle] of this.#adopted) {
      const spec = next.listeners.get(key);
      if (spec !== undefined && spec.protocol === this.state.listeners.get(key)?.protocol) continue;
      handle.close?.();
      this.#adopted.delete(key);
    }
  }

  /**
   * Runs `job` alone, like a change. If it succeeds nothing else ever runs after
   * it: main has handed over to a successor and is leaving, so a change asked of
   * it now would be lost (it waits until main exits and its connection closes).
   */
  last<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#enqueue(job);
    this.#queue = run.then(
      () => new Promise(() => {}),
      () => {},
    );
    return run;
  }

  /** Each listener's listening socket, from a serving worker (handing over to a new main). */
  listeningHandles(): Promise<Map<string, ListeningHandle>> {
    return this.#pool.listeningHandles(this.settings.workerTimeoutMs);
  }

  /** What a successor main needs besides the sockets: the state with each object's source, the TLS material. */
  inheritance(): Omit<Inheritance, 'listeners'> & { puts: ReturnType<typeof sourcedPuts> } {
    return {
      generation: this.generation,
      tls: { ...this.#tls.setup },
      puts: sourcedPuts(this.state),
      healthDown: this.#checks.downWithReasons(),
    };
  }

  #persist(): void {
    const path = this.settings.stateFile;
    if (path === undefined) return;
    try {
      saveStateFile(path, this.state, this.generation);
    } catch (err) {
      this.log.error({ err, path }, 'could not save the state file');
    }
  }

  /**
   * Re-reads the config file and applies its difference to config-sourced
   * objects; the answer names the file objects another source holds (shadowed).
   */
  async reload(path?: string, by: 'reload' | 'SIGHUP' = 'reload'): Promise<ReloadResult> {
    const file = path ?? this.configPath;
    let next: Config;
    try {
      if (file === undefined) {
        throw new KakehiError(
          'KKH_CONFIG_UNREADABLE',
          'kakehi runs on its embedded default: there is no file to reload',
        );
      }
      next = loadConfigFile(file);
    } catch (err) {
      // Refused before any transaction: its audit line is written here.
      auditChange(
        this.log,
        { request: by, source: 'config', generationBefore: this.generation },
        refusalOf(err),
      );
      throw err;
    }
    // Diffed against the state the transaction meets, not the one seen now.
    let shadowed: ShadowedObject[] = [];
    let changes = 0;
    const diff = (state: ProxyState) => {
      shadowed = shadowedObjects(state, next.state);
      const d = reloadDiff(state, next.state);
      changes = d.length;
      return d;
    };
    const result = (await this.transact(diff, { source: 'config', request: by })) as ChangeResult;
    // A top-level setting, not an object of the state: it follows the file once
    // the file's objects are applied, and a worker forked later gets it in its init.
    const max = next.settings.maxConnections;
    if (max !== this.#maxConnections) {
      this.log.info({ from: this.#maxConnections ?? null, to: max ?? null }, 'max_connections changed');
      this.#maxConnections = max;
      this.#pool.sendAll({ t: 'max_connections', max });
    }
    this.log.info(
      {
        file,
        generation: result.generation,
        changes,
        shadowed: shadowed.slice(0, MAX_SHADOWED_LOGGED),
        ...(shadowed.length > MAX_SHADOWED_LOGGED ? { shadowed_count: shadowed.length } : {}),
      },
      shadowed.length > 0
        ? `configuration reloaded; ${shadowed.length} file object(s) are held by another source and were left alone`
        : 'configuration reloaded',
    );
    return { ...result, shadowed };
  }

  /** Replaces every worker with a fresh process running the code now on disk, one at a time. */
  upgrade(onProgress: (message: string) => void): Promise<{ replaced: number; generation: number }> {
    return this.#enqueue(async () => {
      const old = this.#pool.all().filter((w) => w.state !== 'draining');
      for (const w of old) {
        const next = this.#pool.fork();
        await next.ready;
        this.#pool.drain(w);
        onProgress(`worker ${w.id} replaced by worker ${next.id} (pid ${next.worker.process.pid})`);
      }
      return { replaced: old.length, generation: this.generation };
    });
  }

  /** Main's own families, read now. */
  mainMetrics(): Family[] {
    return [
      ...this.#metrics.families(this.generation, this.#pool.size, this.state),
      ...this.#checks.families(),
    ];
  }

  /** Counters and histograms kept from workers that drained and left; a copy. */
  retainedMetrics(): Family[] {
    return this.#metrics.retained();
  }

  /**
   * Asks every serving worker, and every draining one still finishing its
   * requests, for its metrics. A worker that does not answer within `timeoutMs`
   * is left out (a scrape must not hang on one stuck process). A worker that
   * drained while asked is left out too: its final counts are retained now.
   */
  async workerMetrics(timeoutMs: number): Promise<{ worker: number; pid: number; families: Family[] }[]> {
    const asked = this.#pool
      .all()
      .filter((w) => w.state === 'ready' || (w.state === 'draining' && !w.drained));
    const replies = await this.#pool.gather(asked, (seq) => ({ t: 'metrics', seq }), { timeoutMs });
    const out: { worker: number; pid: number; families: Family[] }[] = [];
    for (const { worker: w, reply } of replies) {
      if (typeof reply !== 'object' || reply.t !== 'metrics' || w.drained) continue;
      out.push({ worker: w.id, pid: w.worker.process.pid ?? 0, families: reply.families });
    }
    return out;
  }

  /** Each worker's view of its backends (query_backends), asked and bounded like workerMetrics. */
  async workerBackends(timeoutMs: number): Promise<{ worker: number; backends: BackendLive[] }[]> {
    const asked = this.#pool
      .all()
      .filter((w) => w.state === 'ready' || (w.state === 'draining' && !w.drained));
    const replies = await this.#pool.gather(asked, (seq) => ({ t: 'backends', seq }), { timeoutMs });
    const out: { worker: number; backends: BackendLive[] }[] = [];
    for (const { worker: w, reply } of replies) {
      if (typeof reply === 'object' && reply.t === 'backends')
        out.push({ worker: w.id, backends: reply.backends });
    }
    return out;
  }

  /** What main's health check says of each backend (query_backends). */
  checkView(key: string): ReturnType<HealthChecks['view']> {
    return this.#checks.view(key);
  }

  /** Drains every worker (soft) or kills them (hard). */
  async stop(hard: boolean): Promise<void> {
    this.#tls.stopRotation();
    this.#checks.stop();
    await this.#pool.stop(hard);
  }
}
