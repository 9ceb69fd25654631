// A backend as the data plane sees it: its connection pool (bounded idle and
// total), its in-flight count for the balancer, and its health from connection
// outcomes: consecutive failures back it off exponentially, with jitter, and
// past a threshold it is reported down until a connection succeeds. Its admin
// state (drain, maintenance) comes from the operator and keeps it out of picks.
// At its max_connections it is full: out of picks, and a request that must
// have it waits in its queue (backend-queue.ts) until one of its requests ends.

import { connect, type Socket } from 'node:net';
import { backoffMs } from '../backoff.js';
import type { Candidate } from '../balancer/candidate.js';
import { stickyIdOf } from '../balancer/sticky-id.js';
import * as D from '../defaults.js';
import { type Backend, type BackendState, keyOf } from '../model/objects.js';
import { BackendQueue, type QueueWaiter } from './backend-queue.js';
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
      idle.splice(i, 1);
      if (!conn.closed && now - conn.idleSince < this.idleLimitMs(conn)) return conn;
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

  connect(
    timeoutMs: number,
    done: (err: ConnectError | undefined, conn: UpstreamConnection | undefined) => void,
  ): void {
    this.dial(timeoutMs, false, (err, socket) =>
      done(err, socket === undefined ? undefined : new UpstreamConnection(socket, this)),
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
    const socket = connect({ host: this.host, port: this.port, allowHalfOpen });
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      this.open--;
      const e = new ConnectError(`connecting to ${this.spec.address} timed out after ${timeoutMs} ms`, true);
      this.failed(e.message);
      done(e, undefined);
    }, timeoutMs);
    const onError = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      this.open--;
      const e = new ConnectError(`connecting to ${this.spec.address} failed: ${err.message}`, false);
      this.failed(e.message);
      done(e, undefined);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', onError);
      this.succeeded();
      done(undefined, socket);
    });
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
    if (this.retired || this.state !== 'active' || conn.closed || this.idle.length >= D.BACKEND_MAX_IDLE) {
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
