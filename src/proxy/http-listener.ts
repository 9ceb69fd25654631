// A listening socket and the client sessions it accepted: binds, accepts, and
// on shutdown stops accepting and drains its sessions within a deadline.

import { createServer, type Server, type Socket } from 'node:net';
import { KakehiError } from '../errors.js';
import { parseAddress } from '../model/address.js';
import type { Listener } from '../model/objects.js';
import { ClientSession, type SessionHost } from './client-session.js';
import type { DataPlane } from './data-plane.js';
import { connectionClose, connectionOpen } from './request-events.js';

export class HttpListener implements SessionHost {
  draining = false;
  private readonly sessions = new Set<ClientSession>();
  private readonly server: Server;
  /** Port actually bound (differs from the spec's when it asks for port 0). */
  port = 0;

  constructor(
    readonly spec: Listener,
    readonly listenerKey: string,
    readonly plane: DataPlane,
  ) {
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) =>
      this.accept(socket),
    );
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  listen(): Promise<void> {
    const a = parseAddress(this.spec.address, { allowPortZero: true });
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
          new KakehiError(
            'KKH_LISTEN_FAILED',
            `cannot listen on ${this.spec.address}: ${err.message}${hint}`,
            { cause: err },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen({ host: a.host, port: a.port, backlog: 4096 }, () => {
        this.server.off('error', onError);
        const addr = this.server.address();
        this.port = typeof addr === 'object' && addr !== null ? addr.port : a.port;
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sessions.add(new ClientSession(socket, this, 'http'));
    if (connectionOpen.hasSubscribers) connectionOpen.publish(this.listenerKey);
  }

  forget(session: ClientSession): void {
    // Only a session still held counts as closing: the gauge must not go below what was opened.
    if (this.sessions.delete(session) && connectionClose.hasSubscribers)
      connectionClose.publish(this.listenerKey);
    if (this.sessions.size === 0) this.onEmpty?.();
  }

  private onEmpty: (() => void) | undefined;

  /** Stops accepting, lets sessions finish until the deadline, then cuts the rest. Resolves with how many were cut. */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of [...this.sessions]) s.drain();
    if (this.sessions.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onEmpty = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
    }
    const cut = this.sessions.size;
    for (const s of [...this.sessions]) s.kill('the drain timeout passed');
    await closed;
    return cut;
  }
}
