// The PKI connector: scans and watches directories, reads settled pairs, and keeps
// the proxy's certificates of its source ('pki' by default) equal to them over the
// command socket. The pure decisions live elsewhere (layouts, settle, reconcile,
// expiry); the connection and the sync with the proxy in proxy-sync.ts, what
// status shows in status.ts; what may have changed on disk is told by
// watching.ts. This file is the loop between them: scan, settle, read, then ask
// for a sync.

import type { Logger } from '../../src/log/logger.js';
import { ExpiryWatch } from './expiry.js';
import { PAIR_STATES, PkiMetrics } from './metrics.js';
import type { PkiOptions } from './options.js';
import { ProxySync } from './proxy-sync.js';
import { type GoodCert, type Reading, readPair } from './reader.js';
import { scanRoot, signatureOf } from './scan.js';
import { Settler } from './settle.js';
import {
  clip,
  type DirectoryStatus,
  directoryStatuses,
  healthOf,
  type PairInfo,
  pkiStatus,
  reportBody,
} from './status.js';
import { Watching } from './watching.js';

/** Pairs read at once: enough to load thousands quickly, few enough to bound open files. */
const READ_CONCURRENCY = 16;
/** Watch events arrive in bursts (a certbot renewal touches four links); one scan per burst. */
const EVENT_DEBOUNCE_MS = 50;

export class PkiConnector {
  #opts: PkiOptions;
  readonly metrics = new PkiMetrics();
  readonly #log: Logger;
  readonly #settler: Settler;
  #expiry: ExpiryWatch;
  readonly #pairs = new Map<string, PairInfo>();
  #dirStatus: DirectoryStatus[];
  /** Connected after the first scan: a sync before it would withdraw every certificate. */
  readonly #sync: ProxySync;
  #lastScanAt = 0;
  #scanning: Promise<void> | undefined;
  #scanAgain = false;
  /** A start or periodic rescan asked for a reconcile even if nothing changed. */
  #scanForcesSync = false;
  #wakeTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  readonly #watching: Watching;
  #closed = false;
  #maxPairsWarned = false;

  constructor(opts: PkiOptions, log: Logger) {
    this.#opts = opts;
    this.#log = log;
    this.#settler = new Settler(opts.settleMs);
    this.#expiry = new ExpiryWatch(opts.expiryWarningDays);
    this.#dirStatus = directoryStatuses(opts);
    this.metrics.connected.set(0);
    const connector = this;
    this.#sync = new ProxySync({
      get opts() {
        return connector.opts;
      },
      pairs: this.#pairs,
      settler: this.#settler,
      get dirStatus() {
        return connector.#dirStatus;
      },
      metrics: this.metrics,
      log,
      reportBody: () => reportBody(this.status(), this.opts.source),
    });
    this.#watching = new Watching({
      pairs: this.#pairs,
      trackedSignature: (key) => this.#settler.get(key)?.signature,
      scanPending: () => this.#scanning !== undefined || this.#debounceTimer !== undefined,
      changed: () => this.#scanSoon(),
      filesMoved: (pairs) => {
        this.metrics.missedChanges.inc(pairs.length);
        this.#log.info({ pairs: pairs.length }, 'files changed without a watch event; scanning');
        void this.scan('check');
      },
      rescan: (reason) => void this.scan(reason),
      log,
    });
  }

  get opts(): PkiOptions {
    return this.#opts;
  }

  /**
   * Takes new settings (a SIGHUP reload) and keeps everything it knows: the pairs,
   * their last good certificates (so an invalid or half-written pair still keeps
   * its certificate), and what the proxy took. Directories are watched anew and
   * scanned at once; the certificates of a directory no longer listed are withdrawn
   * at the reconcile that follows (a settings change is deliberate, unlike a file
   * that flickers). The socket, the source name and the HTTP address are not
   * changed here (see main.ts).
   */
  reconfigure(next: PkiOptions): void {
    if (this.#closed) return;
    const thresholdsChanged = next.expiryWarningDays.join(',') !== this.#opts.expiryWarningDays.join(',');
    // Pairs name their directories by index: renumber them for the new list (by
    // path), so a sync before the next scan targets the right listeners.
    const newIndexes = new Map<string, number[]>();
    next.directories.forEach((d, i) => {
      newIndexes.set(d.path, [...(newIndexes.get(d.path) ?? []), i]);
    });
    for (const info of this.#pairs.values()) {
      const paths = [...info.dirs].map((i) => this.#opts.directories[i]?.path);
      info.dirs = new Set(paths.flatMap((p) => (p === undefined ? [] : (newIndexes.get(p) ?? []))));
    }
    this.#opts = next;
    this.#settler.settleMs = next.settleMs;
    if (thresholdsChanged) this.#expiry = new ExpiryWatch(next.expiryWarningDays);
    this.#dirStatus = directoryStatuses(next);
    this.#watching.stop();
    this.#maxPairsWarned = false;
    void this.scan('rescan').then(() => {
      if (this.#closed || this.#opts !== next) return;
      void this.#startWatching();
    });
  }

  get connected(): boolean {
    return this.#sync.connected;
  }

  /** Scans once, then watches, rescans and checks periodically and connects (retrying) to the proxy. */
  async start(): Promise<void> {
    await this.scan('start');
    await this.#startWatching();
    if (this.#closed) return;
    // A file written between the first scan and the watches being in place made no
    // event: one more scan, now that any later change will make one.
    if (this.opts.watch) await this.scan('watch');
    this.#sync.connect();
  }

  /** Watches the directories readable at the last scan; the others are retried until they are. */
  #startWatching(): Promise<void> {
    return this.#watching.start({
      paths: this.opts.directories
        .map((d) => d.path)
        .filter((_, i) => this.#dirStatus[i]?.error === undefined),
      watch: this.opts.watch,
      rescanIntervalMs: this.opts.rescanIntervalMs,
      checkIntervalMs: this.opts.checkIntervalMs,
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#wakeTimer);
    clearTimeout(this.#debounceTimer);
    this.#sync.stop();
    await this.#watching.close();
    await this.#scanning?.catch(() => {});
    await this.#sync.close();
  }

  // ---- scanning -----------------------------------------------------------

  #scanSoon(): void {
    if (this.#closed || this.#debounceTimer) return;
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      void this.scan('watch');
    }, EVENT_DEBOUNCE_MS);
  }

  /** One scan (single flight: a request during a scan runs one more after it). */
  scan(reason: 'start' | 'watch' | 'rescan' | 'wake' | 'rescan-missing' | 'check'): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#scanning) {
      // The scan after this one reconciles if any request asked for it.
      if (reason === 'start' || reason === 'rescan') this.#scanForcesSync = true;
      this.#scanAgain = true;
      return this.#scanning;
    }
    if (reason === 'start' || reason === 'rescan') this.#scanForcesSync = true;
    const run = async () => {
      do {
        this.#scanAgain = false;
        await this.#scanOnce(reason);
      } while (this.#scanAgain && !this.#closed);
    };
    this.#scanning = run()
      .catch((err) => this.#log.error({ err }, 'scan failed'))
      .finally(() => {
        this.#scanning = undefined;
      });
    return this.#scanning;
  }

  async #scanOnce(reason: string): Promise<void> {
    this.metrics.scans.inc();
    const maxEntries = this.opts.maxPairs * 8;
    const results = await Promise.all(this.opts.directories.map((d) => scanRoot(d.path, maxEntries)));
    const found = new Map<string, PairInfo>();
    results.forEach((res, idx) => {
      const status = this.#dirStatus[idx] as DirectoryStatus;
      status.error = res.error;
      status.unpaired = res.unpaired.slice(0, 100);
      status.truncated = res.truncated;
      status.pairs = res.pairs.length;
      const keepUnder: string[] = res.unlistable.map((d) => `${res.root}/${d}/`);
      // A root that exists but cannot be listed right now (permissions, I/O) hides its
      // pairs; that is not a deletion, so they keep their last signature.
      if (res.error !== undefined && res.error !== 'ENOENT') keepUnder.push(`${res.root}/`);
      for (const p of res.pairs) {
        const prev = found.get(p.pairKey);
        if (prev) prev.dirs.add(idx);
        else found.set(p.pairKey, { ...p, dirs: new Set([idx]) });
      }
      for (const prefix of keepUnder) {
        for (const [key, info] of this.#pairs) {
          if (key.startsWith(prefix) && !found.has(key)) found.set(key, info);
        }
      }
    });
    this.#watching.rootsScanned(results.map((r) => ({ root: r.root, ok: r.error === undefined })));
    if (found.size > this.opts.maxPairs) {
      if (!this.#maxPairsWarned) {
        this.#log.error(
          { found: found.size, max_pairs: this.opts.maxPairs },
          'more pairs than --max-pairs; the rest are ignored',
        );
        this.#maxPairsWarned = true;
      }
      const keep = [...found.keys()].sort().slice(0, this.opts.maxPairs);
      const kept = new Set(keep);
      for (const k of [...found.keys()]) if (!kept.has(k)) found.delete(k);
    }

    const now = Date.now();
    this.#lastScanAt = now;
    const present = new Map<string, { signature: string; modifiedAt: number }>();
    for (const [key, p] of found) {
      const known = this.#pairs.get(key);
      // Carried-over pairs (unlistable directory) keep the signature they had.
      const sig = known && p === known ? (this.#settler.get(key)?.signature ?? p.signature) : p.signature;
      present.set(key, { signature: sig, modifiedAt: p.modifiedAt });
      this.#pairs.set(key, p);
    }
    this.#settler.observe(present, now);
    let servingChanged = false;
    for (const key of this.#settler.expire(now)) {
      const info = this.#pairs.get(key);
      this.#pairs.delete(key);
      this.#sync.forgetPair(key);
      servingChanged = true;
      this.#log.info({ pair: key, layout: info?.layout }, 'pair gone past the settle window; removing');
    }
    for (const [key] of this.#pairs) if (!found.has(key) && !this.#settler.get(key)) this.#pairs.delete(key);

    const due = this.#settler.due(now);
    for (let i = 0; i < due.length; i += READ_CONCURRENCY) {
      const slice = due.slice(i, i + READ_CONCURRENCY);
      const changed = await Promise.all(slice.map((key) => this.#readOne(key)));
      if (changed.some(Boolean)) servingChanged = true;
    }

    this.#updateGauges();
    this.#checkExpiry();
    this.#sync.reportIfChanged();
    this.#scheduleWake();
    this.#log.debug({ reason, pairs: this.#pairs.size, read: due.length }, 'scan done');
    if (servingChanged || this.#scanForcesSync) {
      this.#scanForcesSync = false;
      this.requestSync();
    }
  }

  /** Reads one due pair; true when the certificate it serves changed. */
  async #readOne(key: string): Promise<boolean> {
    const info = this.#pairs.get(key);
    const tracked = this.#settler.get(key);
    if (!info || !tracked) return false;
    const signature = tracked.signature;
    const before = tracked.good?.materialHash;
    const previousState = tracked.state;
    let reading: Reading;
    try {
      reading = await readPair(info.root, info);
    } catch (err) {
      // Not expected (readPair reports file errors itself); never let one pair stop a scan.
      reading = { kind: 'unreadable', reason: `reading failed: ${(err as Error).message}` };
    }
    if (reading.kind === 'invalid' && (await signatureOf(info.root, info)).signature !== signature) {
      // The files moved while being read (a key read before its new certificate
      // landed): not invalid, just early. The next scan sees the new signature.
      this.#scanSoon();
      return false;
    }
    if (this.#settler.record(key, signature, reading, Date.now()) === 'stale') return false;
    const fields = { pair: key, layout: info.layout };
    switch (reading.kind) {
      case 'ok': {
        const f = reading.cert.facts;
        if (before !== reading.cert.materialHash) {
          this.#log.info(
            {
              ...fields,
              fingerprint: f.fingerprint,
              names: f.names,
              serial: f.serial,
              not_after: f.not_after,
              replaces: before === undefined ? undefined : 'previous certificate of this pair',
            },
            before === undefined ? 'certificate found' : 'certificate changed',
          );
        }
        return before !== reading.cert.materialHash;
      }
      case 'invalid':
        this.metrics.invalid.inc({ by: 'connector' });
        this.#log.warn(
          { ...fields, reason: clip(reading.reason), still_serving: tracked.good?.facts.fingerprint ?? null },
          'invalid pair; the previous good certificate (if any) keeps serving',
        );
        return false;
      case 'ignored':
        if (previousState !== 'ignored')
          this.#log.info({ ...fields, reason: reading.reason }, 'not a pair; ignored');
        return false;
      case 'incomplete':
      case 'unreadable':
        this.#log[previousState === reading.kind ? 'debug' : 'info'](
          { ...fields, reason: reading.reason, still_serving: tracked.good?.facts.fingerprint ?? null },
          reading.kind === 'incomplete' ? 'pair not finished; waiting' : 'pair unreadable for now; waiting',
        );
        return false;
    }
  }

  #scheduleWake(): void {
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    const now = Date.now();
    const at = this.#settler.nextWake(now);
    if (at === undefined || this.#closed) return;
    this.#wakeTimer = setTimeout(
      () => {
        this.#wakeTimer = undefined;
        void this.scan('wake');
      },
      Math.max(10, at - now + 5),
    );
  }

  #updateGauges(): void {
    const counts = new Map<string, number>(PAIR_STATES.map((s) => [s, 0]));
    this.metrics.notAfter.reset();
    for (const t of this.#settler.all()) {
      counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
      if (t.good) {
        this.metrics.notAfter.set(
          { pair: t.key, name: t.good.facts.names[0] ?? '' },
          Math.floor(Date.parse(t.good.facts.not_after) / 1000),
        );
      }
    }
    for (const [state, n] of counts) this.metrics.pairs.set({ state }, n);
  }

  #checkExpiry(): void {
    const current = this.#settler.serving().map((t) => ({
      fingerprint: (t.good as GoodCert).facts.fingerprint,
      pairKey: t.key,
      names: (t.good as GoodCert).facts.names,
      not_after: (t.good as GoodCert).facts.not_after,
    }));
    for (const w of this.#expiry.check(current, Date.now())) {
      this.metrics.expiryWarnings.inc({ threshold_days: String(w.threshold_days) });
      this.#log.warn(
        {
          pair: w.pairKey,
          fingerprint: w.fingerprint,
          names: w.names,
          not_after: w.not_after,
          days_left: w.days_left,
          threshold_days: w.threshold_days,
        },
        w.expired ? 'certificate expired' : `certificate expires within ${w.threshold_days} days`,
      );
    }
  }

  // ---- status -------------------------------------------------------------

  get healthy(): { ok: boolean; reason: string } {
    return healthOf(this.connected, this.#sync.lastSync);
  }

  status(): Record<string, unknown> {
    return pkiStatus({
      opts: this.opts,
      settler: this.#settler,
      pairs: this.#pairs,
      dirStatus: this.#dirStatus,
      connected: this.connected,
      lastScanAt: this.#lastScanAt,
      sync: this.#sync,
    });
  }

  /** Reconcile with the proxy soon (single flight; coalesces). */
  requestSync(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#sync.request();
  }
}
