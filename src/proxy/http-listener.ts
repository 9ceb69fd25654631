// A listening socket and the client sessions it accepted: binds, accepts, and
// on shutdown stops accepting and drains its sessions within a deadline.

import type { Http2Server } from 'node:http2';
import { createServer, type Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Certificate, Listener } from '../model/objects.js';
import { CertificateStore, type Served } from '../tls/certificate-store.js';
import { acceptTls } from '../tls/tls-accept.js';
import { publishHandshake, tlsError, tlsHandshake, tlsHandshakeFailure } from '../tls/tls-events.js';
import { ClientSession, type SessionHost } from './client-session.js';
import type { ClientStream, OpenConnection } from './client-stream.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { DataPlane } from './data-plane.js';
import { H2Connection, h2ServerFor } from './h2-connection.js';
import {
  type ListeningHandle,
  limitConnections,
  listeningHandleOf,
  listenOn,
  releaseListening,
  untilCalledOr,
} from './listening-server.js';
import { withPeer } from './proxy-accept.js';
import { connectionClose, connectionOpen } from './request-events.js';

/** What an HTTPS listener needs beyond its spec; the same in every worker. */
export interface TlsSetup {
  /** Main sends it before the first https listener; absent while there is none. */
  selfSigned?: { certificate: string; key: string };
  /** 48 bytes shared by every worker, so any worker resumes any session. */
  ticketKeys: Buffer;
}

/** While draining, how long a TLS handshake in progress may still complete. */
const DRAIN_HANDSHAKE_GRACE_MS = 1_000;

export class HttpListener implements SessionHost {
  draining = false;
  private readonly sessions = new Set<OpenConnection>();
  /** Where HTTP/2 connections get their sessions; made again when the spec changes. */
  private h2Server: Http2Server | undefined;
  private readonly server: Server;
  private readonly store: CertificateStore | undefined;
  /** Connections still in their PROXY header or TLS handshake: not sessions yet, but a drain must end them. */
  private readonly handshaking = new Set<() => void>();
  /** Port actually bound (differs from the spec's when it asks for port 0). */
  port = 0;

  constructor(
    public spec: Listener,
    readonly listenerKey: string,
    readonly plane: DataPlane,
    tls?: TlsSetup,
    certificates: Iterable<Certificate> = [],
  ) {
    if (spec.protocol !== 'https') {
      this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) =>
        this.withPeer(socket, (peer) => this.accept(socket, peer)),
      );
      limitConnections(this.server, listenerKey, spec.max_connections);
      return;
    }
    if (tls?.selfSigned === undefined) throw new Error(`https listener ${listenerKey} without its TLS setup`);
    const store = new CertificateStore(spec, certificates, tls.selfSigned, tls.ticketKeys);
    this.store = store;
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) =>
      this.withPeer(socket, (peer) => this.acceptTcpForTls(socket, store, peer)),
    );
    limitConnections(this.server, listenerKey, spec.max_connections);
  }

  /**
   * Who the client is (withPeer), then `next`; a socket paused after its PROXY
   * header is resumed once `next` listens to it.
   */
  private withPeer(socket: Socket, next: (peer: ConnectionPeer) => void): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    withPeer(socket, this, this.handshaking, (peer, paused) => {
      next(peer);
      if (paused && !socket.destroyed) socket.resume();
    });
  }

  /**
   * New certificates or TLS settings: handshakes from now on see them, open
   * connections keep what they negotiated.
   */
  update(spec: Listener, certificates: Iterable<Certificate>): void {
    this.spec = spec;
    this.h2Server = undefined;
    limitConnections(this.server, this.listenerKey, spec.max_connections);
    this.store?.update(spec, certificates);
  }

  /** Rotation: every worker gets the same new keys; sessions ticketed before resume no more. */
  setTicketKeys(keys: Buffer): void {
    this.store?.setTicketKeys(keys);
  }

  private acceptTcpForTls(socket: Socket, store: CertificateStore, peer: ConnectionPeer): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    let abandon: (() => void) | undefined;
    const done = () => {
      if (abandon !== undefined) this.handshaking.delete(abandon);
    };
    abandon = acceptTls(socket, {
      store,
      // A handshake is part of the request head: the same bound against slow clients.
      timeoutMs: this.spec.request_head_timeout_ms,
      alpn: this.spec.alpn,
      onSecure: (tls, served) => this.acceptTls(tls, served, peer),
      onFailure: (reason) => {
        if (tlsHandshakeFailure.hasSubscribers)
          tlsHandshakeFailure.publish({ listener: this.listenerKey, reason });
      },
      onFatal: (reason, detail) => {
        if (tlsError.hasSubscribers) tlsError.publish({ listener: this.listenerKey, reason, detail });
      },
      onDone: done,
    });
    this.handshaking.add(abandon);
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Binds the spec's address, or listens on a handed-over socket (listenOn). */
  async listen(adopted?: ListeningHandle): Promise<void> {
    this.port = await listenOn(this.server, this.spec.address, adopted);
  }

  get listeningHandle(): ListeningHandle | undefined {
    return listeningHandleOf(this.server);
  }

  private accept(socket: Socket, peer: ConnectionPeer): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sessions.add(new ClientSession(socket, this, 'http', peer));
    if (connectionOpen.hasSubscribers) connectionOpen.publish(this.listenerKey);
  }

  private acceptTls(socket: TLSSocket, served: Served, peer: ConnectionPeer): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    if (socket.alpnProtocol === 'h2') this.sessions.add(this.h2(socket, 'https', peer, served));
    else this.sessions.add(new ClientSession(socket, this, 'https', peer, served));
    if (connectionOpen.hasSubscribers) connectionOpen.publish(this.listenerKey);
    if (tlsHandshake.hasSubscribers) publishHandshake(this.listenerKey, socket);
  }

  private h2(socket: Socket, proto: 'http' | 'https', peer: ConnectionPeer, served?: Served): H2Connection {
    this.h2Server ??= h2ServerFor(this.spec);
    return new H2Connection(this, this.h2Server, socket, proto, peer, served);
  }

  /** SessionHost: a plain connection opened with the HTTP/2 preface, on a listener with h2c. */
  h2c(socket: ClientStream, peer: ConnectionPeer, head: Buffer): boolean {
    if (this.draining || !(socket instanceof Socket)) return false;
    socket.pause();
    socket.unshift(head);
    this.sessions.add(this.h2(socket, 'http', peer));
    if (connectionOpen.hasSubscribers) connectionOpen.publish(this.listenerKey);
    return true;
  }

  forget(session: OpenConnection): void {
    // Only a session still held counts as closing: the gauge must not go below what was opened.
    if (this.sessions.delete(session) && connectionClose.hasSubscribers)
      connectionClose.publish(this.listenerKey);
    if (this.sessions.size === 0) this.onEmpty?.();
  }

  private onEmpty: (() => void) | undefined;

  /** Gives up the listening socket, open, to a replacing listener; open connections carry on (see releaseListening). */
  releaseListening(): ListeningHandle | undefined {
    return releaseListening(this.server);
  }

  /** Stops accepting, lets sessions finish until the deadline, then cuts the rest. Resolves with how many were cut. */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // A handshake in progress gets the idle grace of a keep-alive connection, then goes.
    if (this.handshaking.size > 0) {
      setTimeout(() => {
        for (const abandon of [...this.handshaking]) abandon();
      }, DRAIN_HANDSHAKE_GRACE_MS).unref();
    }
    for (const s of [...this.sessions]) s.drain();
    if (this.sessions.size > 0)
      await untilCalledOr(timeoutMs, (resolve) => {
        this.onEmpty = resolve;
      });
    const cut = this.sessions.size;
    for (const s of [...this.sessions]) s.kill('the drain timeout passed');
    await closed;
    return cut;
  }
}
