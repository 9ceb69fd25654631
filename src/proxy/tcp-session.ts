// One client connection of a tcp or tls listener: a backend picked by its
// cluster's balancer (retried on another after a failed connect, within the
// cluster's connect_attempts), with send_proxy a PROXY v2 header naming the
// client written to it first, then bytes both ways, each side paused while the
// other is full. An end from one side is passed to the other; the connection
// is done once both sockets have closed. A reset, an error or the idle timeout
// destroys both at once.

import type { Socket } from 'node:net';
import { AttemptBudget } from './attempt-budget.js';
import type { BackendRuntime } from './backend-runtime.js';
import { type ConnectionPeer, clientText, proxyEndpoints } from './connection-peer.js';
import type { ClusterRuntime } from './data-plane.js';
import { encodeProxyV2 } from './proxy-protocol.js';
import { connectionAffinity } from './request-affinity.js';
import { backendConnectFailure, backendRetry } from './request-events.js';
import { tcpConnectionEnd, tcpConnectionStart } from './tcp-events.js';

export interface TcpSessionHost {
  readonly listenerKey: string;
  readonly protocol: 'tcp' | 'tls' | 'tls_passthrough';
  /** The session ended: both sockets are gone. */
  forget(session: TcpSession): void;
}

export class TcpSession {
  private upstream: Socket | undefined;
  /** The backend acquired now: while connecting, then while carrying. */
  private backend: BackendRuntime | undefined;
  private readonly budget = new AttemptBudget();
  private readonly started = performance.now();
  private readonly idle: NodeJS.Timeout;
  private readonly clientAddress: string;
  private bytesIn = 0;
  private bytesOut = 0;
  private clientEnded = false;
  private upstreamEnded = false;
  private clientClosed = false;
  private upstreamClosed = false;
  private finished = false;
  private error: string | undefined;

  constructor(
    private readonly client: Socket,
    /** Who the client is (connection-peer.ts): the socket's peer, or the one a PROXY header named. */
    private readonly peer: ConnectionPeer,
    private readonly cluster: ClusterRuntime,
    idleMs: number,
    private readonly host: TcpSessionHost,
  ) {
    this.clientAddress = clientText(peer);
    this.idle = setTimeout(() => this.abort('idle timeout'), idleMs);
    client.on('error', (err) => this.abort(`client: ${err.message}`));
    client.on('close', () => {
      this.clientClosed = true;
      this.closed('the client closed the connection');
    });
    // Listened for from the start: a socket with nothing buffered emits its end
    // even while paused, so a client that ends before the backend is connected
    // (a probe; a PROXY header and nothing else) would otherwise never end it.
    client.on('end', () => {
      this.clientEnded = true;
      this.upstream?.end();
    });
    if (tcpConnectionStart.hasSubscribers) tcpConnectionStart.publish(cluster.spec.id);
  }

  /** Connects a backend (tried again within connect_attempts); apart from the constructor, as it may end the session at once. */
  connectNext(): void {
    const cluster = this.cluster;
    const backend = this.budget.next(cluster, connectionAffinity(cluster.spec, this.client.remoteAddress));
    if (backend === undefined) {
      this.abort('no backend available');
      return;
    }
    backend.acquire();
    this.backend = backend;
    backend.connectStream(cluster.spec.connect_timeout_ms, (err, socket) => {
      if (this.finished) {
        // Cut while connecting: finish() released the backend already.
        if (socket !== undefined) {
          socket.destroy();
          backend.streamClosed();
        }
        return;
      }
      if (socket === undefined) {
        backend.release();
        this.backend = undefined;
        const attempt = { cluster: cluster.spec.id, backend: backend.id };
        if (backendConnectFailure.hasSubscribers) backendConnectFailure.publish(attempt);
        if (!this.budget.canRetry(cluster)) {
          this.abort(err?.message ?? 'connect failed');
          return;
        }
        if (backendRetry.hasSubscribers) backendRetry.publish(attempt);
        this.connectNext();
        return;
      }
      this.pipe(socket, backend);
    });
  }

  private pipe(upstream: Socket, backend: BackendRuntime): void {
    const client = this.client;
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', (err) => this.abort(`backend: ${err.message}`));
    upstream.on('close', () => {
      this.upstreamClosed = true;
      backend.streamClosed();
      this.closed('the backend closed the connection');
    });
    upstream.on('data', (chunk: Buffer) => {
      this.idle.refresh();
      this.bytesOut += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('data', (chunk: Buffer) => {
      this.idle.refresh();
      this.bytesIn += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    client.on('drain', () => upstream.resume());
    upstream.on('drain', () => client.resume());
    upstream.on('end', () => {
      this.upstreamEnded = true;
      client.end();
    });
    // Before any client byte: the backend learns whom the connection is for.
    if (this.cluster.spec.send_proxy) upstream.write(encodeProxyV2(proxyEndpoints(this.peer)));
    if (this.clientEnded) upstream.end();
    // Bytes the client sent while the backend was being connected wait in its socket.
    client.resume();
  }

  /**
   * One socket closed. After both sides ended, the other closes on its own once
   * its writes are flushed; any other close was a reset or a failure, and the
   * other side goes too.
   */
  private closed(why: string): void {
    if (this.finished) return;
    if (this.clientClosed && this.upstreamClosed) this.finish();
    else if (!(this.clientEnded && this.upstreamEnded)) this.abort(why);
  }

  /** Ends the connection now, both sockets destroyed (a drain past its deadline, a failure). */
  abort(reason: string): void {
    if (this.finished) return;
    this.error = reason;
    this.client.destroy();
    this.upstream?.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idle);
    this.backend?.release();
    if (tcpConnectionEnd.hasSubscribers)
      tcpConnectionEnd.publish({
        listener: this.host.listenerKey,
        protocol: this.host.protocol,
        client: this.clientAddress,
        cluster: this.cluster.spec.id,
        backend: this.backend?.id,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        durationMs: performance.now() - this.started,
        error: this.error,
      });
    this.host.forget(this);
  }
}
