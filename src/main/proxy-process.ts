// Runs the proxy in this process: logs, data plane, listeners, and the signals
// an operator sends (SIGTERM/SIGINT: drain and exit 0).

import type { Config } from '../config/load-config.js';
import { startAccessLog } from '../log/access-log.js';
import { createLogger, type Logger } from '../log/logger.js';
import { listenerKey } from '../model/objects.js';
import { DataPlane } from '../proxy/data-plane.js';
import { HttpListener } from '../proxy/http-listener.js';
import { backendHealth } from '../proxy/request-events.js';

export interface RunningProxy {
  readonly listeners: readonly HttpListener[];
  readonly log: Logger;
  /** Stops accepting, drains in-flight requests, closes. */
  stop(): Promise<void>;
}

export async function startProxy(
  config: Config,
  log: Logger = createLogger(config.settings.logLevel),
): Promise<RunningProxy> {
  const plane = new DataPlane(config.state, (e) => {
    log.warn(
      { event: e.type, cluster: e.cluster, backend: e.backend, address: e.address },
      e.type === 'backend_down' ? 'backend down' : 'backend up',
    );
    if (backendHealth.hasSubscribers) backendHealth.publish(e);
  });
  const access = startAccessLog(config.settings.accessLog);
  const listeners: HttpListener[] = [];
  try {
    for (const spec of config.state.listeners.values()) {
      const l = new HttpListener(spec, listenerKey(spec), plane);
      await l.listen();
      listeners.push(l);
      log.info({ address: spec.address, port: l.port, protocol: spec.protocol }, 'listening');
    }
  } catch (err) {
    for (const l of listeners) await l.drain(0);
    plane.close();
    access.close();
    throw err;
  }
  log.info(
    {
      source: config.source,
      listeners: config.state.listeners.size,
      clusters: config.state.clusters.size,
      backends: config.state.backends.size,
      frontends: config.state.frontends.size,
    },
    'kakehi ready',
  );
  let stopping: Promise<void> | undefined;
  return {
    listeners,
    log,
    stop() {
      stopping ??= (async () => {
        const timeout = config.settings.drainTimeoutMs;
        log.info({ drain_timeout_ms: timeout }, 'draining');
        const cut = (await Promise.all(listeners.map((l) => l.drain(timeout)))).reduce((a, b) => a + b, 0);
        if (cut > 0) log.warn({ connections: cut }, 'drain timeout passed; connections cut');
        plane.close();
        access.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}

/** Installs the signal handlers of a foreground proxy process. */
export function handleSignals(proxy: RunningProxy): void {
  const stop = (signal: string) => {
    proxy.log.info({ signal }, 'stop requested');
    proxy.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        proxy.log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
