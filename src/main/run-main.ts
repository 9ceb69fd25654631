// `kakehi run` in the main process: resumes a saved state, starts the workers
// and the command socket, and turns signals into drains and reloads.

import cluster from 'node:cluster';
import { chownSync, existsSync } from 'node:fs';
import type { Config } from '../config/load-config.js';
import { checkRunPaths, groupId } from '../config/run-paths.js';
import type { Logger } from '../log/logger.js';
import { changeKey } from '../state/change.js';
import { loadStateFile, mergeSavedState } from '../state/state-file.js';
import { CommandServer } from './command/command-server.js';
import { createRequestHandler } from './command/request-handlers.js';
import { commandSocketError, StartUpError, workerStartError } from './start-up-error.js';
import { inheritFromPredecessor, type MainUpgradeResult, upgradeMain } from './succession.js';
import { Supervisor } from './supervisor.js';
import { notifySystemd } from './systemd-notify.js';

/** The config state plus what the state file holds from other sources (added at runtime). */
function resumeState(config: Config, log: Logger): Config {
  const path = config.settings.stateFile;
  if (path === undefined || !existsSync(path)) return config;
  try {
    const saved = loadStateFile(path);
    // Objects the configuration owns come from the file just read; everything
    // added at runtime (ctl, connectors) comes back with its own source.
    const merged = mergeSavedState(config.state, saved.state, 'resume');
    for (const { change, issues } of merged.dropped) {
      log.warn(
        { path, change: changeKey(change), issues },
        'a saved object no longer fits the configuration; dropped',
      );
    }
    log.info(
      { path, generation: saved.generation, objects: merged.changes.length },
      'resumed the saved state',
    );
    return { ...config, state: merged.state };
  } catch (err) {
    log.error({ err, path }, 'cannot read the state file; starting from the configuration alone');
    return config;
  }
}

/** command_socket_group: connectors running as another user reach a 0660 socket through it. */
function giveSocketToGroup(config: Config, commandSocket: string): void {
  const { commandSocketGroup } = config.settings;
  if (commandSocketGroup === undefined) return;
  const gid = groupId(commandSocketGroup); // checkRunPaths has found it already
  if (gid === undefined) return;
  try {
    chownSync(commandSocket, -1, gid);
  } catch (err) {
    throw new StartUpError(
      [
        {
          path: 'command_socket_group',
          reason: `cannot give ${commandSocket} to group ${commandSocketGroup} (${(err as NodeJS.ErrnoException).code}); run kakehi as a member of that group, or as root`,
        },
      ],
      { cause: err },
    );
  }
}

export async function runMain(
  config: Config,
  configPath: string | undefined,
  log: Logger,
  entry: string,
): Promise<void> {
  // Paths and the group are checked before any worker forks: the operator gets
  // the key to fix instead of a worker dying on its access log.
  const issues = checkRunPaths(config.settings);
  if (issues.length > 0) throw new StartUpError(issues);
  // Started by `ctl upgrade --main`: the state and the sockets come from the old main.
  const takeover = await inheritFromPredecessor(log);
  const sup = new Supervisor(
    takeover === undefined ? resumeState(config, log) : { ...config, state: takeover.state },
    configPath,
    log,
    takeover?.inheritance,
  );
  let stopping = false;
  const stop = async (hard: boolean, why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason: why, drain_timeout_ms: config.settings.drainTimeoutMs }, 'draining');
    sup.once('closed', () => log.info('not accepting new connections'));
    await sup.stop(hard);
    await server?.close();
    log.info('stopped');
    process.exit(0);
  };
  let server: CommandServer | undefined;
  // A stop asked while the workers start (systemd, a quick Ctrl-C) waits for the
  // start to finish and then drains as usual; without a handler this early, Node's
  // default would kill main and leave the workers to notice alone.
  let ready = false;
  let stopAsked: string | undefined;
  const onSignal = (signal: string) => {
    if (ready) return void stop(false, signal);
    stopAsked ??= signal;
    log.info({ signal }, 'stop asked during start-up; stopping once started');
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  try {
    await sup.start(entry);
  } catch (err) {
    await sup.stop(true); // workers that did start must not keep the process alive
    takeover?.abandon();
    throw workerStartError(err, config.state, config.settings.accessLog);
  }
  // A successor listens beside the socket, then the old main renames it over the path.
  const socketPath = takeover?.bindPath(config.settings.commandSocket) ?? config.settings.commandSocket;
  const commandServer: CommandServer = new CommandServer(
    socketPath,
    config.settings.commandSocketMode,
    createRequestHandler(
      sup,
      (hard) => void stop(hard, hard ? 'hard_stop' : 'soft_stop'),
      (progress): Promise<MainUpgradeResult> => upgradeMain(sup, commandServer, log, progress),
    ),
    log,
  );
  server = commandServer;
  try {
    await commandServer.listen();
    giveSocketToGroup(config, socketPath);
    await takeover?.serving(commandServer);
  } catch (err) {
    await sup.stop(true);
    if (takeover !== undefined) {
      // The successor's socket file is its own (path.pid.next); abandon removes it.
      takeover.abandon();
      throw err;
    }
    await commandServer.close();
    throw err instanceof StartUpError ? err : commandSocketError(config.settings.commandSocket, err);
  }
  for (const l of sup.boundListeners()) log.info({ address: l.address, port: l.port }, 'listening');
  log.info(
    {
      source: config.source,
      workers: sup.workerCount,
      command_socket: config.settings.commandSocket,
      generation: sup.generation,
      listeners: sup.state.listeners.size,
      clusters: sup.state.clusters.size,
      backends: sup.state.backends.size,
      frontends: sup.state.frontends.size,
      certificates: sup.state.certificates.size,
    },
    'kakehi ready',
  );
  ready = true;
  void notifySystemd(['--ready', `--pid=${process.pid}`], log);
  if (stopAsked !== undefined) void stop(false, stopAsked);
  // logrotate renames the access log and sends SIGUSR1: every worker opens it again.
  process.on('SIGUSR1', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGUSR1');
    log.info('SIGUSR1: workers reopen the access log');
  });
  process.on('SIGHUP', () => {
    sup.reload(undefined, 'SIGHUP').then(
      (r) => log.info({ generation: r.generation }, 'SIGHUP reload applied'),
      (err: Error & { issues?: unknown }) =>
        log.error(
          { err: err.message, issues: err.issues },
          'SIGHUP reload refused; the running state keeps serving',
        ),
    );
  });
}
