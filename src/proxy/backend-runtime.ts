// A backend as the data plane sees it: its connection pool (bounded idle and
// total), its in-flight count for the balancer, and its health from connection
// outcomes: consecutive failures back it off exponentially, with jitter, and
// past a threshold it is reported down until a connection succeeds. Its admin
// state (drain, maintenance) comes from the operator and keeps it out of picks.
// At its max_connections it is full: out of picks, and a request that must
// have it waits in its queue (backend-queue.ts) until one of its requests ends.
// With its cluster's backend_tls, a connection is made once its TLS handshake
// is done, and the pool never hands one made under other TLS settings.

import { connect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { backoffMs } from '../backoff.js';
import type { Candidate } from '../balancer/candidate.js';
import { stickyIdOf } from '../balancer/sticky-id.js';
import * as D from '../defaults.js';
import type { BackendTls } from '../model/backend-tls.js';
import { type Backend, type BackendState, keyOf } from '../model/objects.js';
import { BackendQueue, type QueueWaiter } from './backend-queue.js';
import {
  type BackendTlsError,
  type BackendTlsHandshake,
  backendTlsError,
  backendTlsHandshake,
  connectionOptions,
  type PreparedBackendTls,
  prepareBackendTls,
  serverNameFor,
  tlsFailureReason,
} from './backend-tls.js';
import type { HealthEvent } from './request-events.js';
import { UpstreamConnection } from './upstream-connection.js';

export class ConnectError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/** What one worker sees of a backend now: `ctl backends` adds these up over the workers. */
export interface BackendLive {
  cluster: string;
  id: string;
  /** In-flight requests (and tunnels) on it. */
  in_flight: number;
  /** Requests waiting for it (it is at max_connections). */
  queued: number;
  /** Open connections to it, idle or in use. */
  connections: number;
  /** Consecutive failed connection attempts; 0 once one succeeds. */
  failures: number;
  down: boolean;
  /** ISO time it was reported down, while it is. */
  down_since: string | null;
  last_error: string | null;
  last_error_at: string | null;
}

export class BackendRuntime implements Candidate {
  readonly id: string;
  /** The sticky cookie value naming it (sticky-id.ts); kept in step with the spec by the data plane. */
  stickyId: string;
  weight: number;
  backup: boolean;
  /** Admin state: only an active backend is picked; the others finish what they carry. */
  state: BackendState;
  available = true;
  active = 0;
  /** Open connections, idle or in use. */
  open = 0;
  failures = 0;
  retryAt = 0;
  down = false;
  /** Main's health check holds it down: picked only when its cluster fails open. */
  checkedDown = false;
  /** Removed from the state: finish in-flight requests, keep nothing idle. */
  retired = false;
  /** In-flight requests (active) it takes at once; set from its spec, changed in place by a hot change. */
  maxConnections: number;
  /** Requests waiting for a slot while it is full. */
  readonly queue = new BackendQueue();
  private downSince = 0;
  private lastError: string | undefined;
  private lastErrorAt = 0;
  private readonly idle: UpstreamConnection[] = [];
  private readonly host: string;
  private readonly port: number;
  /** Its cluster's backend_tls, made ready; undefined: plain TCP. */
  private tls: PreparedBackendTls | undefined;
  /** The last TLS session the backend gave, to resume the next handshake; one, so bounded. */
  private tlsSession: Buffer | undefined;
  /**
   * Connections refused by a TLS alert after the handshake (tlsRefused) with
   * none answered since: while > 0 a handshake alone is no success, or the
   * failures would restart at every connection and never take the backend out.
   */
  private refusedInARow = 0;

  constructor(
    readonly spec: Backend,
    private readonly onHealth: (e: HealthEvent) => void,
  ) {
    this.id = spec.id;
    this.stickyId = stickyIdOf(spec);
    this.weight = spec.weight;
    this.backup = spec.backup;
    this.state = spec.state;
    this.maxConnections = spec.max_connections;
    const colon = spec.address.lastIndexOf(':');
    this.host = spec.address.slice(0, colon).replace(/^\[|\]$/g, '');
    this.port = Number(spec.address.slice(colon + 1));
  }

  /** Re-evaluates `available` from the backoff clock; called before a pick. */
  refresh(now: number): void {
    this.available = this.usable(now) && !this.checkedDown && !this.full;
  }

  /** At max_connections: a new request waits in its queue, or goes to another backend. */
  get full(): boolean {
    return this.active >= this.maxConnections;
  }

  /** A hot change of max_connections: a higher limit lets waiting requests in at once. */
  setMaxConnections(n: number): void {
    this.maxConnections = n;
    this.wakeQueued();
  }

  /**
   * Waits for a slot (the caller answers 503 on false: the queue is full).
   * The waiter is told once: onSlot when a request ends, or on timeout.
   */
  wait(waiter: QueueWaiter, size: number, timeoutMs: number): boolean {
    return this.queue.enqueue(waiter, size, timeoutMs);
  }

  /**
   * Gives free slots to waiting requests, longest waiting first. Each takes its
   * slot synchronously (acquire) or gives it up, so a newcomer can't take it in between.
   * Out of rotation (drained, retired), every waiter is told at once, to go elsewhere.
   */
  private wakeQueued(): void {
    const out = this.retired || this.state !== 'active';
    while (this.queue.length > 0 && (out || !this.full)) this.queue.shift()?.onSlot();
  }

  /** Could take a request but for health: what fail-open may still pick. */
  usable(now: number): boolean {
    // Weight 0 drains a backend under every algorithm, as operators expect from HAProxy.
    return this.weight > 0 && this.state === 'active' && !this.retired && now >= this.retryAt;
  }

  /**
   * Main's health check says down or up. Up clears what this worker's traffic
   * held against it (failures, backoff): the probes are the newer word.
   */
  setCheckedDown(down: boolean): void {
    if (this.checkedDown === down) return;
    this.checkedDown = down;
    if (down) return;
    this.failures = 0;
    this.retryAt = 0;
    this.markUp();
  }

  /**
   * Its cluster's backend_tls, on every state served. New settings (or none)
   * close the idle connections and forget the session made under the old ones.
   */
  setTls(spec: BackendTls | undefined): void {
    const next = spec === undefined ? undefined : prepareBackendTls(spec);
    if ((next?.key ?? '') === this.tlsKey) {
      this.tls = next;
      return;
    }
    this.tls = next;
    this.tlsSession = undefined;
    for (const conn of [...this.idle]) conn.destroy();
  }

  private get tlsKey(): string {
    return this.tls?.key ?? '';
  }

  /** The operator's drain or maintenance: no new requests, so idle connections serve nothing more. */
  setState(state: BackendState): void {
    this.state = state;
    if (state !== 'active') for (const conn of [...this.idle]) conn.destroy();
    this.wakeQueued();
  }

  live(): BackendLive {
    const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);
    return {
      cluster: this.spec.cluster,
      id: this.id,
      in_flight: this.active,
      queued: this.queue.length,
      connections: this.open,
      failures: this.failures,
      down: this.down,
      down_since: this.down ? iso(this.downSince) : null,
      last_error: this.lastError ?? null,
      last_error_at: iso(this.lastErrorAt),
    };
  }

  /**
   * An idle pooled connection, the most recent first, or undefined; stale ones
   * are dropped on the way. `client`: only one bound to that client connection
   * (send_proxy); without it, only one bound to none.
   */
  takeIdle(now: number, client?: object): UpstreamConnection | undefined {
    const idle = this.idle;
    for (let i = idle.length - 1; i >= 0; i--) {
      const conn = idle[i]!;
      if (conn.boundTo !== client) continue;
      // The newest is the last: taken with pop, which makes no array as splice does.
      if (i === idle.length - 1) idle.pop();
      else idle.splice(i, 1);
      if (!conn.closed && conn.tlsKey === this.tlsKey && now - conn.idleSince < this.idleLimitMs(conn))
        return conn;
      conn.destroy();
    }
    return undefined;
  }

  private idleLimitMs(conn: UpstreamConnection): number {
    // Keep clear of the backend's own timeout by a second, so we rarely write
    // to a connection it is closing.
    return conn.keepAliveMs > 0
      ? Math.min(D.BACKEND_IDLE_TIMEOUT_MS, conn.keepAliveMs - 1000)
      : D.BACKEND_IDLE_TIMEOUT_MS;
  }

  /**
   * A new connection, its TLS handshake done when the cluster has backend_tls.
   * `preface` (a PROXY header) is the first thing written, in clear, before any TLS.
   */
  connect(
    timeoutMs: number,
    done: (err: ConnectError | undefined, conn: UpstreamConnection | undefined) => void,
    preface?: Buffer,
  ): void {
    const tlsKey = this.tlsKey;
    this.dial(
      timeoutMs,
      false,
      (err, socket) =>
        done(err, socket === undefined ? undefined : new UpstreamConnection(socket, this, tlsKey)),
      preface,
    );
  }

  /**
   * A bare socket for a tcp listener's connection, half-open allowed (each side
   * ends on its own); never pooled. Its owner calls streamClosed() once it closes.
   */
  connectStream(
    timeoutMs: number,
    done: (err: ConnectError | undefined, socket: Socket | undefined) => void,
  ): void {
    this.dial(timeoutMs, true, done);
  }

  /** A socket from connectStream closed. */
  streamClosed(): void {
    this.open--;
  }

  private dial(
    timeoutMs: number,
    allowHalfOpen: boolean,
    done: (err: ConnectError | undefined, socket: Socket | undefined) => void,
    preface?: Buffer,
  ): void {
    // acquire() came first: past the limit only a tcp connection can be here (HTTP requests queue).
    if (this.active > this.maxConnections) {
      done(
        new ConnectError(
          `backend ${keyOf('backend', this.spec)} is at its max_connections (${this.maxConnections})`,
          false,
        ),
        undefined,
      );
      return;
    }
    // The backend sees at most max_connections from this worker: an idle kept-alive
    // connection goes (the oldest) before a new one opens past the limit.
    if (this.open >= this.maxConnections) this.idle[0]?.destroy();
    this.open++;
    const tls = this.tls;
    const socket = connect({ host: this.host, port: this.port, allowHalfOpen });
    /** The TLS socket over `socket`, once the TCP connection is made. */
    let secure: TLSSocket | undefined;
    let settled = false;
    // One deadline for the TCP connection and the TLS handshake both.
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      (secure ?? socket).destroy();
      this.open--;
      const stage = secure === undefined ? 'connecting to' : 'the TLS handshake with';
      const e = new ConnectError(`${stage} ${this.spec.address} timed out after ${timeoutMs} ms`, true);
      if (secure !== undefined) this.tlsFailed('timeout', e.message, tls);
      this.failed(e.message);
      done(e, undefined);
    }, timeoutMs);
    const onError = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      (secure ?? socket).destroy();
      this.open--;
      let e: ConnectError;
      if (secure === undefined) {
        e = new ConnectError(`connecting to ${this.spec.address} failed: ${err.message}`, false);
      } else {
        // A session the backend would not resume is no use again.
        this.tlsSession = undefined;
        e = new ConnectError(
          `the TLS handshake with backend ${keyOf('backend', this.spec)} (${this.spec.address}) failed: ${err.message}`,
          false,
        );
        const reason = tlsFailureReason(err);
        // The same refusal as tlsRefused's, when the alert came before our side was done.
        if (reason === 'alert') this.refusedInARow++;
        this.tlsFailed(reason, err.message, tls);
      }
      this.failed(e.message);
      done(e, undefined);
    };
    const connected = (s: Socket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Under TLS the TCP socket keeps it: settled, it does nothing more.
      s.off('error', onError);
      if (this.refusedInARow === 0) this.succeeded();
      done(undefined, s);
    };
    // Stays on under TLS too: the TLS socket reports the errors that matter, and
    // an error event with no listener would end the process.
    socket.on('error', onError);
    socket.once('connect', () => {
      if (settled) return;
      // The PROXY header goes first and in clear: the backend reads it before any TLS.
      if (preface !== undefined) socket.write(preface);
      if (tls === undefined) {
        connected(socket);
        return;
      }
      // allowHalfOpen: a tcp listener's stream ends each way on its own; Node's
      // tls.connect reads it, though its types leave it out.
      const options = {
        ...connectionOptions(tls, this.host, this.port, this.tlsSession),
        socket,
        allowHalfOpen,
      };
      const s = tlsConnect(options);
      secure = s;
      s.on('session', (session: Buffer) => {
        if (this.tls === tls) this.tlsSession = session;
      });
      s.once('error', onError);
      s.once('secureConnect', () => {
        if (backendTlsHandshake.hasSubscribers)
          backendTlsHandshake.publish({
            cluster: this.spec.cluster,
            backend: this.id,
            resumed: s.isSessionReused(),
          } satisfies BackendTlsHandshake);
        connected(s);
      });
    });
  }

  private tlsFailed(
    reason: BackendTlsError['reason'],
    detail: string,
    tls: PreparedBackendTls | undefined,
  ): void {
    if (!backendTlsError.hasSubscribers) return;
    const name = tls === undefined ? undefined : serverNameFor(tls, this.host);
    backendTlsError.publish({
      cluster: this.spec.cluster,
      backend: this.id,
      address: this.spec.address,
      server_name: name ?? null,
      reason,
      detail,
    } satisfies BackendTlsError);
  }

  /** An exchange starts using this backend; `active` is what the balancers weigh. */
  acquire(): void {
    this.active++;
  }

  /** The exchange that acquired this backend is done with it (answered, failed or cut). */
  release(): void {
    this.active--;
    if (this.queue.length > 0) this.wakeQueued();
  }

  /** Pool hook: a TLS alert refused a connection before its first request (a client certificate judged late). */
  tlsRefused(err: Error): void {
    this.tlsSession = undefined;
    this.tlsFailed(tlsFailureReason(err), err.message, this.tls);
    this.refusedInARow++;
    this.failures = Math.max(this.failures, this.refusedInARow - 1);
    this.failed(
      `backend ${keyOf('backend', this.spec)} (${this.spec.address}) refused the TLS connection: ${err.message}`,
    );
  }

  /** Pool hook: a TLS connection's first answer; after refusals, the backend serves again. */
  tlsAnswered(): void {
    if (this.refusedInARow === 0) return;
    this.refusedInARow = 0;
    this.succeeded();
  }

  /** Pool hook: a connection closed for good. */
  forget(conn: UpstreamConnection): void {
    this.open--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Takes a connection back into the idle pool, or closes it when it can't be kept. */
  recycle(conn: UpstreamConnection, now: number): void {
    conn.owner = undefined;
    conn.uses++;
    // Its last owner may have paused it for a slow client, in the very chunk
    // that completed the response: pooled paused, it would carry the next
    // request and never deliver the answer. Resumed, stray bytes or a close
    // from the backend reach the pool's handlers too.
    conn.resume();
    if (
      this.retired ||
      this.state !== 'active' ||
      conn.closed ||
      conn.tlsKey !== this.tlsKey ||
      this.idle.length >= D.BACKEND_MAX_IDLE
    ) {
      conn.destroy();
      return;
    }
    conn.idleSince = now;
    this.idle.push(conn);
  }

  /** Closes idle connections past their time; returns how many remain. */
  sweep(now: number): void {
    for (const conn of [...this.idle]) {
      if (now - conn.idleSince >= this.idleLimitMs(conn)) conn.destroy();
    }
  }

  retire(): void {
    this.retired = true;
    for (const conn of [...this.idle]) conn.destroy();
    this.wakeQueued();
  }

  private failed(message: string): void {
    this.failures++;
    this.lastError = message;
    this.lastErrorAt = Date.now();
    this.retryAt =
      Date.now() +
      backoffMs(
        this.failures - 1,
        { initialMs: D.BACKEND_BACKOFF_BASE_MS, maxMs: D.BACKEND_BACKOFF_MAX_MS, jitter: 0.5 },
        Math.random(),
      );
    this.available = false;
    if (!this.down && this.failures >= D.BACKEND_DOWN_AFTER_FAILURES) {
      this.down = true;
      this.downSince = this.lastErrorAt;
      this.onHealth({
        type: 'backend_down',
        backend: this.id,
        cluster: this.spec.cluster,
        address: this.spec.address,
        reason: `${this.failures} connection attempts in a row failed; last: ${message}`,
      });
    }
  }

  private succeeded(): void {
    this.failures = 0;
    this.available = true;
    this.markUp();
  }

  private markUp(): void {
    if (this.down) {
      this.down = false;
      this.onHealth({
        type: 'backend_up',
        backend: this.id,
        cluster: this.spec.cluster,
        address: this.spec.address,
      });
    }
  }
}
