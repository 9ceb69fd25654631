// A tcp or tls listener: every connection it accepts goes to its one cluster
// as bytes (a tls listener first terminates TLS with the same SNI certificate
// store as https). Sōzu's model: the cluster is a field of the listener, so
// changing it applies to connections accepted from then on.

import { createServer, type Server, type Socket } from 'node:net';
import type { ListeningHandle } from '../ipc/messages.js';
import type { Certificate, Listener } from '../model/objects.js';
import { CertificateStore } from '../tls/certificate-store.js';
import { acceptTls } from '../tls/tls-accept.js';
import { publishHandshake, tlsError, tlsHandshake, tlsHandshakeFailure } from '../tls/tls-events.js';
import type { DataPlane } from './data-plane.js';
import type { TlsSetup } from './http-listener.js';
import { listeningHandleOf, listenOn, stopAccepting, untilCalledOr } from './listening-server.js';
import { connectionClose, connectionOpen } from './request-events.js';
import { noPrelude, type TcpPrelude, TcpSession, type TcpSessionHost } from './tcp-session.js';

export class TcpListener implements TcpSessionHost {
  readonly protocol: 'tcp' | 'tls';
  port = 0;
  private draining = false;
  private readonly sessions = new Set<TcpSession>();
  private readonly server: Server;
  private readonly store: CertificateStore | undefined;
  /** Connections still in their TLS handshake: not sessions yet, but a drain must end them. */
  private readonly handshaking = new Set<() => void>();
  private onEmpty: (() => void) | undefined;
  /** Where expect_proxy will read its header; nothing yet. */
  prelude: TcpPrelude = noPrelude;

  constructor(
    public spec: Listener,
    readonly listenerKey: string,
    private readonly plane: DataPlane,
    tls?: TlsSetup,
    certificates: Iterable<Certificate> = [],
  ) {
    if (spec.protocol !== 'tcp' && spec.protocol !== 'tls')
      throw new Error(`listener ${listenerKey} is ${spec.protocol}, not tcp or tls`);
    this.protocol = spec.protocol;
    if (spec.protocol === 'tls') {
      if (tls?.selfSigned === undefined) throw new Error(`tls listener ${listenerKey} without its TLS setup`);
      this.store = new CertificateStore(spec, certificates, tls.selfSigned, tls.ticketKeys);
    }
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
      if (this.draining) socket.destroy();
      else if (this.store === undefined) this.start(socket);
      else this.handshake(socket, this.store);
    });
  }

  /** A new cluster, certificates or TLS settings: connections from now on see them, open ones carry on. */
  update(spec: Listener, certificates: Iterable<Certificate>): void {
    this.spec = spec;
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

  stopAccepting(): Promise<void> {
    return stopAccepting(this.server);
  }

  private handshake(socket: Socket, store: CertificateStore): void {
    let abandon: (() => void) | undefined;
    abandon = acceptTls(socket, {
      store,
      // The same bound against slow clients as an https listener's handshake.
      timeoutMs: this.spec.request_head_timeout_ms,
      passBytes: true,
      onSecure: (tls) => {
        if (tlsHandshake.hasSubscribers) publishHandshake(this.listenerKey, tls);
        if (this.draining) tls.destroy();
        else this.start(tls);
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

  private start(socket: Socket): void {
    // The state never holds a tcp listener whose cluster is missing (referenceIssues).
    const cluster = this.spec.cluster === undefined ? undefined : this.plane.cluster(this.spec.cluster);
    if (cluster === undefined) {
      socket.destroy();
      return;
    }
    const session = new TcpSession(socket, cluster, this.spec.keepalive_timeout_ms, this);
    this.sessions.add(session);
    if (connectionOpen.hasSubscribers) connectionOpen.publish(this.listenerKey);
    session.begin(this.prelude);
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
