// The client side of the command socket, used by `kakehi ctl` and the connectors:
// requests multiplexed by id with per-request timeouts and a bounded number in
// flight, the event stream as a typed async iterator, and optional reconnect with
// exponential backoff and jitter. Failures are typed: the proxy said no
// (CommandError) or the socket failed (CommandTransportError).
// Over 450 lines: one connection's life (connect, retry-until-connected, frames,
// pending requests, event iterators, close) is one state machine; split, its
// halves would share every field.

import { createConnection, type Socket } from 'node:net';
import { backoffMs } from '../backoff.js';
import { FrameDecoder, MAX_FRAME_BYTES } from '../command/frame-decoder.js';
import {
  encodeRequest,
  parseResponse,
  type RequestId,
  type RequestType,
  type ResponseFrame,
} from '../command/frames.js';
import type { ResultOf } from '../command/protocol.js';
import { type ClientEvent, EventQueue, toClientEvent } from './client-events.js';
import { CommandError, CommandTransportError, type TransportFailure } from './command-errors.js';

export type { ClientEvent, ProxyEvent } from './client-events.js';
export { CommandError, CommandTransportError, type TransportFailure } from './command-errors.js';

export const CONNECT_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const MAX_PENDING_REQUESTS = 1_024;
export const MAX_BUFFERED_EVENTS = 1_000;

export interface ReconnectOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Fraction of each delay taken away at random (0 = none, 1 = "full jitter"). */
  jitter?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

export interface ClientOptions {
  /**
   * Connect timeout, and each request's timeout unless requestTimeoutMs is set. A
   * request's timer starts again at each `processing` frame: it bounds silence.
   */
  timeoutMs?: number;
  requestTimeoutMs?: number;
  maxPending?: number;
  /** Largest response frame accepted; a larger one drops the connection. */
  maxFrameBytes?: number;
  /** Per events() iterator; older events are dropped (and counted) past it. */
  maxBufferedEvents?: number;
  /** Off by default (ctl fails fast); connectors turn it on. */
  reconnect?: boolean | ReconnectOptions;
  /** For tests: the jitter's source of randomness. */
  random?: () => number;
}

export interface RequestOptions {
  onProcessing?: (message: string) => void;
  timeoutMs?: number;
}

interface Pending {
  type: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProcessing: ((m: string) => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

type State = 'open' | 'reconnecting' | 'closed';

export class CommandClient {
  readonly socketPath: string;
  readonly #opts: Required<Omit<ClientOptions, 'reconnect' | 'requestTimeoutMs'>> & {
    requestTimeoutMs: number;
  };
  readonly #reconnect: Required<ReconnectOptions> | undefined;
  #socket: Socket | undefined;
  #state: State = 'open';
  #nextId = 1;
  readonly #pending = new Map<RequestId, Pending>();
  readonly #queues = new Set<EventQueue>();
  #subscribeId: RequestId | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  // Why the last connection is going away, when the proxy said so before closing.
  #lastWords: string | undefined;
  readonly #connectWaiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();

  private constructor(socketPath: string, options: ClientOptions) {
    this.socketPath = socketPath;
    const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
    this.#opts = {
      timeoutMs,
      requestTimeoutMs: options.requestTimeoutMs ?? options.timeoutMs ?? REQUEST_TIMEOUT_MS,
      maxPending: options.maxPending ?? MAX_PENDING_REQUESTS,
      maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES,
      maxBufferedEvents: options.maxBufferedEvents ?? MAX_BUFFERED_EVENTS,
      random: options.random ?? Math.random,
    };
    const r = options.reconnect;
    this.#reconnect = r
      ? {
          initialDelayMs: 100,
          maxDelayMs: 10_000,
          factor: 2,
          jitter: 0.5,
          maxAttempts: Number.POSITIVE_INFINITY,
          ...(r === true ? {} : r),
        }
      : undefined;
  }

  /** Connects once; rejects with CommandTransportError ('unreachable' or 'timeout'). */
  static async connect(socketPath: string, options: ClientOptions = {}): Promise<CommandClient> {
    const client = new CommandClient(socketPath, options);
    client.#attach(await client.#dial());
    return client;
  }

  /**
   * Retry-until-connected, for connectors started before (or without) the proxy:
   * returns at once and dials now, then again with the reconnect backoff until a
   * connection is made (a 'reconnected' event), and after every loss, until
   * close(). Requests fail with 'disconnected' meanwhile; whenConnected() waits.
   */
  static open(socketPath: string, options: ClientOptions = {}): CommandClient {
    const client = new CommandClient(socketPath, { ...options, reconnect: options.reconnect || true });
    client.#state = 'reconnecting';
    client.#scheduleReconnect(1, 0);
    return client;
  }

  /** Resolves once connected (at once if so); rejects when the client closes or `signal` aborts. */
  whenConnected(signal?: AbortSignal): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(this.#transport('closed', 'the client is closed'));
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      this.#connectWaiters.add(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          this.#connectWaiters.delete(waiter);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  get connected(): boolean {
    return this.#state === 'open' && this.#socket !== undefined;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Sends one request; resolves with its `result` (typed by src/command/protocol.ts
   * for its type), after any processing frames. The second form, with a result type
   * given explicitly, is kept for callers that read a result the protocol does not type.
   */
  request<T extends RequestType>(
    type: T,
    body?: Record<string, unknown>,
    options?: RequestOptions,
  ): Promise<ResultOf<T>>;
  request<R>(type: RequestType, body?: Record<string, unknown>, options?: RequestOptions): Promise<R>;
  request(
    type: RequestType,
    body: Record<string, unknown> = {},
    options: RequestOptions = {},
  ): Promise<unknown> {
    return this.#send<unknown>(type, body, options).promise;
  }

  #send<T>(
    type: RequestType,
    body: Record<string, unknown>,
    options: RequestOptions,
  ): { id: RequestId | undefined; promise: Promise<T> } {
    let sentId: RequestId | undefined;
    const promise = new Promise<T>((resolve, reject) => {
      const socket = this.#socket;
      if (this.#state === 'closed') {
        return reject(this.#transport('closed', `cannot send ${type}: the client is closed`));
      }
      if (socket === undefined || this.#state !== 'open') {
        return reject(this.#transport('disconnected', `cannot send ${type}: not connected (reconnecting)`));
      }
      if (this.#pending.size >= this.#opts.maxPending) {
        return reject(
          this.#transport('overloaded', `cannot send ${type}: ${this.#opts.maxPending} requests in flight`),
        );
      }
      const id = this.#nextId++;
      sentId = id;
      const line = encodeRequest(id, type, body);
      // The proxy would close the connection on it, failing every other request too.
      if (Buffer.byteLength(line) - 1 > this.#opts.maxFrameBytes) {
        return reject(
          this.#transport('overloaded', `${type} is over the ${this.#opts.maxFrameBytes}-byte frame limit`),
        );
      }
      if (socket.writableLength > 4 * this.#opts.maxFrameBytes) {
        return reject(this.#transport('overloaded', `cannot send ${type}: the proxy is not reading`));
      }
      const timeoutMs = options.timeoutMs ?? this.#opts.requestTimeoutMs;
      // Infinity: a subscription, answered by events for as long as the connection lives.
      const timer =
        timeoutMs === Number.POSITIVE_INFINITY
          ? undefined
          : setTimeout(() => {
              this.#pending.delete(id);
              reject(
                this.#transport('timeout', `${type} (id ${id}): no answer from the proxy in ${timeoutMs} ms`),
              );
            }, timeoutMs);
      this.#pending.set(id, {
        type,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProcessing: options.onProcessing,
        timer,
      });
      socket.write(line);
    });
    return { id: sentId, promise };
  }

  /**
   * The proxy's events (subscribing on first use, and again after a reconnect) and
   * the client's own connection events. Ends when the client closes, or when the
   * connection is lost for good.
   */
  events(): AsyncIterableIterator<ClientEvent> {
    const queue = new EventQueue(this.#opts.maxBufferedEvents);
    if (this.#state === 'closed') queue.end();
    else {
      this.#queues.add(queue);
      if (this.#subscribeId === undefined && this.#state === 'open') this.#subscribe();
    }
    const done = (): IteratorResult<ClientEvent> => ({ done: true, value: undefined });
    const iterator: AsyncIterableIterator<ClientEvent> = {
      next: async () => {
        for (;;) {
          if (queue.dropped > 0) {
            const count = queue.dropped;
            queue.dropped = 0;
            return { done: false, value: { type: 'events_dropped', count } };
          }
          const ev = queue.items.shift();
          if (ev !== undefined) return { done: false, value: ev };
          if (queue.ended) {
            this.#queues.delete(queue);
            if (queue.error) {
              const e = queue.error;
              queue.error = undefined;
              throw e;
            }
            return done();
          }
          await new Promise<void>((r) => {
            queue.waiting.push(r);
          });
        }
      },
      return: async () => {
        queue.end();
        queue.items = [];
        this.#queues.delete(queue);
        return done();
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Rejects what is pending, ends every events() iterator, closes the socket. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#failPending('closed', 'the client was closed');
    for (const w of this.#connectWaiters) w.reject(this.#transport('closed', 'the client was closed'));
    this.#connectWaiters.clear();
    for (const q of this.#queues) q.end();
    this.#queues.clear();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => socket.destroy(), 1_000);
      socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      socket.end();
    });
  }

  #transport(reason: TransportFailure, message: string, cause?: unknown): CommandTransportError {
    return new CommandTransportError(reason, message, this.socketPath, cause);
  }

  #dial(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: this.socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          this.#transport(
            'timeout',
            `no connection to the proxy at ${this.socketPath} within ${this.#opts.timeoutMs} ms`,
          ),
        );
      }, this.#opts.timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(this.#transport('unreachable', unreachableMessage(this.socketPath, err), err));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
    });
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    this.#lastWords = undefined;
    const decoder = new FrameDecoder({ maxFrameBytes: this.#opts.maxFrameBytes });
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.kind === 'too_large') {
          return this.#protocolFailure(socket, `a response over the ${f.limit}-byte frame limit`);
        }
        const frame = parseResponse(f.line);
        if (typeof frame === 'string') return this.#protocolFailure(socket, frame);
        this.#dispatch(frame);
      }
    });
    socket.on('error', (err) => {
      this.#lastWords ??= err.message;
    });
    socket.on('close', () => this.#onClose(socket));
  }

  #protocolFailure(socket: Socket, what: string): void {
    this.#lastWords = `protocol error: ${what}`;
    this.#failPending('protocol', `the proxy sent ${what}; connection dropped`);
    socket.destroy();
  }

  #dispatch(frame: ResponseFrame): void {
    if (frame.status === 'event') {
      if (frame.id === this.#subscribeId) this.#fanOut(toClientEvent(frame.event));
      return;
    }
    if (frame.id === null) {
      // An answer to a line the proxy could not read (e.g. a frame over its limit).
      if (frame.status === 'error') this.#lastWords = `${frame.error.code}: ${frame.error.message}`;
      return;
    }
    const p = this.#pending.get(frame.id);
    if (p === undefined) return; // timed out already: a late answer is harmless
    if (frame.status === 'processing') {
      // The proxy is alive and working on it: the deadline bounds silence, not the
      // whole of a long upgrade or a large transaction that reports progress.
      p.timer?.refresh();
      p.onProcessing?.(frame.message);
      return;
    }
    this.#pending.delete(frame.id);
    clearTimeout(p.timer);
    if (frame.status === 'ok') p.resolve(frame.result);
    else p.reject(new CommandError(frame.error, p.type, frame.id));
  }

  #fanOut(ev: ClientEvent): void {
    for (const q of this.#queues) q.push(ev);
  }

  #subscribe(): void {
    const { id, promise } = this.#send('subscribe_events', {}, { timeoutMs: Number.POSITIVE_INFINITY });
    this.#subscribeId = id;
    promise.catch((err: Error) => {
      if (this.#subscribeId !== id) return;
      this.#subscribeId = undefined;
      // Refused by the proxy: iterators can't get events, so they end with the reason.
      if (err instanceof CommandError) for (const q of this.#queues) q.end(err);
    });
  }

  #failPending(reason: TransportFailure, why: string): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(this.#transport(reason, `${p.type} (id ${id}): ${why}`));
    }
    this.#pending.clear();
  }

  #onClose(socket: Socket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#subscribeId = undefined;
    if (this.#state === 'closed') return;
    const reason = this.#lastWords ?? 'the proxy closed the connection';
    this.#failPending('disconnected', `${reason} before answering`);
    const willReconnect = this.#reconnect !== undefined;
    this.#fanOut({ type: 'disconnected', reason, willReconnect });
    if (!willReconnect) {
      this.#state = 'closed';
      for (const q of this.#queues) q.end();
      this.#queues.clear();
      return;
    }
    this.#state = 'reconnecting';
    this.#scheduleReconnect(1);
  }

  #scheduleReconnect(attempt: number, delayMs?: number): void {
    const r = this.#reconnect!;
    if (attempt > r.maxAttempts) {
      this.#state = 'closed';
      this.#fanOut({
        type: 'disconnected',
        reason: `gave up after ${r.maxAttempts} reconnect attempts`,
        willReconnect: false,
      });
      for (const w of this.#connectWaiters) {
        w.reject(this.#transport('unreachable', `gave up after ${r.maxAttempts} connect attempts`));
      }
      this.#connectWaiters.clear();
      for (const q of this.#queues) q.end();
      this.#queues.clear();
      return;
    }
    const delay = delayMs ?? reconnectDelayMs(attempt, r, this.#opts.random());
    this.#reconnectTimer = setTimeout(() => {
      this.#dial().then(
        (socket) => {
          if (this.#state === 'closed') {
            socket.destroy();
            return;
          }
          this.#state = 'open';
          this.#attach(socket);
          this.#fanOut({ type: 'reconnected', attempts: attempt });
          if (this.#queues.size > 0) this.#subscribe();
          for (const w of this.#connectWaiters) w.resolve();
          this.#connectWaiters.clear();
        },
        () => {
          if (this.#state !== 'closed') this.#scheduleReconnect(attempt + 1);
        },
      );
    }, delay);
  }
}

/**
 * The wait before reconnect attempt `attempt` (1-based): exponential, capped, less
 * a random share of up to `jitter` so that many clients of a restarted proxy
 * don't all knock at once.
 */
export function reconnectDelayMs(attempt: number, r: Required<ReconnectOptions>, random: number): number {
  return backoffMs(
    attempt - 1,
    { initialMs: r.initialDelayMs, maxMs: r.maxDelayMs, factor: r.factor, jitter: r.jitter },
    random,
  );
}

function unreachableMessage(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `no command socket at ${path} (is kakehi running, and is this its command_socket?)`;
    case 'ECONNREFUSED':
      return `nothing accepts connections on ${path} (a stale socket file from a stopped kakehi?)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${path} (the socket is mode 0600: run as the proxy's user)`;
    case 'ENOTSOCK':
      return `${path} is not a socket`;
    default:
      return `cannot connect to ${path}: ${err.message}`;
  }
}
