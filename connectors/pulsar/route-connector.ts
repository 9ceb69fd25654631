// The Pulsar route connector: keeps the proxy's objects of one source equal to
// what the route topics describe.
//
//   sync:   new non-durable readers from the earliest message of the compacted
//           view; read up to the last message id that existed at the start;
//           fold into the desired state; diff it against what the proxy holds
//           (get_state) and apply that as one transaction (compare-and-set on the
//           generation). Ready after the first one.
//   follow: the same readers go on; messages are folded as they come and applied
//           in batches (count and time); a batch counts as done only once the
//           proxy said it is live.
//   resync: a new sync, on a timer, after the proxy came back (it may have
//           restarted with less), and after any failure to apply.
//
// Nothing grows without bound: the readers' queues (flow permits), the queue
// between them and the apply loop, the batch, the list of problems and the set
// of skipped messages all have fixed sizes; only the desired state grows with
// the topic, up to --max-objects.
//
// One file of some 470 lines on purpose: sync, follow and resync share the
// readers, the queue and the wake signal; what stands apart (skipped messages,
// status reports, the plan, its application) has its own module.

import { backoffMs } from '../../src/backoff.js';
import { CommandClient } from '../../src/client/command-client.js';
import { CommandError, CommandTransportError } from '../../src/client/command-errors.js';
import { MAX_FRAME_BYTES } from '../../src/command/frame-decoder.js';
import type { Logger } from '../../src/log/logger.js';
import type { Change } from '../../src/state/change.js';
import { type ApplyOutcome, applyPlan } from './applier.js';
import { BoundedQueue } from './bounded-queue.js';
import type { Message, PulsarClient, Reader } from './client/index.js';
import { DesiredState, isDelete } from './desired.js';
import { decodeMessage, type RejectReason } from './format.js';
import { PulsarMetrics } from './metrics.js';
import { type PulsarOptions, pulsarClient } from './options.js';
import { SkippedMessages } from './skipped.js';
import { type Report, StatusReporter } from './status-report.js';
import { heldByKey, type PlannedChange, planSync } from './sync-plan.js';
import { PartitionedTopicError, readView, type ViewRead } from './view-reader.js';

const SYNC_ATTEMPTS = 5;
/** Between failed syncs: from 0.5 s, doubling, up to 30 s; half of it at random. */
const SYNC_RETRY = { initialMs: 250, maxMs: 30_000, maxExponent: 7, jitter: 0.5 };
/** After a sync whose view ended in silence before its last id: from 5 s, doubling, up to 5 min. */
const INCOMPLETE_RESYNC = { initialMs: 5_000, maxMs: 300_000, maxExponent: 6, jitter: 0.2 };
// Below the command socket's frame limit, leaving room for the request around the changes.
const MAX_TRANSACTION_BYTES = MAX_FRAME_BYTES - 256 * 1024;

interface Received {
  topic: string;
  message: Message;
}

/** A setting the connector cannot run with (a partitioned topic); the process exits 1. */
export class FatalError extends Error {}

export class RouteConnector {
  opts: PulsarOptions;
  readonly metrics: PulsarMetrics;
  readonly #log: Logger;
  readonly #pulsar: PulsarClient;
  readonly #proxy: CommandClient;
  readonly #stop = new AbortController();
  #wake = new AbortController();
  #resyncWanted: string | undefined;
  #readers: { topic: string; reader: Reader }[] = [];
  #pumps: Promise<void>[] = [];
  readonly #queue: BoundedQueue<Received>;
  #batch: Received[] = [];
  #desired = new DesiredState();
  #ready = false;
  #everReady = false;
  #lastError: string | undefined;
  #lastApplyAt: number | undefined;
  readonly #lastIds = new Map<string, string>();
  readonly #skipped: SkippedMessages;
  #resyncTimer: NodeJS.Timeout | undefined;
  readonly #reporter: StatusReporter;
  #brokerConnected = false;
  #running: Promise<void> | undefined;
  /** Syncs in a row whose view was not read to its end (their deletes withheld). */
  #incompleteSyncs = 0;

  constructor(opts: PulsarOptions, log: Logger) {
    this.opts = opts;
    this.#log = log;
    this.#queue = new BoundedQueue(opts.batchMax);
    this.metrics = new PulsarMetrics({
      lagMessages: () =>
        this.#queue.size +
        this.#batch.length +
        this.#readers.reduce((n, r) => n + r.reader.consumer.queuedMessages, 0),
      queueDepth: () => this.#queue.size + this.#batch.length,
      lagSeconds: () => {
        const oldest = this.#batch[0] ?? this.#queue.peek();
        return oldest === undefined
          ? 0
          : Math.max(0, (Date.now() - oldest.message.publishTime.getTime()) / 1000);
      },
    });
    this.#pulsar = pulsarClient(opts);
    this.#skipped = new SkippedMessages(this.#pulsar, this.metrics, log, opts.deadLetterTopic);
    this.#proxy = CommandClient.open(opts.socketPath, {
      reconnect: { initialDelayMs: 100, maxDelayMs: 5_000 },
    });
    this.#reporter = new StatusReporter(this.#proxy, log, () => this.#report());
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Runs until close(); rejects only with a FatalError. */
  start(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** Takes new settings from a SIGHUP (only those in RELOADABLE differ). */
  reconfigure(next: PulsarOptions): void {
    const resyncChanged = next.resyncIntervalMs !== this.opts.resyncIntervalMs;
    this.opts = next;
    this.#queue.capacity = next.batchMax;
    this.#skipped.retarget(next.deadLetterTopic);
    if (resyncChanged) this.#armResync();
  }

  async close(): Promise<void> {
    this.#stop.abort(new Error('closing'));
    this.#wake.abort();
    clearTimeout(this.#resyncTimer);
    this.#reporter.stop();
    await this.#closeReaders();
    await this.#running?.catch(() => undefined);
    await this.#proxy.close();
    await this.#pulsar.close();
  }

  get healthy(): { ok: boolean; reason: string } {
    if (!this.#proxy.connected)
      return { ok: false, reason: `not connected to the proxy at ${this.opts.socketPath}` };
    if (!this.#brokerConnected && !this.#ready)
      return { ok: false, reason: `not connected to ${this.opts.serviceUrl}` };
    if (this.#lastError !== undefined) return { ok: false, reason: this.#lastError };
    return { ok: true, reason: this.#ready ? 'ok: following' : 'ok: bootstrapping' };
  }

  status(): Record<string, unknown> {
    return {
      source: this.opts.source,
      service_url: this.opts.serviceUrl,
      topics: this.opts.topics.map((t) => ({ topic: t, last_applied_id: this.#lastIds.get(t) ?? null })),
      ready: this.#ready,
      proxy_connected: this.#proxy.connected,
      broker_connected: this.#brokerConnected,
      objects: this.#desired.objects.size,
      messages_in_view: this.#desired.messages,
      // False while the last sync read a view short of its last id (its deletes withheld).
      view_complete: this.#incompleteSyncs === 0,
      queued: this.#queue.size + this.#batch.length,
      last_apply_at: this.#lastApplyAt === undefined ? null : new Date(this.#lastApplyAt).toISOString(),
      last_error: this.#lastError ?? null,
      problems: this.#skipped.problems,
    };
  }

  async #run(): Promise<void> {
    void this.#watchProxy();
    void this.#watchBroker();
    this.#reporter.start();
    let failures = 0;
    let reason = 'start';
    while (!this.#stop.signal.aborted) {
      try {
        if (!this.#proxy.connected) {
          this.#log.info({ command_socket: this.opts.socketPath }, 'waiting for the proxy command socket');
        }
        await this.#proxy.whenConnected(this.#stop.signal);
        await this.#sync(reason);
        failures = 0;
        this.#lastError = undefined;
        this.#armResync();
        reason = await this.#follow();
      } catch (err) {
        if (this.#stop.signal.aborted) break;
        if (err instanceof FatalError) throw err;
        failures++;
        this.#lastError = (err as Error).message;
        this.metrics.resyncs.inc({ result: 'failed' });
        const delay = backoffMs(failures, SYNC_RETRY, Math.random());
        this.#log.warn(
          { err: (err as Error).message, retryInMs: Math.round(delay) },
          'sync failed (broker or proxy); retrying',
        );
        this.#reporter.soon();
        reason = 'retry';
        await sleep(delay, this.#stop.signal);
      }
    }
  }

  // Re-diff after the proxy comes back: it may be a new process with only its config.
  async #watchProxy(): Promise<void> {
    for await (const ev of this.#proxy.events()) {
      if (ev.type === 'disconnected') {
        this.metrics.proxyConnected.set(0);
        this.#log.warn({ reason: ev.reason }, 'lost the proxy');
      } else if (ev.type === 'reconnected') {
        this.metrics.proxyConnected.set(1);
        if (this.#everReady) {
          this.metrics.reconnects.inc({ peer: 'proxy' });
          this.#ready = false;
          this.metrics.ready.set(0);
          this.#wantResync('proxy reconnected');
        }
      }
    }
  }

  async #watchBroker(): Promise<void> {
    for await (const ev of this.#pulsar.events(this.#stop.signal)) {
      if (ev.type === 'connected') {
        this.#brokerConnected = true;
        this.metrics.brokerConnected.set(1);
      } else if (ev.type === 'disconnected') {
        this.#brokerConnected = false;
        this.metrics.brokerConnected.set(0);
        this.#log.warn({ err: ev.error?.message }, 'lost the broker; the client reconnects');
      } else if (ev.type === 'reconnected') {
        this.#brokerConnected = true;
        this.metrics.brokerConnected.set(1);
        this.metrics.reconnects.inc({ peer: 'broker' });
        this.#log.info(
          { topic: ev.topic },
          'reader reconnected; it resumes after the last message it handed out',
        );
      }
    }
  }

  #wantResync(reason: string): void {
    this.#resyncWanted ??= reason;
    this.#wake.abort();
  }

  #armResync(): void {
    clearTimeout(this.#resyncTimer);
    const interval = this.opts.resyncIntervalMs;
    // A view read short of its end is read again sooner, even with periodic resyncs off.
    const soon =
      this.#incompleteSyncs > 0
        ? backoffMs(this.#incompleteSyncs - 1, INCOMPLETE_RESYNC, Math.random())
        : undefined;
    const ms = soon === undefined ? interval : interval > 0 ? Math.min(soon, interval) : soon;
    if (ms > 0) {
      const reason = soon === undefined ? 'periodic' : 'the last view was not read to its end';
      this.#resyncTimer = setTimeout(() => this.#wantResync(reason), ms);
      this.#resyncTimer.unref();
    }
  }

  async #closeReaders(): Promise<void> {
    const readers = this.#readers;
    this.#readers = [];
    this.#queue.clear();
    await Promise.allSettled(readers.map((r) => r.reader.close()));
    await Promise.allSettled(this.#pumps);
    this.#pumps = [];
    this.#queue.clear();
  }

  async #sync(reason: string): Promise<void> {
    const started = Date.now();
    this.#resyncWanted = undefined;
    this.#wake = new AbortController();
    await this.#closeReaders();
    const desired = new DesiredState(this.opts.maxObjects);
    const incomplete: string[] = [];
    for (const topic of this.opts.topics)
      if ((await this.#readView(topic, desired)) === 'incomplete') incomplete.push(topic);
    this.#desired = desired;
    this.metrics.objects.set(desired.objects.size);
    let outcome: ApplyOutcome | undefined;
    let withheld = 0;
    for (let attempt = 1; outcome === undefined; attempt++) {
      const state = await this.#proxy.request('get_state', { sources: true });
      const held = heldByKey(
        // Object rest loses the union's tag; each entry is the change it was with its source taken off.
        state.changes.map(({ source, ...change }) => ({ change: change as Change, source })),
      );
      const plan = planSync(desired.words(), held, this.opts.source);
      // A view that may lack its newest messages cannot tell a deleted object from one
      // it has not read yet: it puts, and deletes nothing, until a view is read to its end.
      const sendable = incomplete.length > 0 ? plan.filter((p) => !isDelete(p.change)) : plan;
      withheld = plan.length - sendable.length;
      try {
        outcome = await this.#apply(sendable, state.generation);
      } catch (err) {
        // Someone else changed the proxy between our read and our write: read again.
        if (
          !(err instanceof CommandError) ||
          err.code !== 'KKH_GENERATION_MISMATCH' ||
          attempt >= SYNC_ATTEMPTS
        )
          throw err;
      }
    }
    for (const r of outcome.refused) this.#skip(`message key ${r.group}`, 'refused_by_proxy', r.reason);
    const seconds = (Date.now() - started) / 1000;
    this.metrics.bootstrapSeconds.set(seconds);
    if (this.#everReady)
      this.metrics.resyncs.inc({ result: outcome.effective > 0 ? 'changed' : 'unchanged' });
    const level = this.#everReady && outcome.effective === 0 ? 'debug' : 'info';
    this.#log[level](
      {
        reason,
        objects: desired.objects.size,
        sent: outcome.applied,
        changed: outcome.effective,
        refused: outcome.refused.length,
        ...(incomplete.length > 0 ? { incomplete, deletes_withheld: withheld } : {}),
        ms: Date.now() - started,
      },
      this.#everReady
        ? 'resynced from the compacted view'
        : 'bootstrapped from the compacted view; following',
    );
    this.#incompleteSyncs = incomplete.length > 0 ? this.#incompleteSyncs + 1 : 0;
    this.#ready = true;
    this.#everReady = true;
    this.metrics.ready.set(1);
    this.#reporter.now();
    for (const r of this.#readers) this.#pumps.push(this.#pump(r.topic, r.reader));
  }

  // Reads one topic's compacted view, folding it into `desired`; its reader follows on.
  async #readView(topic: string, desired: DesiredState): Promise<ViewRead['end']> {
    let read: ViewRead;
    try {
      read = await readView(
        this.#pulsar,
        topic,
        (m) => {
          this.metrics.received.inc();
          this.#fold(desired, topic, m);
          this.#lastIds.set(topic, m.id.toString());
        },
        {
          idleMs: this.opts.bootstrapIdleMs,
          receiverQueue: this.opts.receiverQueue,
          signal: this.#stop.signal,
        },
      );
    } catch (err) {
      throw err instanceof PartitionedTopicError ? new FatalError(err.message) : err;
    }
    this.#readers.push({ topic, reader: read.reader });
    if (read.end === 'incomplete') {
      this.#log.warn(
        { topic, last: read.last.toString(), read: read.read, idleMs: this.opts.bootstrapIdleMs },
        'the view was not read up to its last id (silence first): applying its puts, no deletes, and reading it again soon',
      );
    }
    return read.end;
  }

  async #pump(topic: string, reader: Reader): Promise<void> {
    for (;;) {
      let m: Message;
      try {
        m = await reader.readNext(this.#stop.signal);
        await this.#queue.put({ topic, message: m }, this.#stop.signal);
      } catch (err) {
        if (this.#stop.signal.aborted || reader.consumer.isClosed) return;
        this.#log.warn({ topic, err: (err as Error).message }, 'reading the topic failed; resyncing');
        this.#wantResync('read failure');
        return;
      }
    }
  }

  // Live: batches by count and time, applied in order; returns why a resync is due.
  async #follow(): Promise<string> {
    for (;;) {
      if (this.#stop.signal.aborted) return 'closing';
      if (this.#resyncWanted !== undefined) return this.#resyncWanted;
      const first = await this.#queue.take(this.#wake.signal);
      if (first === undefined) {
        // Woken with nothing to do (a resync request already served): sleep again, not spin.
        if (this.#resyncWanted === undefined && !this.#stop.signal.aborted)
          this.#wake = new AbortController();
        continue;
      }
      this.#batch = [first];
      const deadline = AbortSignal.any([this.#wake.signal, AbortSignal.timeout(this.opts.batchMs)]);
      while (this.#batch.length < this.opts.batchMax) {
        const next =
          this.#queue.size > 0 || this.opts.batchMs > 0 ? await this.#queue.take(deadline) : undefined;
        if (next === undefined) break;
        this.#batch.push(next);
      }
      try {
        await this.#applyLive(this.#batch);
      } finally {
        this.#batch = [];
      }
    }
  }

  async #applyLive(batch: Received[]): Promise<void> {
    const plan: PlannedChange[] = [];
    const byKey = new Map<string, Received>();
    for (const r of batch) {
      const { topic, message } = r;
      byKey.set(message.key ?? '', r);
      this.metrics.received.inc();
      // The message key names what a refusal drops, as in a sync: a later message
      // under the same key in this batch would supersede it anyway.
      const group = message.key ?? '';
      for (const change of this.#fold(this.#desired, topic, message)) plan.push({ change, group });
    }
    this.metrics.objects.set(this.#desired.objects.size);
    if (plan.length > 0) {
      const outcome = await this.#apply(plan, undefined);
      for (const r of outcome.refused) {
        const original = byKey.get(r.group);
        this.#skip(
          `message key ${r.group}`,
          'refused_by_proxy',
          r.reason,
          original && { topic: original.topic, m: original.message },
        );
      }
    }
    for (const { topic, message } of batch) this.#lastIds.set(topic, message.id.toString());
  }

  async #apply(plan: PlannedChange[], expectGeneration: number | undefined): Promise<ApplyOutcome> {
    if (plan.length === 0) return { applied: 0, effective: 0, refused: [], generation: undefined };
    const send = (changes: Change[], expect: number | undefined) =>
      this.#proxy.request('transaction', {
        changes,
        source: this.opts.source,
        ...(expect !== undefined ? { expect_generation: expect } : {}),
      });
    let outcome: ApplyOutcome;
    try {
      outcome = await applyPlan(plan, send, { maxBytes: MAX_TRANSACTION_BYTES, expectGeneration });
    } catch (err) {
      if (!(err instanceof CommandError && err.code === 'KKH_GENERATION_MISMATCH')) {
        this.metrics.transactions.inc({ result: 'error' });
      }
      if (err instanceof CommandTransportError) this.#wantResync('proxy unreachable while applying');
      throw err;
    }
    this.metrics.transactions.inc({ result: outcome.refused.length > 0 ? 'refused' : 'ok' });
    this.metrics.applied.inc(outcome.effective);
    this.#lastApplyAt = Date.now();
    this.metrics.lastApply.set(this.#lastApplyAt / 1000);
    return outcome;
  }

  #skip(item: string, reason: RejectReason, detail: string, original?: { topic: string; m: Message }): void {
    if (this.#skipped.skip(item, reason, detail, original)) this.#reporter.soon();
  }

  // Decodes one message and folds it; returns the changes it calls for.
  #fold(desired: DesiredState, topic: string, m: Message): Change[] {
    const d = decodeMessage(m, { certificates: this.opts.certificates });
    if (d.type === 'rejected') {
      this.#skip(`message ${topic} ${m.id.toString()} ${m.key ?? ''}`, d.reason, d.detail, { topic, m });
      return [];
    }
    if (d.type === 'changes' && desired.wouldOverflow(d.key, d.changes)) {
      this.#skip(
        `message ${topic} ${m.id.toString()} ${m.key ?? ''}`,
        'too_many_objects',
        `the topics describe ${desired.objects.size} objects, the most --max-objects allows`,
        { topic, m },
      );
      return [];
    }
    return desired.take(d).changes;
  }

  // What `kakehi ctl connectors` shows.
  #report(): Report {
    const h = this.healthy;
    const skipped = this.#skipped.problems.length;
    return {
      connector: this.opts.source,
      healthy: h.ok && this.#ready,
      summary: `${this.#ready ? 'following' : 'bootstrapping'} ${this.opts.topics.join(', ')}: ${this.#desired.objects.size} objects${skipped > 0 ? `, ${skipped} messages skipped` : ''}${h.ok ? '' : `; ${h.reason}`}`,
      problems: this.#skipped.problems.map((p) => ({ item: p.item, reason: p.reason })),
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
