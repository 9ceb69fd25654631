// One HTTP/2 client connection (ALPN h2, or h2c with prior knowledge): nghttp2,
// inside node:http2, does the framing, HPACK and flow control; each stream is
// handed to a ClientSession of its own through an H2StreamSocket, so HTTP/2
// requests meet exactly the routing, rules, limits and backends HTTP/1.1 ones do.
// This module holds what is the connection's: its idle deadline, the reset
// budget against rapid reset, and the graceful GOAWAY on drain.

import {
  constants,
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Listener } from '../model/objects.js';
import type { Served } from '../tls/certificate-store.js';
import { ClientSession, LINGER_MS, type SessionHost } from './client-session.js';
import type { OpenConnection } from './client-stream.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { DataPlane } from './data-plane.js';
import { type H2Refusal, h2Refused } from './h2-events.js';
import { h1RequestOfH2 } from './h2-request.js';
import { H2StreamSocket, type StreamEndObserver } from './h2-stream-socket.js';

/** What the connection needs of its listener. */
export interface H2Host {
  readonly plane: DataPlane;
  readonly listenerKey: string;
  readonly spec: Listener;
  readonly draining: boolean;
  forget(conn: OpenConnection): void;
}

/**
 * The node:http2 server a listener hands its HTTP/2 sockets to (it never listens
 * itself): one per listener spec, so settings changes reach new connections.
 */
export function h2ServerFor(spec: Listener): Http2Server {
  return createServer({
    settings: {
      maxConcurrentStreams: spec.h2_max_concurrent_streams,
      // The same bound as an HTTP/1.1 head; HPACK-decoded size, cookie crumbs each counted.
      maxHeaderListSize: spec.max_header_bytes,
      enablePush: false,
    },
    // Fields, pseudo-headers included; nghttp2 resets a stream past it.
    maxHeaderListPairs: spec.max_header_count + 4,
    // Memory nghttp2 may hold per session (MB); past it new streams are refused.
    maxSessionMemory: 10,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
  });
}

export class H2Connection implements OpenConnection, SessionHost, StreamEndObserver {
  private session: ServerHttp2Session | undefined;
  private readonly streams = new Set<ClientSession>();
  private idleTimer: NodeJS.Timeout | undefined;
  private resetWindowStart = 0;
  private resetsInWindow = 0;
  private closed = false;

  constructor(
    private readonly host: H2Host,
    server: Http2Server,
    private readonly socket: Socket,
    private readonly proto: 'http' | 'https',
    private readonly peer: ConnectionPeer,
    private readonly served: Served | undefined,
  ) {
    // node:http2 waits for 'secureConnect' while a TLS socket says secureConnecting;
    // a server-side socket made outside tls.Server never clears it, though its
    // handshake is done (acceptTls called us from 'secure').
    if ((socket as { secureConnecting?: boolean }).secureConnecting === true)
      (socket as { secureConnecting?: boolean }).secureConnecting = false;
    // The server makes the session synchronously and says so by 'session'.
    const take = (s: ServerHttp2Session) => {
      this.session = s;
    };
    server.once('session', take);
    server.emit('connection', socket);
    server.off('session', take);
    const session = this.session;
    if (session === undefined) {
      socket.destroy();
      this.closed = true;
      return;
    }
    // Node passes the header block as it came (rawHeaders, documented since v8.4) as
    // a fourth argument its types omit; its `headers` object has lost order and crumbs.
    session.on(
      'stream',
      (stream: ServerHttp2Stream, _headers: IncomingHttpHeaders, flags: number, raw?: string[]) =>
        this.onStream(stream, flags, raw ?? []),
    );
    // A protocol error of the client's (not a reset socket) is worth counting.
    session.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code?.startsWith('ERR_HTTP2') === true) this.refused('session_error', err.message);
    });
    session.on('close', () => this.onClose());
    // A client that closes its side (h2load at the end of a timed run: GOAWAY, FIN, streams
    // still open) can send nothing more, not even WINDOW_UPDATE; on our half-open sockets
    // node:http2 never notices, and the session then waits for those streams for ever, so
    // neither the idle timer nor a drain could end it. HTTP/2 has no half-close of a
    // connection: it ends here, as nginx and HAProxy end it.
    socket.once('end', () => {
      this.kill('the client closed the connection');
      socket.destroy();
    });
    this.armIdle();
  }

  // ---- SessionHost: what each stream's session asks of its host ----------

  get plane(): DataPlane {
    return this.host.plane;
  }

  get listenerKey(): string {
    return this.host.listenerKey;
  }

  get draining(): boolean {
    return this.host.draining;
  }

  forget(stream: ClientSession): void {
    if (this.streams.delete(stream) && this.streams.size === 0) this.armIdle();
  }

  // ---- streams -------------------------------------------------------------

  private onStream(stream: ServerHttp2Stream, flags: number, raw: readonly string[]): void {
    if (this.closed) return;
    const r = h1RequestOfH2(raw, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
    if (typeof r === 'string') {
      // RFC 9113 §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
      // Closing with an error code makes the stream emit 'error': unheard, it would
      // end the worker, so one bad request from any client could.
      stream.on('error', () => {});
      stream.close(constants.NGHTTP2_PROTOCOL_ERROR);
      if (h2Refused.hasSubscribers)
        h2Refused.publish({ listener: this.host.listenerKey, reason: 'malformed_request', detail: r });
      return;
    }
    this.clearIdle();
    const socket = new H2StreamSocket(stream, r.method, r.framing, this);
    const session = new ClientSession(socket, this, this.proto, this.peer, this.served, 'h2');
    this.streams.add(session);
    socket.start(r.head);
  }

  /** StreamEndObserver: a client cancelling streams faster than its budget is cut off. */
  streamCancelled(): void {
    const now = performance.now();
    if (now - this.resetWindowStart >= 1000) {
      this.resetWindowStart = now;
      this.resetsInWindow = 0;
    }
    if (++this.resetsInWindow <= this.host.spec.h2_max_resets_per_second) return;
    this.refused(
      'rapid_reset',
      `more than ${this.host.spec.h2_max_resets_per_second} streams cancelled in a second`,
    );
    this.session?.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    this.kill('rapid reset');
  }

  private refused(reason: H2Refusal, detail: string): void {
    if (h2Refused.hasSubscribers) h2Refused.publish({ listener: this.host.listenerKey, reason, detail });
  }

  // ---- the connection's life -------------------------------------------------

  /** No stream open: the connection may idle for the listener's keep-alive, then goes with GOAWAY. */
  private armIdle(): void {
    if (this.closed) return;
    if (this.host.draining) {
      this.drain();
      return;
    }
    this.clearIdle();
    this.idleTimer = setTimeout(() => this.closeIdle(), this.host.spec.keepalive_timeout_ms);
    this.idleTimer.unref();
  }

  /**
   * GOAWAY, then the socket goes once it is written. A client that reads
   * nothing (a PING or SETTINGS flood whose ACKs it never takes) never lets the
   * GOAWAY out, so after one more idle period the connection is destroyed.
   */
  private closeIdle(): void {
    this.drain();
    this.idleTimer = setTimeout(() => {
      this.kill('idle HTTP/2 connection did not close');
      // node:http2 ends its socket only once the writes queued on it are out, which they never will be.
      this.socket.destroy();
    }, this.host.spec.keepalive_timeout_ms);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /** GOAWAY now; streams in flight complete, new ones are refused; the connection ends with the last. */
  drain(): void {
    if (this.closed) return;
    const session = this.session;
    if (session === undefined || session.closed) return;
    session.close();
  }

  kill(reason: string): void {
    if (this.closed) return;
    for (const s of [...this.streams]) s.kill(reason);
    this.session?.destroy();
    this.onClose();
    // node:http2 ends its socket once what is queued on it is written (a GOAWAY,
    // say): a client that reads nothing gets LINGER_MS for it, then the socket goes.
    const socket = this.socket;
    if (!socket.destroyed) setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearIdle();
    for (const s of [...this.streams]) s.kill('the HTTP/2 connection closed');
    this.host.forget(this);
  }
}
