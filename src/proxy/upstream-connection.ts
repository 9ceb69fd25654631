// One connection to a backend (TCP, or TLS over it), reused across requests.
// Socket handlers are attached once; each request takes the connection as its
// `owner` and hands it back, so keep-alive reuse costs no listener churn. An
// idle connection that receives bytes or a close is dropped from the pool. The
// socket stays inside: owners get write, flow control and close, so another
// transport can take its place.

import type { Socket } from 'node:net';
import { JOINED_BODY_BYTES } from '../defaults.js';

export interface UpstreamOwner {
  onUpstreamData(chunk: Buffer): void;
  /** The backend closed its side or the socket failed; err when it failed. */
  onUpstreamClose(err: Error | undefined): void;
  onUpstreamDrain(): void;
}

export interface UpstreamPoolHooks {
  /** The connection is gone for good (closed or destroyed). */
  forget(conn: UpstreamConnection): void;
  /**
   * A TLS alert ended it before it carried a request: under TLS 1.3 the
   * backend judges our client certificate after our side of the handshake is
   * done, so its refusal arrives here rather than as a failed connect.
   */
  tlsRefused(err: Error): void;
  /** A TLS connection's first bytes from the backend: it did not refuse us. */
  tlsAnswered(): void;
}

export class UpstreamConnection {
  owner: UpstreamOwner | undefined;
  /** Requests it has carried; > 0 means a request may meet a connection the backend already closed. */
  uses = 0;
  /** When it went idle, ms since epoch. */
  idleSince = 0;
  /** The backend's Keep-Alive timeout, when it gave one. */
  keepAliveMs = -1;
  closed = false;
  /**
   * The client connection it was opened for, on a cluster with send_proxy: its
   * PROXY header named that client, so no other client's request may use it.
   */
  boundTo: object | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly hooks: UpstreamPoolHooks,
    /** The TLS settings it was made under ('' for plain TCP): the pool reuses it only under the same. */
    readonly tlsKey = '',
  ) {
    socket.setNoDelay(true);
    // Only TLS connections pay for this listener, once.
    if (tlsKey !== '') socket.once('data', () => hooks.tlsAnswered());
    socket.on('data', (chunk: Buffer) => {
      if (this.owner) this.owner.onUpstreamData(chunk);
      else this.destroy(); // bytes nobody asked for: the connection can't be trusted again
    });
    socket.on('end', () => this.gone(undefined));
    socket.on('error', (err) => {
      if (this.tlsKey !== '' && this.uses === 0 && isTlsAlert(err)) this.hooks.tlsRefused(err);
      this.gone(err);
    });
    socket.on('close', () => this.gone(undefined));
    socket.on('drain', () => this.owner?.onUpstreamDrain());
  }

  private gone(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const owner = this.owner;
    this.owner = undefined;
    this.socket.destroy();
    this.hooks.forget(this);
    owner?.onUpstreamClose(err);
  }

  write(data: Buffer | string): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  /**
   * Writes a request head and the body bytes held for it as one segment (one
   * write, a small body joined to the head, else a corked writev); false
   * when the last body write found the socket full (the head alone never pauses
   * the client). A PROXY header was written when the connection was made.
   */
  writeHead(head: string, held: readonly Buffer[]): boolean {
    const socket = this.socket;
    if (held.length === 0) {
      socket.write(head, 'latin1');
      return true;
    }
    if (held.length === 1 && held[0]!.length <= JOINED_BODY_BYTES)
      return socket.write(head + held[0]!.toString('latin1'), 'latin1');
    socket.cork();
    socket.write(head, 'latin1');
    let ok = true;
    for (const part of held) ok = socket.write(part);
    socket.uncork();
    return ok;
  }

  /** Stops reading from the backend (its owner's client is not keeping up). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Half-closes: the owner's client has no more to send (a tunnel). */
  end(): void {
    this.socket.end();
  }

  /** Closes without telling the owner: the caller is the owner, or there is none. */
  destroy(): void {
    this.owner = undefined;
    this.gone(undefined);
  }
}

function isTlsAlert(err: Error & { code?: unknown }): boolean {
  return typeof err.code === 'string' && err.code.startsWith('ERR_SSL_') && err.code.includes('ALERT');
}
