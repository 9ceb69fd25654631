// One client connection through its life: read a request head, route it, carry
// the body to a backend and the response back, then the next request
// (keep-alive, pipelining) or a WebSocket tunnel. Every wait has a timer, every
// buffer a bound, and any failure closes both sides rather than hang either.
// Over 450 lines on purpose: what is left is the one state machine (stages,
// timers, backpressure), whose moves read best together; what it decides or
// frames is in route-decision, request-body, response-body, attempt-budget and tunnel.

import * as D from '../defaults.js';
import type { Hsts } from '../model/objects.js';
import type { Served } from '../tls/certificate-store.js';
import { answer } from './answers.js';
import { AttemptBudget } from './attempt-budget.js';
import type { QueueWaiter } from './backend-queue.js';
import { type BackendRuntime, ConnectError } from './backend-runtime.js';
import type { ClientStream, HttpProtocol, OpenConnection } from './client-stream.js';
import type { ClientInfo } from './connection-peer.js';
import { type ConnectionPeer, proxyEndpoints } from './connection-peer.js';
import type { ClusterRuntime, DataPlane, ListenerRuntime, RouteTarget } from './data-plane.js';
import { type Deadlined, DeadlineEntry, sessionDeadlines } from './deadline-lists.js';
import { requestHeadForBackend, responseHeadForClient } from './forward-head.js';
import { parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './http1-head.js';
import { type LimitRefusal, limitRefused } from './limit-events.js';
import { encodeProxyV2 } from './proxy-protocol.js';
import { type Affinity, readAffinity } from './request-affinity.js';
import { RequestBody } from './request-body.js';
import { backendConnectFailure, backendRetry, type RequestEnd, requestEnd } from './request-events.js';
import { newRequestId } from './request-id.js';
import { bodyLimitOf, checkRequestLimits } from './request-limits.js';
import { type BodySink, ResponseBody } from './response-body.js';
import { type AccessRefusal, accessDecision } from './route-access.js';
import { decideRoute } from './route-decision.js';
import { stickySetCookie } from './sticky-cookie.js';
import { Tunnel } from './tunnel.js';
import type { UpstreamConnection, UpstreamOwner } from './upstream-connection.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** RFC 9113 §3.4: the first line of the HTTP/2 client preface. */
const H2_PREFACE_LINE = Buffer.from('PRI * HTTP/2.0\r\n');
const REQUEST_LINE_END = /^[^\r\n]* HTTP\/\d\.\d$/;

/** False once a complete first line shows the request is not HTTP/1.x. */
function startsLikeHttp1(buf: Buffer): boolean {
  const eol = buf.indexOf(10);
  if (eol < 0) return true;
  const line = buf.toString('latin1', 0, eol > 0 && buf[eol - 1] === 13 ? eol - 1 : eol);
  return REQUEST_LINE_END.test(line);
}

/** Where the connection is; moved only by transition(), along MOVES. */
type Stage =
  | { readonly name: 'head' }
  | { readonly name: 'exchange' }
  | { readonly name: 'tunnel'; readonly tunnel: Tunnel }
  | { readonly name: 'closed' };
type StageName = Stage['name'];

// Shared by every session: moving to these stages allocates nothing.
const HEAD: Stage = { name: 'head' };
const EXCHANGE: Stage = { name: 'exchange' };
const CLOSED: Stage = { name: 'closed' };

const MOVES: Readonly<Record<StageName, readonly StageName[]>> = {
  head: ['exchange', 'closed'],
  exchange: ['head', 'tunnel', 'closed'],
  tunnel: ['closed'],
  closed: [],
};

/** While draining, how long an idle keep-alive connection may still send one last request. */
const DRAIN_IDLE_GRACE_MS = 1_000;

/** How long a closing connection may take to flush its last response. */
export const LINGER_MS = 5_000;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface SessionHost {
  plane: DataPlane;
  listenerKey: string;
  /** Set while draining: finish the current exchange, then close. */
  draining: boolean;
  forget(session: ClientSession): void;
  /**
   * h2c with prior knowledge (plain listeners with h2c): the connection began
   * with the HTTP/2 preface; `head` is what was read of it. Absent: no h2c here.
   */
  h2c?(socket: ClientStream, peer: ConnectionPeer, head: Buffer): boolean;
}

/** What the client side's deadline (see armTimer) does when it passes. */
type ClientDeadline = 'idle' | 'head' | 'body' | 'drain';

/** The session a client socket belongs to: its event handlers are shared by every session. */
const SESSION = Symbol('kakehi.session');
type SessionSocket = ClientStream & { [SESSION]: ClientSession };

export class ClientSession implements UpstreamOwner, BodySink, Deadlined, QueueWaiter, OpenConnection {
  private stage: Stage = HEAD;
  private buf: Buffer | undefined;
  private scanFrom = 0;
  // The client side's one deadline, on the worker's shared lists (Deadlined).
  dlPrev: Deadlined | undefined = undefined;
  dlNext: Deadlined | undefined = undefined;
  dlDue = 0;
  dlList: Deadlined['dlList'] = undefined;
  private deadline: ClientDeadline = 'idle';
  /** The backend side's deadline (backend_timeout_ms), on the same shared lists: no Node timer per exchange. */
  private readonly upDeadline = new DeadlineEntry(this);
  private readPaused = false;
  /** The head timer runs (from the first byte of a request head). */
  private headTimed = false;
  private clientEnded = false;
  private readonly info: ClientInfo;

  // The exchange in flight (one at a time; pipelined requests wait in buf).
  private listener: ListenerRuntime | undefined;
  private req: RequestHead | undefined;
  private requestId = '';
  /**
   * When the exchange began: the first byte of its request head, so that a
   * request refused before its head is complete (400, 408, 431) is timed too.
   * Never 0: that would time from the worker's start (its uptime).
   */
  private started = performance.now();
  private target: RouteTarget | undefined;
  private cluster: ClusterRuntime | undefined;
  private backend: BackendRuntime | undefined;
  /** The full backend this exchange waits for (its queue), if it does. */
  private queuedOn: BackendRuntime | undefined;
  private readonly attempts = new AttemptBudget();
  /** The request's sticky cookie and hash key, read once per request. */
  private readonly affinity: Affinity = { sticky: undefined, key: undefined };
  private upstream: UpstreamConnection | undefined;
  /** send_proxy: an idle backend connection whose PROXY header named this client (keepBound). */
  private bound: UpstreamConnection | undefined;
  private readonly reqBody = new RequestBody();
  /** Body bytes read before the backend connection is there; reused, never reallocated. */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private resHeadBuf: Buffer | undefined;
  private res: ResponseHead | undefined;
  /** The response head, held for a moment to go out in one write with the first body bytes. */
  private headOut: string | undefined;
  private readonly body = new ResponseBody(this);
  private closeAfter = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private status = 0;
  private sentAt = 0;
  private backendMs = -1;

  constructor(
    private readonly socket: ClientStream,
    private readonly host: SessionHost,
    proto: 'http' | 'https',
    /** Who the client is (connection-peer.ts): the one answer every use of its address reads. */
    private readonly peer: ConnectionPeer,
    /** What the TLS handshake served (https only): strict SNI checks the Host against its names. */
    private readonly served?: Served,
    /** h2: a stream of an HTTP/2 connection, seen as a connection of one request (h2-stream-socket.ts). */
    private readonly protocol: HttpProtocol = 'http/1.1',
  ) {
    this.info = { address: peer.client.address, proto, port: peer.target.port };
    socket.setNoDelay(true);
    // Shared handlers, not five closures per connection (bench:memory).
    (socket as SessionSocket)[SESSION] = this;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
    this.armIdle();
  }

  /** Begins a graceful close: idle connections go now, busy ones after their response. */
  drain(): void {
    this.closeAfter = true;
    // An idle keep-alive connection is not closed at once: a client may be
    // sending its next request right now and would see a reset. It gets a
    // short grace to send it (answered with Connection: close), then goes.
    if (this.stage.name === 'head' && this.buf === undefined) {
      this.armTimer(DRAIN_IDLE_GRACE_MS, 'drain');
    }
  }

  /** Ends the connection now, whatever it is doing. */
  kill(reason: string): void {
    this.abort(reason);
  }

  // ---- client side ----------------------------------------------------

  /** The only place the stage changes; an illegal move is a bug, and throws. */
  private transition(to: Stage): void {
    const from = this.stage.name;
    if (!MOVES[from].includes(to.name)) throw new Error(`client session: no move from ${from} to ${to.name}`);
    this.stage = to;
  }

  /** From the client socket's shared handler. */
  onClientData(chunk: Buffer): void {
    const stage = this.stage;
    switch (stage.name) {
      case 'head':
        if (this.buf === undefined) this.started = performance.now();
        this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
        this.readHead();
        return;
      case 'exchange':
        this.bytesInChunk(chunk);
        return;
      case 'tunnel':
        stage.tunnel.fromClient(chunk);
        return;
      case 'closed':
        return;
    }
  }

  private bytesInChunk(chunk: Buffer): void {
    if (this.reqBody.done) {
      this.holdPipelined(chunk);
      return;
    }
    const end = this.bodyEnd(chunk, 0);
    if (end < 0) return;
    this.forwardBody(end === chunk.length ? chunk : chunk.subarray(0, end));
    if (end < chunk.length) this.holdPipelined(chunk.subarray(end));
  }

  /** How much of chunk[from..] belongs to the request body; -1 after a framing error (already answered). */
  private bodyEnd(chunk: Buffer, from: number): number {
    const body = this.reqBody;
    const end = body.feed(chunk, from);
    if (end < 0) {
      if (body.tooLarge) this.refuseByLimit('body', 413, body.error ?? 'the request body is too large');
      else this.failRequestBody(`invalid chunked body: ${body.error}`);
      return -1;
    }
    if (body.done) this.requestBodyComplete();
    return end;
  }

  private requestBodyComplete(): void {
    this.clearTimer();
    if (this.upstream !== undefined) this.armBackendTimer();
  }

  private holdPipelined(chunk: Buffer): void {
    this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length > D.PIPELINE_BUFFER_BYTES) this.pauseClient();
  }

  /** From the client socket's shared handler. */
  onClientEnd(): void {
    this.clientEnded = true;
    const stage = this.stage;
    if (stage.name === 'tunnel') {
      stage.tunnel.clientEnded();
      return;
    }
    if (this.stage.name === 'exchange' && !this.reqBody.done) {
      this.abort('client ended the connection inside its request body');
      return;
    }
    if (this.stage.name === 'head' && this.buf === undefined) this.close();
    // Otherwise: answer what was asked, then close (see finishExchange).
  }

  /** From the client socket's shared handler. */
  onClientDrain(): void {
    const stage = this.stage;
    if (stage.name === 'exchange') this.upstream?.resume();
    else if (stage.name === 'tunnel') stage.tunnel.clientDrained();
  }

  private pauseClient(): void {
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private resumeClient(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  // ---- request head ---------------------------------------------------

  private readHead(): void {
    let buf = this.buf;
    if (buf === undefined) return;
    const listener = this.host.plane.listener(this.host.listenerKey);
    if (listener === undefined) {
      this.close(); // the listener was removed; its connections go with it
      return;
    }
    this.listener = listener;
    // RFC 9112 §2.2: empty lines before a request line are ignored; only CRLF pairs.
    let skip = 0;
    while (buf.length >= skip + 2 && buf[skip] === 13 && buf[skip + 1] === 10) skip += 2;
    if (skip > 0) {
      buf = skip === buf.length ? undefined : buf.subarray(skip);
      this.buf = buf;
      this.scanFrom = 0;
      if (buf === undefined) return;
    }
    if (buf[0] === 0x50 && listener.spec.h2c && this.bytesIn === 0 && this.takenByH2c(buf)) return;
    const idx = buf.indexOf(CRLFCRLF, this.scanFrom);
    if (idx < 0) {
      // A head with bare LF line ends (`GET / HTTP/1.0\n\n`, as old tools send) never
      // holds CRLFCRLF: refuse it now (RFC 9112 §2.2 allows it), not at the head timeout.
      if (hasBareLf(buf, this.scanFrom)) {
        this.answerAndClose(400, 'request head lines must end in CRLF, not a bare LF');
        return;
      }
      if (!startsLikeHttp1(buf)) {
        // An HTTP/0.9 client never sends the blank line: say no now, not at the head timeout.
        this.answerAndClose(400, 'request line must be "METHOD target HTTP/1.x" (HTTP/0.9 is not served)');
        return;
      }
      if (buf.length > listener.spec.max_header_bytes) {
        this.answerAndClose(431, 'the request head is larger than this listener accepts');
        return;
      }
      this.scanFrom = Math.max(0, buf.length - 3);
      if (!this.headTimed) this.armHeadTimer(listener.spec.request_head_timeout_ms);
      return;
    }
    const headEnd = idx + 4;
    if (headEnd > listener.spec.max_header_bytes) {
      this.answerAndClose(431, 'the request head is larger than this listener accepts');
      return;
    }
    this.clearTimer();
    this.headTimed = false;
    const headText = buf.toString('latin1', 0, headEnd);
    this.buf = headEnd === buf.length ? undefined : buf.subarray(headEnd);
    this.scanFrom = 0;
    this.bytesIn = headEnd;
    this.bytesOut = 0;
    this.backendMs = -1;
    this.status = 0;
    const parsed = parseRequestHead(headText, listener.spec.max_header_count);
    if ('error' in parsed) {
      this.req = undefined;
      this.answerAndClose(parsed.status, parsed.error);
      return;
    }
    this.startExchange(parsed, listener);
  }

  /**
   * The HTTP/2 preface on a listener with h2c: the socket leaves this session,
   * unserved by it, for an HTTP/2 connection. Decided on the first 16 bytes; false
   * while fewer came or when they are not the preface.
   */
  private takenByH2c(buf: Buffer): boolean {
    if (buf.length < H2_PREFACE_LINE.length) return false;
    if (buf.compare(H2_PREFACE_LINE, 0, H2_PREFACE_LINE.length, 0, H2_PREFACE_LINE.length) !== 0)
      return false;
    const socket = this.socket;
    socket.off('data', onSocketData);
    socket.off('end', onSocketEnd);
    socket.off('error', onSocketError);
    socket.off('close', onSocketClose);
    socket.off('drain', onSocketDrain);
    this.clearTimer();
    this.buf = undefined;
    this.transition(CLOSED);
    this.host.forget(this);
    if (this.host.h2c?.(socket, this.peer, buf) !== true) socket.destroy();
    return true;
  }

  private startExchange(req: RequestHead, listener: ListenerRuntime): void {
    this.req = req;
    this.requestId = req.requestId ?? newRequestId();
    this.transition(EXCHANGE);
    this.host.plane.requestsInFlight++;
    this.reqBody.start(req);
    if (req.close || this.clientEnded || this.host.draining) this.closeAfter = true;

    const d = decideRoute(listener.router, req, this.info.proto, listener.spec.strict_sni, this.served);
    const access = accessDecision(d, req, this.info.address);
    if (access !== undefined) {
      this.target = d.kind === 'forward' ? d : d.target;
      if (access instanceof Promise) this.awaitAuth(req, d as RouteTarget, listener, access);
      else this.answer(access.status, access.message, undefined, { authenticate: access.authenticate });
      return;
    }
    if (d.kind === 'answer') {
      this.target = d.target;
      this.cluster = d.cluster;
      this.answer(d.status, d.message, d.location);
      return;
    }
    this.forward(req, d, listener);
  }

  /** scrypt runs off the event loop: the exchange waits, reading nothing more, then goes on or gets 401. */
  private awaitAuth(
    req: RequestHead,
    d: RouteTarget,
    listener: ListenerRuntime,
    checked: Promise<AccessRefusal | undefined>,
  ): void {
    this.pauseClient();
    void checked.then((refusal) => {
      if (this.stage.name !== 'exchange' || this.req !== req) return; // the client went away meanwhile
      this.resumeClient();
      if (refusal === undefined) this.forward(req, d, listener);
      else this.answer(refusal.status, refusal.message, undefined, { authenticate: refusal.authenticate });
    });
  }

  private forward(req: RequestHead, d: RouteTarget, listener: ListenerRuntime): void {
    this.target = d;
    this.cluster = d.cluster;
    if (d.cluster !== undefined) readAffinity(this.affinity, d.cluster.spec, req, this.info.address);
    // An upgrade this route does not allow goes on as a plain request: a backend
    // that accepted h2c, say, would hand the client a raw HTTP/2 tunnel whose
    // later requests bypass kakehi's routing and deny rules.
    if (req.upgrade !== undefined && !d.frontend.allowed_upgrades.includes(req.upgrade))
      req.upgrade = undefined;
    if (req.upgrade === 'websocket' && !req.wsKey) {
      this.answer(400, 'WebSocket upgrade without Sec-WebSocket-Key');
      return;
    }
    const limited = checkRequestLimits(
      this.host.plane.rateLimits,
      listener.spec,
      d.frontend,
      this.info.address,
      req,
    );
    if (limited !== undefined) {
      this.refuseByLimit(
        limited.status === 429 ? 'rate' : 'body',
        limited.status,
        limited.message,
        limited.retryAfterS,
      );
      return;
    }
    if (req.chunked) this.reqBody.start(req, bodyLimitOf(listener.spec, d.frontend));
    if (!this.reqBody.done) {
      this.armBodyTimer();
      // Body bytes that came with the head.
      const rest = this.buf;
      if (rest !== undefined) {
        this.buf = undefined;
        this.bytesInChunk(rest);
        if (this.stage.name !== 'exchange') return;
      }
    }
    // A pipelined request waits in buf: stop reading until this one is answered.
    if (this.buf !== undefined && this.buf.length > D.PIPELINE_BUFFER_BYTES) this.pauseClient();
    this.connectUpstream();
  }

  // ---- request body ---------------------------------------------------

  private forwardBody(part: Buffer): void {
    this.bytesIn += part.length;
    this.refreshTimer();
    if (this.upstream !== undefined) {
      if (!this.upstream.write(part)) this.pauseClient();
      return;
    }
    this.pending.push(part);
    this.pendingBytes += part.length;
    if (this.pendingBytes > D.PIPELINE_BUFFER_BYTES) this.pauseClient();
  }

  private failRequestBody(reason: string, status = 400): void {
    if (this.res === undefined && this.bytesOut === 0) this.answerAndClose(status, reason);
    else this.abort(reason);
  }

  /** A limit refuses the exchange (request-limits.ts, the backend queue): counted, then answered. */
  private refuseByLimit(
    reason: LimitRefusal['reason'],
    status: number,
    message: string,
    retryAfterS?: number,
    backend = '',
  ): void {
    if (limitRefused.hasSubscribers)
      limitRefused.publish({
        reason,
        listener: this.host.listenerKey,
        cluster: this.cluster?.spec.id ?? '',
        backend,
      } satisfies LimitRefusal);
    if (reason === 'body') this.failRequestBody(message, status);
    else this.answer(status, message, undefined, { retryAfterS });
  }

  // ---- upstream -------------------------------------------------------

  private connectUpstream(): void {
    const cluster = this.cluster!;
    const backend = this.attempts.next(cluster, this.affinity);
    if (backend === undefined) {
      this.answer(503, this.attempts.count === 0 ? 'no backend is available' : 'no backend could be reached');
      return;
    }
    if (backend.full) {
      this.waitFor(backend, cluster);
      return;
    }
    this.backend = backend;
    backend.acquire();
    // send_proxy: a connection whose PROXY header named this client, or a new one.
    const idle = backend.takeIdle(Date.now(), cluster.spec.send_proxy ? this : undefined);
    if (idle !== undefined) {
      this.attach(idle);
      return;
    }
    // send_proxy: the PROXY header naming this client opens the new connection (before any TLS).
    const preface = cluster.spec.send_proxy ? encodeProxyV2(proxyEndpoints(this.peer)) : undefined;
    backend.connect(
      cluster.spec.connect_timeout_ms,
      (err, conn) => {
        if (this.stage.name !== 'exchange' || this.backend !== backend) {
          // The client went away while we connected; keep the connection for others
          // (not with send_proxy: a backend connection there serves one client only).
          if (conn !== undefined) {
            if (cluster.spec.send_proxy) conn.destroy();
            else backend.recycle(conn, Date.now());
          }
          return;
        }
        if (err !== undefined || conn === undefined) {
          backend.release();
          this.backend = undefined;
          if (backendConnectFailure.hasSubscribers) {
            backendConnectFailure.publish({ cluster: cluster.spec.id, backend: backend.id });
          }
          this.onConnectFailed(err ?? new ConnectError('no connection', false));
          return;
        }
        this.attach(conn);
      },
      preface,
    );
  }

  /** Every backend is at its max_connections: wait in the queue of the one picked, or 503 when it is full. */
  private waitFor(backend: BackendRuntime, cluster: ClusterRuntime): void {
    if (backend.wait(this, cluster.spec.queue_size, cluster.spec.queue_timeout_ms)) {
      this.queuedOn = backend;
      return;
    }
    const why = `backend ${backend.id} is at its max_connections (${backend.maxConnections}) and its queue of ${cluster.spec.queue_size} is full`;
    this.refuseByLimit('queue_full', 503, why, undefined, backend.id);
  }

  /** QueueWaiter: a request on the backend waited for ended; pick again (it may be another with room now). */
  onSlot(): void {
    if (this.queuedOn === undefined || this.stage.name !== 'exchange') return;
    this.queuedOn = undefined;
    this.attempts.forgive(); // waiting was no attempt
    this.connectUpstream();
  }

  /** QueueWaiter: waited queue_timeout_ms for a slot. */
  onQueueTimeout(waitedMs: number): void {
    const backend = this.queuedOn;
    if (backend === undefined || this.stage.name !== 'exchange') return;
    this.queuedOn = undefined;
    const why = `backend ${backend.id} stayed at its max_connections (${backend.maxConnections}) for the ${Math.round(waitedMs)} ms this request waited`;
    this.refuseByLimit('queue_timeout', 503, why, undefined, backend.id);
  }

  /** The exchange ends while waiting for a backend: out of its queue. */
  private leaveQueue(): void {
    const b = this.queuedOn;
    if (b === undefined) return;
    this.queuedOn = undefined;
    b.queue.remove(this);
  }

  private onConnectFailed(err: ConnectError): void {
    const cluster = this.cluster!;
    if (this.attempts.canRetry(cluster)) {
      if (backendRetry.hasSubscribers) backendRetry.publish({ cluster: cluster.spec.id, backend: '' });
      this.connectUpstream();
      return;
    }
    this.answer(err.timedOut ? 504 : 502, err.message);
  }

  private attach(conn: UpstreamConnection): void {
    const req = this.req!;
    this.upstream = conn;
    conn.owner = this;
    const head = requestHeadForBackend(req, this.info, this.requestId, this.target?.rules);
    // A new connection's PROXY header, written at connect, named this client.
    if (this.cluster!.spec.send_proxy && conn.boundTo === undefined) conn.boundTo = this;
    const ok = conn.writeHead(head, this.pending);
    if (this.pending.length > 0) this.pending.length = 0; // setting length is a runtime call, even to 0
    this.pendingBytes = 0;
    const now = performance.now();
    this.sentAt = now;
    if (!ok) this.pauseClient();
    else if (!this.reqBody.done) this.resumeClient();
    if (this.reqBody.done) this.armBackendTimer(now);
  }

  onUpstreamDrain(): void {
    const stage = this.stage;
    if (stage.name === 'exchange' && !this.reqBody.done) this.resumeClient();
    else if (stage.name === 'tunnel') stage.tunnel.upstreamDrained();
  }

  onUpstreamData(chunk: Buffer): void {
    const stage = this.stage;
    if (stage.name === 'tunnel') {
      stage.tunnel.fromUpstream(chunk);
      return;
    }
    if (stage.name !== 'exchange') return;
    const now = performance.now();
    this.refreshBackendTimer(now);
    if (this.res === undefined) {
      this.readResponseHead(chunk, now);
      return;
    }
    this.forwardResponse(chunk);
  }

  /** `now`: when the chunk came (performance.now()). */
  private readResponseHead(chunk: Buffer, now: number): void {
    let buf = this.resHeadBuf === undefined ? chunk : Buffer.concat([this.resHeadBuf, chunk]);
    for (;;) {
      const idx = buf.indexOf(CRLFCRLF);
      if (idx < 0) {
        if (buf.length > D.MAX_HEADER_BYTES) this.badResponse('the response head is too large');
        else this.resHeadBuf = buf;
        return;
      }
      const parsed = parseResponseHead(buf.toString('latin1', 0, idx + 4));
      if ('error' in parsed) {
        this.badResponse(parsed.error);
        return;
      }
      const rest = idx + 4 === buf.length ? undefined : buf.subarray(idx + 4);
      if (parsed.status >= 100 && parsed.status < 200 && parsed.status !== 101) {
        // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients as they are.
        if (this.req!.version === 11) {
          const head = responseHeadForClient(parsed, 'default', false);
          this.bytesOut += head.length;
          // Backpressure as for a body: a backend sending 1xx without end to a client
          // that does not read must not grow this socket's buffer without bound.
          if (!this.socket.write(head, 'latin1')) this.upstream?.pause();
        }
        if (rest === undefined) {
          this.resHeadBuf = undefined;
          return;
        }
        buf = rest;
        continue;
      }
      this.resHeadBuf = undefined;
      if (this.backendMs < 0) this.backendMs = now - this.sentAt;
      if (parsed.status === 101) {
        this.startTunnel(parsed, rest);
        return;
      }
      this.startResponse(parsed, rest);
      return;
    }
  }

  private startResponse(res: ResponseHead, rest: Buffer | undefined): void {
    const req = this.req!;
    this.res = res;
    this.status = res.status;
    const body = this.body;
    body.start(res, req.method, this.protocol === 'http/1.1' && req.version === 11);
    if (body.mode === 'close' || body.dechunk || !this.reqBody.done) this.closeAfter = true;
    const keep = !this.closeAfter;
    const connection = keep ? (req.version === 10 ? 'keep-alive' : 'default') : 'close';
    const rules = this.target?.rules?.responseHeaders;
    const sticky = stickySetCookie(this.cluster!.spec, this.backend, this.affinity.sticky);
    const head = responseHeadForClient(
      res,
      connection,
      body.dechunk,
      this.hstsHeader(),
      rules,
      rules === undefined ? undefined : { client: this.info, req, requestId: this.requestId },
      sticky,
    );
    this.bytesOut += head.length;
    if (body.done || rest === undefined) {
      this.socket.write(head, 'latin1');
      if (body.done) this.responseComplete(rest);
      return;
    }
    if (!body.dechunk) {
      // Not de-chunking, the body framer hands on what `rest` holds of the body
      // in one piece, before it completes the exchange: writeClient sends the head with it.
      this.headOut = head;
      this.forwardResponse(rest);
      return;
    }
    this.socket.cork();
    this.socket.write(head, 'latin1');
    this.forwardResponse(rest);
    this.socket.uncork();
  }

  private forwardResponse(chunk: Buffer): void {
    const body = this.body;
    const end = body.feed(chunk, 0);
    if (end < 0) {
      this.abort(`invalid chunked response: ${body.error}`);
      return;
    }
    if (body.done) this.responseComplete(end < chunk.length ? chunk.subarray(end) : undefined);
  }

  /** BodySink: a range of the response body goes to the client. */
  bodyData(chunk: Buffer, from: number, to: number): void {
    this.writeClient(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
  }

  private writeClient(data: Buffer): void {
    this.bytesOut += data.length;
    const head = this.headOut;
    let ok: boolean;
    if (head === undefined) ok = this.socket.write(data);
    else {
      this.headOut = undefined;
      if (data.length <= D.JOINED_BODY_BYTES)
        ok = this.socket.write(head + data.toString('latin1'), 'latin1');
      else {
        this.socket.cork();
        this.socket.write(head, 'latin1');
        ok = this.socket.write(data);
        this.socket.uncork();
      }
    }
    if (!ok) this.upstream?.pause();
  }

  onUpstreamClose(err: Error | undefined): void {
    const conn = this.upstream;
    this.upstream = undefined;
    const stage = this.stage;
    if (stage.name === 'tunnel') {
      stage.tunnel.upstreamClosed();
      return;
    }
    if (this.stage.name !== 'exchange' || conn === undefined) return;
    this.clearBackendTimer();
    this.releaseBackend();
    if (this.res !== undefined && this.body.mode === 'close' && err === undefined) {
      this.responseComplete(undefined);
      return;
    }
    if (this.res === undefined && this.resHeadBuf === undefined) {
      // Nothing of a bodiless idempotent request can have been acted on twice:
      // replay it. On a kept-alive connection the backend had already closed,
      // that is no new attempt; on a fresh one, it counts as a failed attempt.
      const req = this.req!;
      if (IDEMPOTENT.has(req.method) && req.contentLength <= 0 && !req.chunked) {
        if (conn.uses > 0) {
          this.attempts.forgive();
          this.connectUpstream();
          return;
        }
        if (this.attempts.canRetry(this.cluster!)) {
          this.connectUpstream();
          return;
        }
      }
      this.answer(502, `the backend closed the connection before answering${err ? ` (${err.message})` : ''}`);
      return;
    }
    // Mid-response: the client must see the response is cut, never wait on it.
    this.abort('the backend closed the connection in the middle of its response');
  }

  private badResponse(reason: string): void {
    this.upstream?.destroy();
    this.upstream = undefined;
    this.releaseBackend();
    this.answer(502, `invalid response from the backend: ${reason}`);
  }

  private releaseBackend(): void {
    if (this.backend !== undefined) {
      this.backend.release();
      this.backend = undefined;
    }
  }

  private responseComplete(extra: Buffer | undefined): void {
    this.clearBackendTimer();
    const conn = this.upstream;
    this.upstream = undefined;
    const backend = this.backend;
    if (conn !== undefined && backend !== undefined) {
      const res = this.res!;
      const reusable = extra === undefined && !res.close && this.reqBody.done && this.body.mode !== 'close';
      if (reusable) {
        if (res.keepAliveTimeoutS > 0) conn.keepAliveMs = res.keepAliveTimeoutS * 1000;
        if (conn.boundTo === this) this.keepBound(conn);
        backend.recycle(conn, Date.now());
      } else conn.destroy();
    }
    this.releaseBackend();
    this.finishExchange(undefined);
  }

  /**
   * send_proxy: the one idle backend connection bound to this client that it
   * keeps (a second one, on another backend, replaces it), closed when it ends.
   */
  private keepBound(conn: UpstreamConnection): void {
    const old = this.bound;
    if (old !== undefined && old !== conn && old.owner === undefined) old.destroy();
    this.bound = conn;
  }

  /** The bound idle connection goes with the client: nobody else may use it. */
  private dropBound(): void {
    const conn = this.bound;
    this.bound = undefined;
    if (conn !== undefined && conn.owner === undefined) conn.destroy();
  }

  // ---- WebSocket and other upgrades --------------------------------------

  private startTunnel(res: ResponseHead, rest: Buffer | undefined): void {
    const req = this.req!;
    if (req.upgrade === undefined) {
      this.badResponse('101 Switching Protocols to a request that asked for no upgrade');
      return;
    }
    if (req.upgrade === 'websocket' && !res.wsAccept) {
      this.badResponse('101 to a WebSocket request without Sec-WebSocket-Accept');
      return;
    }
    // RFC 9110 §15.2.2: the 101 names the protocol switched to; another than the
    // one allowed and asked for would tunnel a protocol the route never allowed.
    const switched = res.values[res.lower.indexOf('upgrade')]?.toLowerCase();
    if (switched !== req.upgrade) {
      this.badResponse(`101 switching to "${switched ?? ''}", not to the "${req.upgrade}" asked for`);
      return;
    }
    this.status = 101;
    this.res = res;
    this.clearBackendTimer();
    this.clearTimer(); // the tunnel keeps its own idle timer
    // The tunnel owns the backend connection from here (the backend stays acquired until the end).
    const up = this.upstream!;
    this.upstream = undefined;
    const tunnel = new Tunnel(this.socket, up, this.cluster!.spec.websocket_idle_timeout_ms, () =>
      this.abort('WebSocket idle timeout'),
    );
    this.transition({ name: 'tunnel', tunnel });
    const head = responseHeadForClient(res, 'upgrade', false);
    this.bytesOut += head.length;
    this.socket.write(head, 'latin1');
    if (rest !== undefined) tunnel.fromUpstream(rest);
    // Bytes the client sent after its upgrade request belong to the new protocol.
    const early = this.buf;
    this.buf = undefined;
    if (early !== undefined) tunnel.fromClient(early);
    this.resumeClient();
    if (this.clientEnded) tunnel.clientEnded();
  }

  // ---- answers and the end of an exchange --------------------------------

  /** The Strict-Transport-Security value for this exchange's route, on HTTPS only. */
  private hstsHeader(): string | undefined {
    if (this.info.proto !== 'https') return undefined;
    const h = this.target?.frontend.hsts ?? this.cluster?.spec.hsts;
    return h === undefined ? undefined : hstsValue(h);
  }

  /** Answers on kakehi's own behalf; the connection stays open when it can. */
  private answer(
    status: number,
    message: string,
    location?: string,
    extra: { authenticate?: string | undefined; retryAfterS?: number | undefined } = {},
  ): void {
    const { authenticate, retryAfterS } = extra;
    if (!this.reqBody.done) this.closeAfter = true; // the unread body can't be skipped safely
    const listener = this.listener;
    const key = String(status);
    const template = this.cluster?.spec.answers[key] ?? listener?.spec.answers[key];
    const buf = answer({
      status,
      requestId: this.requestId,
      message,
      template,
      close: this.closeAfter,
      ...(location === undefined ? {} : { location }),
      ...(authenticate === undefined ? {} : { authenticate }),
      ...(retryAfterS === undefined ? {} : { retryAfterS }),
      headOnly: this.req?.method === 'HEAD',
    });
    this.status = status;
    this.bytesOut += buf.length;
    this.socket.write(buf);
    if (this.upstream !== undefined) {
      this.upstream.destroy();
      this.upstream = undefined;
    }
    this.releaseBackend();
    this.finishExchange(status >= 400 ? message : undefined);
  }

  private answerAndClose(status: number, message: string): void {
    // Before a head is parsed there is no request id yet (or the last one's).
    if (this.req === undefined) this.requestId = newRequestId();
    this.closeAfter = true;
    // Called mid-exchange too (a bad body): only a fresh exchange starts a request.
    if (this.stage.name !== 'exchange') {
      this.host.plane.requestsInFlight++;
      this.transition(EXCHANGE);
    }
    this.answer(status, message);
  }

  private finishExchange(error: string | undefined): void {
    this.clearBackendTimer();
    const now = performance.now();
    this.publish(error, now);
    this.clearExchange();
    // A client that half-closed during the exchange (after its head was read) has
    // no more requests coming: close now, not at the keep-alive timeout.
    if (this.closeAfter || this.host.draining || (this.clientEnded && this.buf === undefined)) {
      this.close();
      return;
    }
    this.transition(HEAD);
    this.resumeClient();
    // A pipelined request waited in buf: its exchange begins now, not when its bytes came.
    this.started = now;
    const pipelined = this.buf !== undefined;
    if (pipelined) this.readHead();
    // After a pipelined exchange, `now` is old: the lists keep entries in deadline order.
    if (this.stage.name === 'head' && this.buf === undefined) this.armIdle(pipelined ? undefined : now);
  }

  /**
   * Lets go of what the exchange held (response head, request id, attempts…):
   * an idle keep-alive connection keeps nothing of its last request.
   */
  private clearExchange(): void {
    this.leaveQueue();
    this.req = undefined;
    this.requestId = '';
    this.target = undefined;
    this.cluster = undefined;
    this.attempts.clear();
    this.affinity.sticky = undefined;
    this.reqBody.clear();
    if (this.pending.length > 0) this.pending.length = 0; // setting length is a runtime call, even to 0
    this.pendingBytes = 0;
    this.resHeadBuf = undefined;
    this.res = undefined;
    this.headOut = undefined;
    this.body.clear();
  }

  /** `now`: when the request ended (performance.now()). */
  private publish(error: string | undefined, now = performance.now()): void {
    this.host.plane.requestsInFlight--;
    if (!requestEnd.hasSubscribers) return;
    const req = this.req;
    const event: RequestEnd = {
      listener: this.host.listenerKey,
      client: `${this.info.address}:${this.peer.client.port}`,
      method: req?.method ?? '',
      host: req?.host ?? '',
      path: req?.path ?? '',
      status: this.status,
      cluster: this.cluster?.spec.id,
      backend: this.attempts.last?.id,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: now - this.started,
      backendMs: this.backendMs,
      requestId: this.requestId,
      tags: this.target?.frontend.tags,
      protocol: this.protocol,
      error,
    };
    requestEnd.publish(event);
  }

  /** Ends everything now: both sockets, the exchange, the timers. Idempotent. */
  private abort(reason: string): void {
    const stage = this.stage;
    if (stage.name === 'closed') return;
    const inFlight = stage.name === 'exchange' || stage.name === 'tunnel';
    this.transition(CLOSED);
    if (stage.name === 'tunnel') {
      stage.tunnel.stop();
      this.bytesIn += stage.tunnel.bytesIn;
      this.bytesOut += stage.tunnel.bytesOut;
    }
    this.clearTimer();
    this.clearBackendTimer();
    if (this.upstream !== undefined) {
      const conn = this.upstream;
      this.upstream = undefined;
      conn.destroy();
    }
    this.releaseBackend();
    this.leaveQueue();
    this.dropBound();
    if (inFlight && this.req !== undefined) {
      if (this.status === 0) this.status = 499; // the nginx convention: client closed first
      this.publish(stage.name === 'tunnel' ? undefined : reason);
    }
    this.socket.destroy();
    this.host.forget(this);
  }

  /** Ends the connection after what was written is sent; a peer that won't read is cut off. */
  private close(): void {
    if (this.stage.name === 'closed') return;
    this.transition(CLOSED);
    this.clearTimer();
    this.clearBackendTimer();
    this.dropBound();
    this.socket.destroySoon();
    // An HTTP/2 stream's adapter lingers on its own, and only when the client has
    // left data unread (H2StreamSocket.finish): no timer per stream here.
    if (this.protocol === 'http/1.1') setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
    this.host.forget(this);
  }

  // ---- timers ----------------------------------------------------------

  /** The client side's deadline (idle, head, body or drain grace); one at a time. */
  private armTimer(ms: number, deadline: ClientDeadline, now?: number): void {
    this.deadline = deadline;
    sessionDeadlines.arm(this, ms, now);
  }

  private clearTimer(): void {
    sessionDeadlines.cancel(this);
  }

  private refreshTimer(): void {
    sessionDeadlines.refresh(this);
  }

  /** Deadlined: the client side's deadline passed. */
  onDeadline(): void {
    switch (this.deadline) {
      case 'idle':
      case 'drain':
        this.close();
        return;
      case 'head':
        this.answerAndClose(408, 'the request head did not arrive in time');
        return;
      case 'body':
        this.failRequestBodyTimeout();
        return;
    }
  }

  private armIdle(now?: number): void {
    const listener = this.host.plane.listener(this.host.listenerKey);
    this.armTimer(listener?.spec.keepalive_timeout_ms ?? D.KEEPALIVE_TIMEOUT_MS, 'idle', now);
  }

  private armHeadTimer(ms: number): void {
    this.headTimed = true;
    // Counted from the first byte and never extended: a slowloris client can't
    // keep a connection by trickling bytes (RFC 9112 §9.3 leaves this to us).
    this.armTimer(ms, 'head');
  }

  private armBodyTimer(): void {
    const ms = this.listener?.spec.front_timeout_ms ?? D.FRONT_TIMEOUT_MS;
    this.armTimer(ms, 'body');
  }

  private failRequestBodyTimeout(): void {
    if (this.res === undefined && this.bytesOut === 0) this.answerAndClose(408, 'the request body stalled');
    else this.abort('the request body stalled');
  }

  private armBackendTimer(now = performance.now()): void {
    const ms = this.cluster?.spec.backend_timeout_ms ?? D.BACKEND_TIMEOUT_MS;
    this.upDeadline.ms = ms;
    sessionDeadlines.arm(this.upDeadline, ms, now);
  }

  private refreshBackendTimer(now: number): void {
    sessionDeadlines.refresh(this.upDeadline, now);
  }

  private clearBackendTimer(): void {
    sessionDeadlines.cancel(this.upDeadline);
  }

  /** The backend side's deadline (upDeadline) passed. */
  onEntryDeadline(entry: DeadlineEntry): void {
    this.onBackendTimeout(entry.ms);
  }

  private onBackendTimeout(ms: number): void {
    if (this.stage.name !== 'exchange') return;
    if (this.res === undefined) {
      this.closeAfter = this.closeAfter || this.resHeadBuf !== undefined;
      this.answer(504, `the backend did not answer within ${ms} ms`);
    } else this.abort(`the backend stalled for ${ms} ms within its response`);
  }
}

// Node calls a listener with its emitter as `this`: these five serve every session.
function onSocketData(this: SessionSocket, chunk: Buffer): void {
  this[SESSION].onClientData(chunk);
}

function onSocketEnd(this: SessionSocket): void {
  this[SESSION].onClientEnd();
}

function onSocketError(this: SessionSocket): void {
  this[SESSION].kill('client connection error');
}

function onSocketClose(this: SessionSocket): void {
  this[SESSION].kill('client closed the connection');
}

function onSocketDrain(this: SessionSocket): void {
  this[SESSION].onClientDrain();
}

const hstsValues = new WeakMap<Hsts, string>();
function hstsValue(h: Hsts): string {
  let v = hstsValues.get(h);
  if (v === undefined) {
    v = `max-age=${h.max_age}${h.include_subdomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
    hstsValues.set(h, v);
  }
  return v;
}

/** A LF at or after `from` that no CR precedes: only the bytes not yet scanned are read. */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let p = buf.indexOf(10, from); p >= 0; p = buf.indexOf(10, p + 1)) {
    if (p === 0 || buf[p - 1] !== 13) return true;
  }
  return false;
}
