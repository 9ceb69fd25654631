// A tcp or tls listener: every connection it accepts goes to its one cluster
// as bytes (a tls listener first terminates TLS with the same SNI certificate
// store as https). Sōzu's model: the cluster is a field of the listener, so
// changing it applies to connections accepted from then on. With expect_proxy
// the PROXY header comes off first, before TLS or the ClientHello peek: it is
// the first thing on the wire, and the client it names is the connection's.

import { createServer, type Server, type Socket } from 'node:net';
import { type Certificate, carriesBytes, type Listener } from '../model/objects.js';
import { CertificateStore } from '../tls/certificate-store.js';
import { ClientHelloReader } from '../tls/client-hello.js';
import { acceptTls } from '../tls/tls-accept.js';
import { publishHandshake, tlsError, tlsHandshake, tlsHandshakeFailure } from '../tls/tls-events.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { DataPlane } from './data-plane.js';
import type { TlsSetup } from './http-listener.js';
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
import { TcpSession, type TcpSessionHost } from './tcp-session.js';

export class TcpListener implements TcpSessionHost {
  readonly protocol: 'tcp' | 'tls' | 'tls_passthrough';
  port = 0;
  private draining = false;
  private readonly sessions = new Set<TcpSession>();
  private readonly server: Server;
  private readonly store: CertificateStore | undefined;
  /** Connections still in their PROXY header, TLS handshake or ClientHello: not sessions yet, but a drain must end them. */
  private readonly handshaking = new Set<() => void>();
  private onEmpty: (() => void) | undefined;

  constructor(
    public spec: Listener,
    readonly listenerKey: string,
    private readonly plane: DataPlane,
    tls?: TlsSetup,
    certificates: Iterable<Certificate> = [],
  ) {
    if (!carriesBytes(spec.protocol))
      throw new Error(`listener ${listenerKey} is ${spec.protocol}, not tcp, tls or tls_passthrough`);
    this.protocol = spec.protocol;
    if (spec.protocol === 'tls') {
      if (tls?.selfSigned === undefined) throw new Error(`tls listener ${listenerKey} without its TLS setup`);
      this.store = new CertificateStore(spec, certificates, tls.selfSigned, tls.ticketKeys);
    }
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
      if (this.draining) socket.destroy();
      else withPeer(socket, this, this.handshaking, (peer, paused) => this.accepted(socket, peer, paused));
    });
    limitConnections(this.server, listenerKey, spec.max_connections);
  }

  /**
   * The client is known. After a PROXY header the socket is paused with what
   * followed unshifted: the TLS and ClientHello readers resume it once they
   * listen; a tcp session leaves it paused until its backend is connected.
   */
  private accepted(socket: Socket, peer: ConnectionPeer, paused: boolean): void {
    if (this.store !== undefined) this.handshake(socket, this.store, peer);
    else if (this.protocol === 'tls_passthrough') this.readServerName(socket, peer);
    else {
      this.start(socket, this.spec.cluster, peer);
      return;
    }
    if (paused && !socket.destroyed) socket.resume();
  }

  /** A new cluster, certificates or TLS settings: connections from now on see them, open ones carry on. */
  update(spec: Listener, certificates: Iterable<Certificate>): void {
    this.spec = spec;
    limitConnections(this.server, this.listenerKey, spec.max_connections);
    this.store?.update(spec, certificates);
  }

  setTicketKeys(keys: Buffer): void {
    this.store?.setTicketKeys(keys);
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  async listen(adopted?: ListeningHandle): Promise<void> {
    this.port = await listenOn(this.server, this.spec.address, adopted);
  }

  get listeningHandle(): ListeningHandle | undefined {
    return listeningHandleOf(this.server);
  }

  /** Gives up the listening socket, open, to a replacing listener (see releaseListening). */
  releaseListening(): ListeningHandle | undefined {
    return releaseListening(this.server);
  }

  private handshake(socket: Socket, store: CertificateStore, peer: ConnectionPeer): void {
    let abandon: (() => void) | undefined;
    abandon = acceptTls(socket, {
      store,
      // The same bound against slow clients as an https listener's handshake.
      timeoutMs: this.spec.request_head_timeout_ms,
      passBytes: true,
      onSecure: (tls) => {
        if (tlsHandshake.hasSubscribers) publishHandshake(this.listenerKey, tls);
        if (this.draining) tls.destroy();
        else this.start(tls, this.spec.cluster, peer);
      },
      onFailure: (reason) => {
        if (tlsHandshakeFailure.hasSubscribers)
          tlsHandshakeFailure.publish({ listener: this.listenerKey, reason });
      },
      onFatal: (reason, detail) => {
        if (tlsError.hasSubscribers) tlsError.publish({ listener: this.listenerKey, reason, detail });
      },
      onDone: () => {
        if (abandon !== undefined) this.handshaking.delete(abandon);
      },
    });
    this.handshaking.add(abandon);
  }

  /**
   * tls_passthrough: reads the ClientHello without answering it (bounded in
   * size by the reader, in time like a handshake), picks the cluster by its
   * server name, and hands every byte read on to the backend, which terminates TLS.
   */
  private readServerName(socket: Socket, peer: ConnectionPeer): void {
    const reader = new ClientHelloReader();
    const read: Buffer[] = [];
    let done = false;
    const stop = () => {
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', abandon);
      socket.off('close', abandon);
      socket.off('error', abandon);
      this.handshaking.delete(abandon);
    };
    const abandon = () => {
      if (done) return;
      stop();
      socket.destroy();
    };
    const timer = setTimeout(abandon, this.spec.request_head_timeout_ms);
    const onData = (chunk: Buffer) => {
      read.push(chunk);
      const r = reader.push(chunk);
      if (r.kind === 'incomplete') return;
      stop();
      if (r.kind === 'invalid') {
        socket.destroy();
        return;
      }
      socket.pause();
      socket.unshift(Buffer.concat(read));
      this.start(socket, clusterForName(this.spec, r.hello.servername), peer);
    };
    socket.on('data', onData);
    socket.on('end', abandon);
    socket.on('close', abandon);
    socket.on('error', abandon);
    this.handshaking.add(abandon);
  }

  private start(socket: Socket, clusterId: string | undefined, peer: ConnectionPeer): void {
    // The state never holds a listener whose clusters are missing (referenceIssues);
    // a passthrough name with no cluster and no fallback gets no connection.
    const cluster = clusterId === undefined ? undefined : this.plane.cluster(clusterId);
    if (cluster === undefined) {
      socket.destroy();
      return;
    }
    const session = new TcpSession(socket, peer, cluster, this.spec.keepalive_timeout_ms, this);
    this.sessions.add(session);
    if (connectionOpen.hasSubscribers) connectionOpen.publish(this.listenerKey);
    session.connectNext();
  }

  forget(session: TcpSession): void {
    if (this.sessions.delete(session) && connectionClose.hasSubscribers)
      connectionClose.publish(this.listenerKey);
    if (this.sessions.size === 0) this.onEmpty?.();
  }

  /**
   * Stops accepting and waits for open connections to end on their own (a byte
   * stream has no request boundary to stop at) until the deadline, then cuts
   * the rest. Resolves with how many were cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const abandon of [...this.handshaking]) abandon();
    if (this.sessions.size > 0)
      await untilCalledOr(timeoutMs, (resolve) => {
        this.onEmpty = resolve;
      });
    const cut = this.sessions.size;
    for (const s of [...this.sessions]) s.abort('the drain timeout passed');
    await closed;
    return cut;
  }
}

/** The cluster for a passthrough connection's server name: exact, then *.wildcard of one label, then the listener's cluster. */
export function clusterForName(spec: Listener, servername: string | undefined): string | undefined {
  const map = spec.sni_clusters;
  if (map === undefined || servername === undefined) return spec.cluster;
  // Own keys only: a client's name must not find Object.prototype's members.
  const own = (k: string) => (Object.hasOwn(map, k) ? map[k] : undefined);
  const name = servername.toLowerCase();
  const dot = name.indexOf('.');
  return own(name) ?? (dot > 0 ? own(`*${name.slice(dot)}`) : undefined) ?? spec.cluster;
}
