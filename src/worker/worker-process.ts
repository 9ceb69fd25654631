// A worker process: receives the snapshot and then each transaction from main,
// serves traffic with them, and acknowledges every generation it reaches. It
// exits when main tells it to drain, or when main goes away.

import type { SendHandle } from 'node:child_process';
import { type FromWorker, isFromWorker, type ListeningHandle, type ToWorker } from '../ipc/messages.js';
import { startAccessLog } from '../log/access-log.js';
import { createLogger } from '../log/logger.js';
import { TlsMetrics } from '../metrics/tls-metrics.js';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { workerConnections } from '../proxy/listening-server.js';
import { emptyState, type ProxyState } from '../state/proxy-state.js';
import { stateOfSnapshot, WORKER_SOURCE } from '../state/snapshot.js';
import { applyChanges } from '../state/transaction.js';
import { logProxyProtocolErrors } from './proxy-protocol-log.js';
import { ProxyRuntime } from './proxy-runtime.js';
import { logBackendTlsErrors, logTlsErrors } from './tls-error-log.js';

function send(m: FromWorker): void {
  // A failed send means main is gone; 'disconnect' (below) ends this worker then.
  if (process.connected) process.send?.(m, undefined, {}, () => {});
}

/** A message carrying a listening socket; the worker keeps its own copy (a bare handle is not closed on send). */
function sendHandle(m: FromWorker, handle: ListeningHandle): void {
  // Node types sendHandle as Socket | Server; a bare TCP handle is what it sends underneath.
  if (process.connected) process.send?.(m, handle as unknown as SendHandle, {}, () => {});
}

export function runWorker(): void {
  let runtime: ProxyRuntime | undefined;
  let generation = 0;
  // Transactions are applied one at a time, in the order main sent them.
  let queue: Promise<void> = Promise.resolve();
  const log = createLogger(process.env['KAKEHI_LOG_LEVEL'] ?? 'info', 'kakehi-worker');
  // Read once: with metrics off nothing subscribes, so the data plane publishes nothing (bench/load).
  const metrics = process.env['KAKEHI_METRICS'] === 'off' ? undefined : new WorkerMetrics().start();
  const tlsMetrics = metrics === undefined ? undefined : new TlsMetrics().start();
  logTlsErrors(log);
  logBackendTlsErrors(log);
  logProxyProtocolErrors(log);

  const handle = async (m: ToWorker): Promise<void> => {
    switch (m.t) {
      case 'init': {
        let state: ProxyState;
        // Inside the try: an access log that cannot be opened is a start failure main
        // reports with its reason, not a worker dying with no word.
        try {
          runtime = new ProxyRuntime(
            emptyState(),
            startAccessLog(m.accessLog, m.accessLogFields),
            log,
            (event) => send({ t: 'health', event }),
            {
              ...(m.tls.selfSigned === undefined ? {} : { selfSigned: m.tls.selfSigned }),
              ticketKeys: Buffer.from(m.tls.ticketKeys, 'base64'),
            },
          );
          workerConnections.setLimit(m.maxConnections);
          for (const [key, h] of adopted) runtime.adopt(key, h);
          runtime.setHealthDown(m.healthDown);
          adopted.clear();
          state = stateOfSnapshot(m.snapshot);
          await runtime.apply(state);
        } catch (err) {
          const e = err as Error & { code?: string };
          send({ t: 'failed', code: e.code ?? 'KKH_INTERNAL', message: e.message });
          process.exitCode = 1;
          process.disconnect?.();
          return;
        }
        generation = m.generation;
        metrics?.syncBackends(state.backends.values());
        metrics?.syncClusters(state.clusters.keys());
        send({ t: 'ready', generation, listeners: runtime.bound() });
        return;
      }
      case 'apply': {
        if (runtime === undefined) throw new Error('apply before init');
        const r = applyChanges(runtime.current, m.changes, WORKER_SOURCE);
        if (!r.ok) {
          send({ t: 'nack', seq: m.seq, message: r.issues.map((i) => `${i.path}: ${i.reason}`).join('; ') });
          return;
        }
        try {
          await runtime.apply(r.state);
        } catch (err) {
          send({ t: 'nack', seq: m.seq, message: (err as Error).message });
          return;
        }
        generation = m.generation;
        metrics?.syncBackends(r.state.backends.values());
        metrics?.syncClusters(r.state.clusters.keys());
        send({ t: 'ack', seq: m.seq, generation, listeners: runtime.bound() });
        return;
      }
      case 'max_connections':
        workerConnections.setLimit(m.max);
        return;
      case 'health_checks':
        runtime?.setHealthDown(m.down);
        return;
      case 'self_signed':
        runtime?.setSelfSigned({ certificate: m.certificate, key: m.key });
        return;
      case 'ticket_keys':
        runtime?.setTicketKeys(Buffer.from(m.keys, 'base64'));
        // In the queue like a change: once answered, no handshake uses the old keys.
        if (m.seq !== undefined) send({ t: 'ticket_keys_set', seq: m.seq });
        return;
      case 'metrics':
        send({
          t: 'metrics',
          seq: m.seq,
          families: [
            ...(metrics?.families(runtime?.requestsInFlight, runtime?.backendsLive()) ?? []),
            ...(tlsMetrics?.families() ?? []),
          ],
        });
        return;
      case 'backends':
        send({ t: 'backends', seq: m.seq, backends: runtime?.backendsLive() ?? [] });
        return;
      case 'send_listener_handles': {
        const handles = runtime?.listeningHandles() ?? [];
        for (const { key, handle } of handles) sendHandle({ t: 'listener_handle', key }, handle);
        send({ t: 'listener_handles_sent', seq: m.seq, keys: handles.map((h) => h.key) });
        return;
      }
      case 'listener_handle':
        return; // taken as it arrives (below), before init
      case 'drain': {
        const draining = runtime ? runtime.drain(m.timeoutMs) : Promise.resolve(0);
        send({ t: 'closed' });
        const cut = await draining;
        if (cut > 0) log.warn({ connections: cut }, 'drain timeout passed; connections cut');
        // Last: every request this worker will ever count has ended (or was cut) by now.
        send({
          t: 'drained',
          cut,
          families: [
            ...(metrics?.families(runtime?.requestsInFlight, runtime?.backendsLive()) ?? []),
            ...(tlsMetrics?.families() ?? []),
          ],
        });
        process.disconnect?.();
        setImmediate(() => process.exit(0));
        return;
      }
    }
  };

  // Handed-over sockets arrive before init, so the init's apply listens on them.
  const adopted = new Map<string, ListeningHandle>();
  process.on('message', (m: unknown, passed: unknown) => {
    if (!isFromWorker(m)) return;
    const msg = m as unknown as ToWorker;
    if (msg.t === 'listener_handle') {
      if (typeof passed === 'object' && passed !== null) adopted.set(msg.key, passed);
      return;
    }
    if (msg.t === 'metrics' || msg.t === 'backends') {
      void handle(msg);
      return;
    }
    queue = queue.then(
      () => handle(msg),
      () => handle(msg),
    );
    queue.catch((err: unknown) => {
      log.fatal({ err }, 'worker failed');
      process.exit(1);
    });
  });
  send({ t: 'hello' });
  // Main is gone (crashed or killed): nobody will tell us to drain, so leave now.
  process.on('disconnect', () => process.exit(0));
  // Signals go to main, which drains workers itself; a worker ignores them so a
  // terminal Ctrl-C does not cut connections before main's drain begins.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  // Main passes an operator's SIGUSR1 on: reopen the access log (logrotate).
  process.on('SIGUSR1', () => {
    runtime?.reopenLogs();
    log.info('access log reopened');
  });
}
