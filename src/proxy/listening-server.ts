// Binding a listener's server, and the native handle handed to a new main:
// the same for every kind of listener (http, https, tcp, tls).

import type { Server, Socket } from 'node:net';
import { KakehiError } from '../errors.js';
import { parseAddress } from '../model/address.js';
import { connectionsRefused, listenerRefused } from './limit-events.js';

/**
 * A listening socket's native handle as it travels over IPC (Node's TCP wrap,
 * which has no public type); close() frees this process's copy of the socket.
 */
export type ListeningHandle = object & { close?: () => void };

/**
 * Binds `address`, or listens on `adopted`: a listening socket a previous main
 * handed over (ctl upgrade --main), already bound to that address. Resolves
 * with the port actually bound (differs from the address's when it asks for 0).
 */
export function listenOn(server: Server, address: string, adopted?: ListeningHandle): Promise<number> {
  const a = parseAddress(address, { allowPortZero: true });
  if (typeof a === 'string') return Promise.reject(new KakehiError('KKH_LISTEN_FAILED', a));
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const hint =
        err.code === 'EADDRINUSE'
          ? ' (another process is listening there)'
          : err.code === 'EACCES'
            ? ' (ports below 1024 need privileges)'
            : '';
      reject(
        new KakehiError('KKH_LISTEN_FAILED', `cannot listen on ${address}: ${err.message}${hint}`, {
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    const listening = () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : a.port);
    };
    if (adopted !== undefined) server.listen(adopted, 4096, listening);
    else server.listen({ host: a.host, port: a.port, backlog: 4096 }, listening);
  });
}

/**
 * The listening socket's native handle, to pass to main over IPC (handing over
 * to a new main). Node's net.Server keeps it in `_handle`; sent bare (not the
 * Server), the receiving process holds the socket without accepting on it.
 */
export function listeningHandleOf(server: Server): ListeningHandle | undefined {
  return (server as unknown as { _handle?: ListeningHandle | null })._handle ?? undefined;
}

/**
 * A listener's max_connections, in this worker: past it, Node accepts each new
 * connection and closes it at once ('drop'), so the client sees its connection
 * end with no byte instead of waiting, accepted and never served. Node has no
 * way to stop a listening socket's accepts short of closing it, which would free
 * the port (or lose what waits in the backlog); docs/routing.md says more.
 * Called again on a hot change: open connections are never cut by a lower limit.
 * Every listener's server goes through here, so it is also where the worker's
 * overall limit (workerConnections) counts and refuses.
 */
export function limitConnections(server: Server, listenerKey: string, max: number | undefined): void {
  const known = workerConnections.limits.has(server);
  workerConnections.limits.set(server, max);
  workerConnections.apply(server);
  if (known) return;
  server.on('connection', (socket: Socket) => workerConnections.opened(socket));
  // Under the worker's limit while listening: also after a close, when a failed change
  // hands a switched listener's socket back to it.
  server.on('close', () => workerConnections.servers.delete(server));
  server.on('listening', () => {
    workerConnections.servers.add(server);
    workerConnections.apply(server);
  });
  server.on('drop', () => {
    if (workerConnections.full) {
      if (connectionsRefused.hasSubscribers) connectionsRefused.publish(listenerKey);
    } else if (listenerRefused.hasSubscribers) listenerRefused.publish(listenerKey);
  });
}

/**
 * Below every count: Node drops a new connection when `maxConnections` is truthy
 * and the server holds at least that many, so -1 drops the next one on a server
 * holding none (0 would mean no limit).
 */
const REFUSE_ALL = -1;

/**
 * The worker's overall max_connections (the top-level setting, like HAProxy's
 * global maxconn), counted over every listener's accepted sockets. Each raw
 * socket is counted once, on accept, and let go once, on its 'close', which
 * every end reaches: a TLS handshake or PROXY header failing, an abort, a tcp
 * session, an upgraded tunnel. At the limit every listener's server refuses
 * (maxConnections below any count) until one closes; one event-loop turn holds
 * both, so no accept slips between.
 */
class WorkerConnections {
  /** Each listener's server with its own max_connections, kept for as long as the server lives. */
  readonly limits = new WeakMap<Server, number | undefined>();
  /** The servers listening, which the worker's limit applies to. */
  readonly servers = new Set<Server>();
  open = 0;
  limit: number | undefined;

  get full(): boolean {
    return this.limit !== undefined && this.open >= this.limit;
  }

  setLimit(limit: number | undefined): void {
    const was = this.full;
    this.limit = limit;
    if (this.full !== was) this.applyAll();
  }

  opened(socket: Socket): void {
    this.open++;
    if (this.open === this.limit) this.applyAll();
    socket.once('close', () => {
      const was = this.full;
      this.open--;
      if (was && !this.full) this.applyAll();
    });
  }

  apply(server: Server): void {
    server.maxConnections = this.full ? REFUSE_ALL : (this.limits.get(server) ?? Number.POSITIVE_INFINITY);
  }

  private applyAll(): void {
    for (const server of this.servers) this.apply(server);
  }
}

export const workerConnections = new WorkerConnections();

/**
 * Takes the listening socket away from `server` without closing it, for the
 * server that replaces it on the same address (a listener switching protocol):
 * the port is never free in between, so no connection is refused and nothing
 * else can bind it. Closing and binding again raced in a cluster: main binds
 * anew only once every worker has closed its copy, and a worker asking before
 * the others had closed theirs got EADDRINUSE. `server` then closes as a
 * closed one does, once its connections end; their own timeouts bound that,
 * so nothing here waits for them.
 */
export function releaseListening(server: Server): ListeningHandle | undefined {
  const handle = listeningHandleOf(server);
  (server as unknown as { _handle: ListeningHandle | null })._handle = null;
  server.close();
  return handle;
}

/** Resolves when the function given to `register` is called, or after `timeoutMs`: a drain's wait. */
export async function untilCalledOr(timeoutMs: number, register: (done: () => void) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    register(resolve);
    timer = setTimeout(resolve, timeoutMs);
  });
  clearTimeout(timer);
}
