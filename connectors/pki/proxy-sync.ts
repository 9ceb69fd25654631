// Keeping the proxy's certificates of this connector's source equal to the
// pairs that serve: lists what the proxy holds, plans puts and deletes
// (reconcile.ts), sends them in bounded transactions, and remembers what the
// proxy took and what it refused, so a refused certificate falls back to the
// last one it took and is not sent again until its files change. It owns the
// connection: a new proxy process, or a change made by another source, is
// reconciled without the connector asking.

import { CommandClient, CommandError, CommandTransportError } from '../../src/client/command-client.js';
import type { RequestType } from '../../src/command/frames.js';
import type { CertificateSummary, ResultOf } from '../../src/command/protocol.js';
import type { Logger } from '../../src/log/logger.js';
import type { PkiMetrics } from './metrics.js';
import type { PkiOptions } from './options.js';
import type { GoodCert } from './reader.js';
import {
  batchChanges,
  type CertificateChange,
  type DesiredPair,
  type HeldCertificate,
  planChanges,
  rejectedIndexes,
} from './reconcile.js';
import type { Settler } from './settle.js';
import { clip, type DirectoryStatus, type LastSync, type PairInfo, type ReportBody } from './status.js';

/** Under the command socket's 4 MiB frame limit with room for the envelope. */
export const MAX_TRANSACTION_BYTES = 3 * 1024 * 1024;
const MAX_SYNC_ROUNDS = 8;
/** A change by another source (listener added, state loaded) is reconciled after this. */
const FOREIGN_CHANGE_DELAY_MS = 200;
/** The proxy not reachable by then at start is worth a warning (later losses are logged as they come). */
const UNREACHABLE_WARN_MS = 2_000;
/** An event stream the proxy ended while connected is opened again after this. */
const EVENTS_RETRY_MS = 1_000;

type ProxyCall = <T extends RequestType>(type: T, body?: Record<string, unknown>) => Promise<ResultOf<T>>;

/** What the sync reads of the connector; live values (settings and directories change on reload). */
export interface PkiView {
  readonly opts: PkiOptions;
  readonly pairs: ReadonlyMap<string, PairInfo>;
  readonly settler: Settler;
  readonly dirStatus: DirectoryStatus[];
  readonly metrics: PkiMetrics;
  readonly log: Logger;
  reportBody(): ReportBody;
}

export class ProxySync {
  readonly #v: PkiView;
  /** Opened by connect() after the first scan (a sync before it would withdraw every certificate); redials by itself. */
  #client: CommandClient | undefined;
  #everConnected = false;
  #foreignTimer: NodeJS.Timeout | undefined;
  #eventsRetry: NodeJS.Timeout | undefined;
  /** What was last put per certificate key (listener + fingerprint): its material hash. */
  readonly #sent = new Map<string, string>();
  /** Listener + material the proxy refused, with its reason; not sent again until the files change. */
  readonly #refused = new Map<string, string>();
  /** Per pair: the refusal that applies to its current certificate (for status). */
  readonly proxyErrors = new Map<string, { reason: string; at: number }>();
  /** Per pair and listener: the last certificate the proxy took, served while a newer one is refused. */
  readonly #accepted = new Map<string, GoodCert>();
  #https: string[] = [];
  #last: LastSync | undefined;
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  #lastReport = '';
  #closed = false;

  constructor(view: PkiView) {
    this.#v = view;
  }

  /** The proxy's HTTPS listeners, as of the last sync. */
  get httpsListeners(): string[] {
    return this.#https;
  }

  get lastSync(): LastSync | undefined {
    return this.#last;
  }

  /** Possibly a new proxy process: certificates it refused are tried again. */
  forgetRefusals(): void {
    this.#refused.clear();
  }

  /** A pair gone for good: nothing of it is kept. */
  forgetPair(key: string): void {
    this.proxyErrors.delete(key);
    for (const k of [...this.#accepted.keys()]) if (k.startsWith(`${key}\n`)) this.#accepted.delete(k);
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** Connects, retrying until the proxy is there and redialing after every loss; syncs on each connection. */
  connect(): void {
    const client = CommandClient.open(this.#v.opts.socketPath, {
      timeoutMs: 5_000,
      requestTimeoutMs: 60_000,
      reconnect: { initialDelayMs: 100, maxDelayMs: 5_000 },
    });
    this.#client = client;
    void this.#consumeEvents(client);
    // A proxy that is not up yet is normal at boot: one warning, then the client keeps dialing.
    client.whenConnected(AbortSignal.timeout(UNREACHABLE_WARN_MS)).catch(() => {
      if (!this.#closed && !client.connected)
        this.#v.log.warn({ command_socket: this.#v.opts.socketPath }, 'proxy unreachable; retrying');
    });
  }

  /**
   * No sync starts and no proxy event is acted on after this. Apart from close()
   * so the connector can stop the sync at once and still let a running scan use
   * the client (its status report) before close() drops it.
   */
  stop(): void {
    this.#closed = true;
    clearTimeout(this.#foreignTimer);
    clearTimeout(this.#eventsRetry);
  }

  /** Resolves once the running sync ends and the connection is closed. */
  async close(): Promise<void> {
    this.stop();
    await this.#syncing?.catch(() => {});
    await this.#client?.close();
    this.#client = undefined;
  }

  async #consumeEvents(client: CommandClient): Promise<void> {
    const v = this.#v;
    try {
      for await (const ev of client.events()) {
        if (this.#closed) return;
        switch (ev.type) {
          case 'reconnected':
            // The first connection, or possibly a new proxy process: what it holds
            // is re-read, refusals retried.
            v.metrics.connected.set(1);
            this.forgetRefusals();
            if (this.#everConnected)
              v.log.info({ attempts: ev.attempts }, 'reconnected to the proxy; resyncing');
            else v.log.info({ command_socket: v.opts.socketPath }, 'connected to the proxy');
            this.#everConnected = true;
            void this.request();
            break;
          case 'disconnected':
            v.metrics.connected.set(0);
            v.log.warn({ reason: ev.reason, will_reconnect: ev.willReconnect }, 'lost the proxy');
            break;
          case 'change_applied':
            if (ev.source !== v.opts.source) this.#foreignChange();
            break;
          default:
            break;
        }
      }
    } catch (err) {
      v.log.warn({ err: (err as Error).message }, 'event stream ended');
    }
    // Ended while the client lives (the proxy refused the subscription): subscribe again, not in a spin.
    if (!this.#closed) {
      this.#eventsRetry = setTimeout(() => void this.#consumeEvents(client), EVENTS_RETRY_MS);
    }
  }

  #foreignChange(): void {
    if (this.#foreignTimer) return;
    this.#foreignTimer = setTimeout(() => {
      this.#foreignTimer = undefined;
      void this.request();
    }, FOREIGN_CHANGE_DELAY_MS);
  }

  /** Reconcile with the proxy soon (single flight; coalesces). */
  request(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#syncing) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    const run = async () => {
      do {
        this.#syncAgain = false;
        await this.#syncOnce();
      } while (this.#syncAgain && !this.#closed);
    };
    this.#syncing = run().finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  async #syncOnce(): Promise<void> {
    const client = this.#client;
    if (!client?.connected) return;
    const call: ProxyCall = (type, body = {}) => client.request(type, body);
    const started = Date.now();
    try {
      const { puts, deletes } = await this.#reconcile(call);
      this.#last = { at: Date.now(), ok: true, puts, deletes };
      await this.#report(call);
      this.#v.metrics.syncs.inc({ result: 'ok' });
      this.#v.metrics.lastSync.set(Date.now() / 1000);
      if (puts + deletes > 0) {
        this.#v.log.info({ puts, deletes, ms: Date.now() - started }, 'proxy certificates updated');
      }
    } catch (err) {
      const message =
        err instanceof CommandError
          ? `${err.code}: ${err.message}`
          : err instanceof Error
            ? err.message
            : String(err);
      this.#last = { at: Date.now(), ok: false, error: clip(message), puts: 0, deletes: 0 };
      this.#v.metrics.syncs.inc({ result: 'error' });
      // A transport failure resolves itself on reconnect (which resyncs); anything else
      // is retried at the next rescan.
      this.#v.log[err instanceof CommandTransportError ? 'info' : 'error'](
        { err: clip(message) },
        'reconcile with the proxy failed',
      );
    }
  }

  /**
   * Tells the proxy how the pairs stand, so `kakehi ctl connectors` shows an
   * invalid or refused pair where operators already look. Best effort: a proxy
   * that does not take it changes nothing here.
   */
  async #report(call: ProxyCall): Promise<void> {
    const body = this.#v.reportBody();
    this.#lastReport = JSON.stringify(body);
    try {
      await call('report_connector_status', { ...body, pid: process.pid });
    } catch (err) {
      this.#lastReport = '';
      this.#v.log.debug(
        { err: clip(err instanceof Error ? err.message : String(err)) },
        'status report not taken',
      );
    }
  }

  /** After a scan: report at once when the problems changed, without waiting for a sync. */
  reportIfChanged(): void {
    const client = this.#client;
    if (!client?.connected || JSON.stringify(this.#v.reportBody()) === this.#lastReport) return;
    void this.#report((type, body = {}) => client.request(type, body));
  }

  #desired(): DesiredPair[] {
    const https = new Set(this.#https);
    const out: DesiredPair[] = [];
    for (const s of this.#v.dirStatus) s.notes = [];
    for (const t of this.#v.settler.serving()) {
      const info = this.#v.pairs.get(t.key);
      if (!info) continue;
      // Listener → whether a directory that targets it makes this pair its default.
      const listeners = new Map<string, boolean>();
      const target = (l: string, isDefault: boolean) =>
        listeners.set(l, listeners.get(l) === true || isDefault);
      for (const idx of info.dirs) {
        const dir = this.#v.opts.directories[idx];
        if (!dir) continue;
        const isDefault = dir.default === true;
        if (dir.listeners === undefined) for (const l of https) target(l, isDefault);
        else {
          for (const l of dir.listeners) {
            if (https.has(l)) target(l, isDefault);
            else {
              const s = this.#v.dirStatus[idx] as DirectoryStatus;
              const note = `listener ${l} is not an HTTPS listener of the proxy (yet)`;
              if (!s.notes.includes(note)) s.notes.push(note);
            }
          }
        }
      }
      const good = t.good as GoodCert;
      for (const [listener, isDefault] of listeners) {
        let cert: GoodCert | undefined = good;
        if (this.#refused.has(`${listener} ${good.materialHash}`))
          cert = this.#accepted.get(`${t.key}\n${listener}`);
        if (!cert || this.#refused.has(`${listener} ${cert.materialHash}`)) continue;
        out.push({
          pairKey: t.key,
          listeners: [listener],
          fingerprint: cert.facts.fingerprint,
          materialHash: cert.materialHash,
          certificate: cert.certificate,
          chain: cert.chain,
          key: cert.key,
          default: isDefault,
          chainFingerprints: cert.facts.chain_fingerprints,
        });
      }
    }
    return out;
  }

  async #reconcile(call: ProxyCall): Promise<{ puts: number; deletes: number }> {
    let puts = 0;
    let deletes = 0;
    for (let round = 0; round < MAX_SYNC_ROUNDS; round++) {
      const { listeners } = await call('list_listeners');
      this.#https = listeners.filter((l) => l.protocol === 'https').map((l) => l.address);
      // A certificate that no longer parses is listed as null: there is nothing to plan with it.
      const certificates = (await call('list_certificates')).certificates.filter(
        (c): c is HeldCertificate & CertificateSummary => c != null,
      );
      const desired = this.#desired();
      // Pairs that are there but have given nothing to serve since this process
      // started (still settling, half written, invalid): the certificate a previous
      // run put for them stays until they are read.
      const unreadable = new Set<string>();
      for (const t of this.#v.settler.all()) {
        if (!t.good && t.state !== 'ignored' && t.goneSince === undefined) unreadable.add(t.key);
      }
      const plan = planChanges(desired, certificates, this.#sent, this.#v.opts.source, unreadable);
      for (const k of plan.kept) {
        this.#v.log.debug(k, 'kept the certificate of a pair that cannot be read now');
      }
      this.#v.metrics.certificates.set(plan.wanted.size);
      for (const h of plan.heldElsewhere) {
        this.#v.log.debug(h, 'certificate already held by another source; left alone');
      }
      const batches = batchChanges(plan, MAX_TRANSACTION_BYTES);
      let refusedSome = false;
      for (const batch of batches) {
        const outcome = await this.#sendBatch(call, batch.changes, (i) => ({
          pairs: plan.putPairs[batch.start + i] ?? [],
          hash: plan.putHashes[batch.start + i] ?? '',
        }));
        puts += outcome.puts;
        deletes += outcome.deletes;
        if (outcome.refused) {
          refusedSome = true;
          break;
        }
      }
      if (!refusedSome) {
        // Everything the files want is now held: remember what was sent and accepted.
        this.#sent.clear();
        for (const [k, hash] of plan.wanted) this.#sent.set(k, hash);
        for (const d of desired) {
          const t = this.#v.settler.get(d.pairKey);
          const listener = d.listeners[0] as string;
          if (t?.good && t.good.materialHash === d.materialHash) {
            this.#accepted.set(`${d.pairKey}\n${listener}`, t.good);
            this.proxyErrors.delete(d.pairKey);
          }
        }
        // Forget refusals for material no pair holds any more (bounded memory).
        const live = new Set([...this.#v.settler.serving()].map((t) => (t.good as GoodCert).materialHash));
        for (const k of [...this.#refused.keys()])
          if (!live.has(k.split(' ')[1] ?? '')) this.#refused.delete(k);
        return { puts, deletes };
      }
    }
    throw new Error(`the proxy kept refusing changes after ${MAX_SYNC_ROUNDS} rounds`);
  }

  /**
   * Sends one transaction. When the proxy refuses it, the puts it names are marked
   * refused (their pairs fall back to the certificate the proxy last took) and the
   * caller plans again; nothing else of a refused transaction was applied.
   */
  async #sendBatch(
    call: ProxyCall,
    changes: CertificateChange[],
    putOf: (i: number) => { pairs: string[]; hash: string },
  ): Promise<{ puts: number; deletes: number; refused: boolean }> {
    try {
      // A certificate deleted meanwhile (by an operator, a restart) is what the files want anyway.
      const sent = changes.map((c) => (c.op === 'delete_certificate' ? { ...c, if_exists: true } : c));
      await call('transaction', { source: this.#v.opts.source, changes: sent });
      const puts = changes.filter((c) => c.op === 'put_certificate').length;
      this.#v.metrics.changes.inc({ op: 'put_certificate' }, puts);
      this.#v.metrics.changes.inc({ op: 'delete_certificate' }, changes.length - puts);
      return { puts, deletes: changes.length - puts, refused: false };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      let named = [...rejectedIndexes(err.issues)].filter((i) => i < changes.length);
      if (named.length === 0 && changes.length === 1) named = [0];
      if (named.length === 0) {
        // The proxy did not say which: try the puts one by one to find out.
        let puts = 0;
        for (let i = 0; i < changes.length; i++) {
          const c = changes[i] as CertificateChange;
          if (c.op !== 'put_certificate') continue;
          const one = await this.#sendBatch(call, [c], () => putOf(i));
          puts += one.puts;
        }
        return { puts, deletes: 0, refused: true };
      }
      for (const i of named) {
        const c = changes[i] as CertificateChange;
        const reasons = err.issues
          .filter((x) => changes.length === 1 || x.path.startsWith(`changes[${i}]`))
          .map((x) => `${x.path}: ${x.reason}`)
          .join('; ');
        const reason = clip(reasons || `${err.code}: ${err.message}`);
        if (c.op === 'put_certificate') {
          const { pairs, hash } = putOf(i);
          this.#refused.set(`${c.certificate.listener} ${hash}`, reason);
          for (const pair of pairs) this.proxyErrors.set(pair, { reason, at: Date.now() });
          this.#v.metrics.invalid.inc({ by: 'proxy' });
          this.#v.log.warn(
            { pairs, listener: c.certificate.listener, reason },
            'the proxy refused a certificate; the previous one (if any) keeps serving',
          );
        } else {
          this.#v.log.warn(
            { listener: c.listener, fingerprint: c.fingerprint, reason },
            'the proxy refused a certificate deletion',
          );
          // A deletion the proxy refuses is most likely already done; stop asking.
          return { puts: 0, deletes: 0, refused: false };
        }
      }
      return { puts: 0, deletes: 0, refused: true };
    }
  }
}
