// `kakehi run` in the main process: resumes a saved state, starts the workers
// and the command socket, and turns signals into drains and reloads.

import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import type { Config } from '../config/load-config.js';
import type { Logger } from '../log/logger.js';
import { changeKey } from '../state/change.js';
import { loadStateFile, mergeSavedState } from '../state/state-file.js';
import { CommandServer } from './command/command-server.js';
import { createRequestHandler } from './command/request-handlers.js';
import { Supervisor } from './supervisor.js';

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

export async function runMain(
  config: Config,
  configPath: string | undefined,
  log: Logger,
  entry: string,
): Promise<void> {
  const sup = new Supervisor(resumeState(config, log), configPath, log);
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
    throw err;
  }
  server = new CommandServer(
    config.settings.commandSocket,
    config.settings.commandSocketMode,
    createRequestHandler(sup, (hard) => void stop(hard, hard ? 'hard_stop' : 'soft_stop')),
    log,
  );
  try {
    await server.listen();
  } catch (err) {
    await sup.stop(true);
    throw err;
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
