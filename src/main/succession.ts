// Whole-binary upgrade (`ctl upgrade --main`): the running main starts its
// successor from the files now on disk, hands it the listening sockets (IPC
// handles) and the state, moves the command socket to it, then drains its own
// workers and leaves. The successor's half is inheritFromPredecessor(). Any
// failure before the command socket moves stops the successor; the old main
// serves on as if nothing was tried.

import { type ChildProcess, type SendHandle, spawn } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { SUCCESSOR_TIMEOUT_MS } from '../defaults.js';
import { KakehiError } from '../errors.js';
import type { ListeningHandle, TlsSetupMessage } from '../ipc/messages.js';
import type { Logger } from '../log/logger.js';
import type { Change } from '../state/change.js';
import type { ProxyState } from '../state/proxy-state.js';
import { buildState } from '../state/transaction.js';
import type { CommandServer } from './command/command-server.js';
import type { Inheritance, Supervisor } from './supervisor.js';
import { notifySystemd } from './systemd-notify.js';

/** Set in the successor's environment (to the old main's pid): start by taking over. */
const TAKEOVER_ENV = 'KAKEHI_TAKEOVER';
/**
 * For tests: a successor that finds this set exits with it before taking over,
 * the way a broken new version would. Read only in takeover mode.
 */
const TEST_EXIT_ENV = 'KAKEHI_TEST_SUCCESSOR_EXIT';

type ToSuccessor =
  /** One listening socket, as this message's IPC handle. */
  | { t: 'listener'; key: string }
  /** Last of the hand-over: the state with its sources, and the TLS material. */
  | {
      t: 'state';
      generation: number;
      tls: TlsSetupMessage;
      puts: { change: Change; source?: string }[];
      healthDown?: { key: string; reason: string | null }[];
    }
  /** The command socket now leads to the successor: it is the main from here on. */
  | { t: 'commit' };

type FromSuccessor =
  | { t: 'hello' }
  /** Every worker serves; the successor's command socket listens at `socket`, beside the real path. */
  | { t: 'ready'; socket: string }
  /** Told systemd its new main pid; the old main may exit. */
  | { t: 'done' };

export interface MainUpgradeResult {
  pid: number;
  previous_pid: number;
  generation: number;
}

/** Where the successor binds its command socket until the old main moves it over the real path. */
function pendingSocketPath(path: string, pid: number): string {
  return `${path}.${pid}.next`;
}

/**
 * The old main's half. Resolves once the successor serves and the command
 * socket leads to it; then, after the answer is written, drains this main's
 * workers and exits. Throws KKH_UPGRADE_FAILED with the successor stopped.
 */
/** How often a waiting upgrade says it is still going (ctl's --timeout bounds silence, 10 s by default). */
const PROGRESS_EVERY_MS = 3_000;

export function upgradeMain(
  sup: Supervisor,
  server: CommandServer,
  log: Logger,
  progress: (message: string) => void,
): Promise<MainUpgradeResult> {
  return sup.last(async () => {
    const handles = await sup.listeningHandles();
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      // Its own session: it outlives this main. The same stdout and stderr, so
      // its logs go where these went (a terminal, a file, the journal).
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [TAKEOVER_ENV]: String(process.pid) },
    });
    const pid = child.pid ?? 0;
    const pending = pendingSocketPath(server.path, pid);
    log.info({ successor_pid: pid }, 'upgrade --main: successor started');
    progress(`successor started (pid ${pid}), handing over ${handles.size} listening socket(s)`);
    const talk = new SuccessorChannel(child);
    try {
      await talk.next('hello');
      for (const [key, handle] of handles) talk.send({ t: 'listener', key }, handle);
      talk.send({ t: 'state', ...sup.inheritance() });
      progress('successor has the sockets and the state; starting its workers');
      // ctl's deadline bounds silence: say, while the workers start, that it is still going.
      const started = Date.now();
      const beat = setInterval(
        () =>
          progress(`successor still starting its workers (${Math.round((Date.now() - started) / 1000)} s)`),
        PROGRESS_EVERY_MS,
      );
      const ready = await talk.next('ready').finally(() => clearInterval(beat));
      // rename(2) replaces the path in one step: a client connects to the old
      // main or to the new, never to nothing. This main's socket keeps serving
      // the connections it has; unnamed now, it gets no new ones.
      renameSync(ready.socket, server.path);
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(pending, { force: true });
      log.error({ err: (err as Error).message, successor_pid: pid }, 'upgrade --main failed; serving on');
      const why = `the new main did not take over: ${(err as Error).message}`;
      throw new KakehiError('KKH_UPGRADE_FAILED', why, { cause: err });
    } finally {
      for (const h of handles.values()) h.close?.();
    }
    server.handedOver();
    talk.send({ t: 'commit' });
    // Past the rename the successor is the main whatever happens next: a slow
    // systemd notification only delays this main's exit.
    await talk
      .next('done')
      .catch((err: Error) => log.warn({ err: err.message }, 'successor did not confirm'));
    child.unref();
    if (child.connected) child.disconnect();
    log.info({ successor_pid: pid }, 'upgrade --main: handed over; draining the old workers');
    // After this answer is written: every client (connectors too) reconnects and
    // reaches the new main, instead of waiting on one that takes no more changes.
    setImmediate(() => {
      server.endConnections();
      void sup.stop(false).then(() => {
        log.info('old main stopped');
        process.exit(0);
      });
    });
    return { pid, previous_pid: process.pid, generation: sup.generation };
  });
}

/** The old main's end of the IPC channel to its successor, one awaited message at a time. */
class SuccessorChannel {
  readonly #got: FromSuccessor[] = [];
  #wake: (() => void) | undefined;
  #ended: string | undefined;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (m: FromSuccessor) => {
      this.#got.push(m);
      this.#wake?.();
    });
    child.on('error', (err) => this.#end(`it could not be started: ${err.message}`));
    child.on('exit', (code, signal) => this.#end(`it exited (${code ?? signal}) before taking over`));
  }

  #end(why: string): void {
    this.#ended ??= why;
    this.#wake?.();
  }

  send(m: ToSuccessor, handle?: ListeningHandle): void {
    // Node types sendHandle as Socket | Server; a bare TCP handle is what it sends underneath.
    if (this.child.connected) this.child.send(m, handle as unknown as SendHandle, {}, () => {});
  }

  /** The next message, which must be `t`; rejects when the successor is gone or after the timeout. */
  async next<T extends FromSuccessor['t']>(t: T): Promise<Extract<FromSuccessor, { t: T }>> {
    const deadline = Date.now() + SUCCESSOR_TIMEOUT_MS;
    for (;;) {
      const m = this.#got.shift();
      if (m !== undefined) {
        if (m.t !== t) throw new Error(`expected "${t}" from the successor, got "${m.t}"`);
        return m as Extract<FromSuccessor, { t: T }>;
      }
      if (this.#ended !== undefined) throw new Error(this.#ended);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${t}" from it within ${SUCCESSOR_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

/** Closes the channel to the old main (an open one keeps this process alive). */
function letGo(): void {
  if (process.connected) process.disconnect();
}

/** What a successor takes over: the state and what its supervisor inherits. */
export interface Takeover {
  state: ProxyState;
  inheritance: Inheritance;
  /** Where to bind the command socket until the old main moves it over `path`. */
  bindPath(path: string): string;
  /** Reports ready, waits for the old main to move the command socket, and becomes the main. */
  serving(server: CommandServer): Promise<void>;
  /** Start-up failed: lets go of the old main (which then serves on) so this process can exit. */
  abandon(): void;
}

/**
 * The successor's half: undefined unless this process was started by
 * upgradeMain. Waits for the listening sockets and the state.
 */
export async function inheritFromPredecessor(log: Logger): Promise<Takeover | undefined> {
  const from = process.env[TAKEOVER_ENV];
  const send = process.send?.bind(process);
  if (from === undefined || send === undefined) return undefined;
  // Its workers, and a successor of its own, must not see it.
  delete process.env[TAKEOVER_ENV];
  const testExit = process.env[TEST_EXIT_ENV];
  if (testExit !== undefined) process.exit(Number(testExit) || 1);
  log.info({ previous_pid: Number(from) }, 'taking over from the previous main');
  const listeners = new Map<string, ListeningHandle>();
  const received = await new Promise<Extract<ToSuccessor, { t: 'state' }>>((resolve, reject) => {
    const onMessage = (m: ToSuccessor, passed: unknown) => {
      if (m.t === 'listener' && typeof passed === 'object' && passed !== null) listeners.set(m.key, passed);
      if (m.t === 'state') {
        process.off('message', onMessage);
        resolve(m);
      }
    };
    process.on('message', onMessage);
    process.once('disconnect', () => reject(new Error('the previous main went away before handing over')));
    send({ t: 'hello' } satisfies FromSuccessor);
  });
  const built = buildState(
    received.puts.map(({ change, source }) => ({ change, source: source ?? 'config' })),
  );
  if (!built.ok) {
    // The old main admitted every one of these; a refusal is a bug (or an incompatible version).
    letGo();
    throw new Error(
      `the inherited state is refused: ${built.issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`,
    );
  }
  let commandSocket: string | undefined;
  return {
    state: built.state,
    inheritance: {
      generation: received.generation,
      tls: received.tls,
      listeners,
      healthDown: received.healthDown ?? [],
    },
    bindPath: (path) => {
      commandSocket = path;
      return pendingSocketPath(path, process.pid);
    },
    abandon: letGo,
    async serving(server) {
      const committed = new Promise<void>((resolve, reject) => {
        process.on('message', (m: ToSuccessor) => {
          if (m.t === 'commit') resolve();
        });
        process.once('disconnect', () => reject(new Error('the previous main went away before the switch')));
      });
      send({ t: 'ready', socket: server.path } satisfies FromSuccessor);
      await committed;
      if (commandSocket !== undefined) server.movedTo(commandSocket);
      // systemd follows the main pid: this process is the service's main from now on.
      await notifySystemd([`--pid=${process.pid}`], log);
      send({ t: 'done' } satisfies FromSuccessor);
      letGo();
    },
  };
}
