// How the PKI connector learns that something on disk may have changed: the
// inotify watch (chokidar), the periodic rescan, the stat check of known pairs'
// files, and the retry of roots that do not exist yet. Each only says so to the
// connector, which decides what to scan and when; none of them reads a pair.

import { type FSWatcher, watch } from 'chokidar';
import type { Logger } from '../../src/log/logger.js';
import { MAX_DEPTH, signatureOf } from './scan.js';
import type { PairInfo } from './status.js';

/** Pairs stat'ed at once by the periodic check (each is 2-3 stats). */
const CHECK_BATCH = 64;
/** The check's period grows by this per known pair (1,000 pairs: 3 s). */
const CHECK_MS_PER_PAIR = 3;
/** How soon a missing or unlistable root is listed again. */
const MISSING_RETRY_MS = 1_000;
// A watcher not ready by then still works; start() stops waiting for it.
const READY_WAIT_MS = 10_000;

/** What watching needs from the connector, and what it tells it. */
export interface WatchingHost {
  /** The pairs known now; read afresh by every check. */
  readonly pairs: ReadonlyMap<string, PairInfo>;
  /** The signature the settle window holds for a pair, if it tracks it. */
  trackedSignature(key: string): string | undefined;
  /** A scan is running or due, so whatever moved will be seen without asking. */
  scanPending(): boolean;
  /** A watch event under one of the directories. */
  changed(): void;
  /** Pairs whose files moved without a watch event (each told once). */
  filesMoved(pairs: string[]): void;
  /** Time for a scan: the periodic one, or a missing root to look at again. */
  rescan(reason: 'rescan' | 'rescan-missing'): void;
  readonly log: Logger;
}

export interface WatchSettings {
  /** Directories to watch now (those readable at the last scan). */
  paths: string[];
  /** false (--no-watch): the rescan and the stat check only. */
  watch: boolean;
  rescanIntervalMs: number;
  /** 0 turns the stat check off. */
  checkIntervalMs: number;
}

export class Watching {
  readonly #host: WatchingHost;
  #watcher: FSWatcher | undefined;
  /** Roots missing or unlistable at the last scan: looked at again soon, and watched once they exist. */
  readonly #unwatched = new Set<string>();
  #missingTimer: NodeJS.Timeout | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #checkEvery = 0;
  #checkChain = 0;
  #checking = false;
  /**
   * Per pair: a signature a stat check found different from the tracked one, and
   * whether it was acted on. A difference is acted on when a second check still
   * finds it (the watch event had its chance), and only once.
   */
  readonly #checkFlagged = new Map<string, { signature: string; acted: boolean }>();
  #closed = false;

  constructor(host: WatchingHost) {
    this.#host = host;
  }

  /** Resolves once the watches are in place (chokidar's 'ready'), or after READY_WAIT_MS at most. */
  start(s: WatchSettings): Promise<void> {
    let armed: Promise<void> = Promise.resolve();
    if (s.watch) {
      const watcher = watch(s.paths, {
        followSymlinks: true,
        ignoreInitial: true,
        depth: MAX_DEPTH,
        ignored: (p: string) => /(^|[/\\])\.[^/\\]/.test(p),
      });
      this.#watcher = watcher;
      watcher.on('all', () => this.#host.changed());
      watcher.on('error', (err) => this.#host.log.warn({ err }, 'watcher error; periodic rescans continue'));
      armed = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, READY_WAIT_MS);
        watcher.once('ready', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.#rescanTimer = setInterval(() => this.#host.rescan('rescan'), s.rescanIntervalMs);
    this.#rescanTimer.unref?.();
    this.#checkEvery = s.checkIntervalMs;
    this.#scheduleCheck();
    return armed;
  }

  /**
   * For new settings: the next start() watches the new list. Roots already known
   * missing are forgotten so the scan before it warns about them again; a retry
   * already due still fires (a harmless scan).
   */
  stop(): void {
    this.#stopPeriodic();
    void this.#watcher?.close();
    this.#watcher = undefined;
    this.#unwatched.clear();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#missingTimer);
    this.#stopPeriodic();
    await this.#watcher?.close();
  }

  /**
   * Told after every scan which roots could be listed. A root that does not exist
   * yet (certbot creates live/ with the first certificate) cannot be watched: it is
   * listed again every second until it appears, then watched.
   */
  rootsScanned(roots: { root: string; ok: boolean }[]): void {
    for (const { root, ok } of roots) {
      if (!ok) {
        if (!this.#unwatched.has(root))
          this.#host.log.warn({ directory: root }, 'directory not readable; looking again every second');
        this.#unwatched.add(root);
      } else if (this.#unwatched.delete(root)) {
        this.#host.log.info({ directory: root }, 'directory readable now; watching it');
        this.#watcher?.add(root);
      }
    }
    if (this.#unwatched.size > 0 && !this.#missingTimer && !this.#closed) {
      this.#missingTimer = setTimeout(() => {
        this.#missingTimer = undefined;
        this.#host.rescan('rescan-missing');
      }, MISSING_RETRY_MS);
    }
  }

  /**
   * The next stat check: after --check-interval-ms, or after CHECK_MS_PER_PAIR per
   * known pair when that is longer, so that the check stays under 1% of a core
   * however many pairs there are (a pass costs about 25 µs of CPU per pair,
   * measured with bench/pki-idle.ts).
   */
  #scheduleCheck(): void {
    if (this.#checkEvery === 0 || this.#closed) return;
    // A check still running when the timers are stopped (a reload) must not start a second chain.
    const chain = this.#checkChain;
    const every = Math.max(this.#checkEvery, this.#host.pairs.size * CHECK_MS_PER_PAIR);
    this.#checkTimer = setTimeout(() => {
      void this.#checkKnown().finally(() => {
        if (chain === this.#checkChain) this.#scheduleCheck();
      });
    }, every);
    this.#checkTimer.unref?.();
  }

  #stopPeriodic(): void {
    clearInterval(this.#rescanTimer);
    clearTimeout(this.#checkTimer);
    this.#checkChain++;
    this.#rescanTimer = undefined;
    this.#checkTimer = undefined;
  }

  /**
   * Stats the files of the pairs already known and tells the connector when one
   * moved without a watch event saying so. inotify is blind to a symlink swapped
   * above the watched link (a Kubernetes secret volume swaps `..data`), to writes by
   * another NFS client, and to events lost in a queue overflow; this bounds how long
   * such a change waits (two check periods, then the settle window), at the cost of
   * a few stats per pair.
   */
  async #checkKnown(): Promise<void> {
    const host = this.#host;
    if (this.#closed || this.#checking || host.scanPending()) return;
    this.#checking = true;
    try {
      const keys = [...host.pairs.keys()];
      const moved: string[] = [];
      for (let i = 0; i < keys.length && !this.#closed; i += CHECK_BATCH) {
        const slice = keys.slice(i, i + CHECK_BATCH);
        const sigs = await Promise.all(
          slice.map((k) => {
            const info = host.pairs.get(k);
            return info ? signatureOf(info.root, info).then((x) => x.signature) : Promise.resolve(undefined);
          }),
        );
        slice.forEach((k, j) => {
          const sig = sigs[j];
          const tracked = host.trackedSignature(k);
          if (sig === undefined || tracked === undefined || tracked === sig) {
            this.#checkFlagged.delete(k);
            return;
          }
          const flagged = this.#checkFlagged.get(k);
          if (flagged?.signature !== sig) this.#checkFlagged.set(k, { signature: sig, acted: false });
          else if (!flagged.acted) {
            flagged.acted = true;
            moved.push(k);
          }
        });
      }
      for (const k of this.#checkFlagged.keys()) if (!host.pairs.has(k)) this.#checkFlagged.delete(k);
      // A scan already under way (or due) will see what moved: nothing was missed.
      if (moved.length > 0 && !host.scanPending()) host.filesMoved(moved);
    } catch (err) {
      host.log.warn({ err: (err as Error).message }, 'stat check failed; the next rescan catches up');
    } finally {
      this.#checking = false;
    }
  }
}
