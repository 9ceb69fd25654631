// One TCP or TLS connection to a broker (or to a proxy, with proxy_to_broker_url):
// CONNECT/CONNECTED handshake, request/response correlation by request_id with
// timeouts, PING/PONG keepalive, AUTH_CHALLENGE answers, and dispatch of
// producer/consumer commands to their registered handlers.

import net from 'node:net';
import tls from 'node:tls';
import type { AuthProvider } from './auth.js';
import { PulsarClientError } from './errors.js';
import { encodeCommand, encodePayloadCommand, type Frame, FrameDecoder } from './frame.js';
import {
  type BaseCommand,
  CLIENT_VERSION,
  CommandType,
  type MessageMetadata,
  PROTOCOL_VERSION,
  SERVER_ERRORS,
} from './pulsar-api.js';

export interface TlsOptions {
  /** PEM CA bundle; defaults to Node's root store. */
  ca?: string | Buffer;
  /** Defaults to true; false disables certificate AND hostname checks (tests only). */
  rejectUnauthorized?: boolean;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface ConnectionOptions {
  /** pulsar://host:port or pulsar+ssl://host:port of the socket to open. */
  url: string;
  /** Set when `url` is a proxy: the broker it should forward to. */
  proxyToBrokerUrl?: string;
  tls?: TlsOptions;
  auth?: AuthProvider;
  connectTimeoutMs: number;
  operationTimeoutMs: number;
  keepAliveIntervalMs: number;
  /** Largest inbound frame accepted; CONNECTED may announce a smaller max_message_size. */
  maxFrameBytes: number;
  onEvent?: (ev: ConnectionEvent) => void;
}

export type ConnectionEvent =
  | { type: 'connected'; url: string; serverVersion: string }
  | { type: 'disconnected'; url: string; error: Error }
  | { type: 'auth-refreshed'; url: string };

export interface CommandHandler {
  onFrame(frame: Frame): void;
  /** The connection is gone; the handler should reconnect. */
  onConnectionClosed(error: Error): void;
}

interface Pending {
  resolve: (cmd: BaseCommand) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024;

/** request_id of a response command, if it is one. */
function responseRequestId(cmd: BaseCommand): bigint | undefined {
  return (
    cmd.success?.request_id ??
    cmd.error?.request_id ??
    cmd.producer_success?.request_id ??
    cmd.partitionMetadataResponse?.request_id ??
    cmd.lookupTopicResponse?.request_id ??
    cmd.getLastMessageIdResponse?.request_id ??
    cmd.ackResponse?.request_id
  );
}

export class Connection {
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<bigint, Pending>();
  private readonly consumers = new Map<bigint, CommandHandler>();
  private readonly producers = new Map<bigint, CommandHandler>();
  private readonly closeListeners: Array<(err: Error) => void> = [];
  private nextRequestId = 1n;
  private lastReceived = Date.now();
  private keepAlive: NodeJS.Timeout | undefined;
  private closedWith: Error | undefined;
  maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  serverVersion = '';

  private constructor(
    readonly opts: ConnectionOptions,
    socket: net.Socket,
  ) {
    this.socket = socket;
    this.decoder = new FrameDecoder(opts.maxFrameBytes);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  static async open(opts: ConnectionOptions): Promise<Connection> {
    const u = new URL(opts.url);
    const secure = u.protocol === 'pulsar+ssl:';
    if (!secure && u.protocol !== 'pulsar:') {
      throw new PulsarClientError('PULSAR_INVALID_ARGUMENT', `unsupported service URL scheme ${u.protocol}`);
    }
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || (secure ? 6651 : 6650));
    const socket = secure
      ? tls.connect({
          host,
          port,
          ca: opts.tls?.ca,
          cert: opts.tls?.cert,
          key: opts.tls?.key,
          rejectUnauthorized: opts.tls?.rejectUnauthorized ?? true,
          // SNI only for names, never for IP literals (RFC 6066 §3).
          servername: net.isIP(host) ? undefined : host,
          minVersion: 'TLSv1.2',
        })
      : net.connect({ host, port });
    socket.setNoDelay(true);
    const conn = new Connection(opts, socket);
    await conn.handshake(secure);
    return conn;
  }

  private async handshake(secure: boolean): Promise<void> {
    const { opts, socket } = this;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(
          new PulsarClientError(
            'PULSAR_TIMEOUT',
            `connect to ${opts.url} timed out after ${opts.connectTimeoutMs} ms`,
          ),
        );
      }, opts.connectTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(
          err instanceof PulsarClientError
            ? err
            : new PulsarClientError('PULSAR_CONNECT_FAILED', `${opts.url}: ${err.message}`, { cause: err }),
        );
      };
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('socket closed during handshake')));
      socket.once(secure ? 'secureConnect' : 'connect', async () => {
        try {
          const connect: NonNullable<BaseCommand['connect']> = {
            client_version: CLIENT_VERSION,
            protocol_version: PROTOCOL_VERSION,
            feature_flags: { supports_auth_refresh: true },
          };
          if (opts.auth) {
            connect.auth_method_name = opts.auth.method;
            connect.auth_data = await opts.auth.getAuthData();
          }
          if (opts.proxyToBrokerUrl) connect.proxy_to_broker_url = opts.proxyToBrokerUrl;
          socket.write(encodeCommand({ type: CommandType.CONNECT, connect }));
        } catch (err) {
          fail(err as Error);
        }
      });
      const onData = (chunk: Buffer) => {
        try {
          this.decoder.push(chunk);
          for (let f = this.decoder.next(); f; f = this.decoder.next()) {
            const c = f.command;
            if (c.type === CommandType.CONNECTED && c.connected) {
              clearTimeout(timer);
              socket.removeListener('data', onData);
              socket.removeAllListeners('error');
              socket.removeAllListeners('close');
              this.serverVersion = c.connected.server_version;
              if (c.connected.max_message_size) this.maxMessageSize = c.connected.max_message_size;
              this.attach();
              resolve();
              return;
            }
            if (c.type === CommandType.ERROR && c.error) {
              const name = SERVER_ERRORS[c.error.error] ?? String(c.error.error);
              const code = name === 'AuthenticationError' ? 'PULSAR_AUTH_FAILED' : 'PULSAR_CONNECT_FAILED';
              fail(new PulsarClientError(code, `${opts.url}: ${c.error.message}`, { serverError: name }));
              return;
            }
            if (c.type === CommandType.AUTH_CHALLENGE) {
              void this.answerChallenge();
            }
          }
        } catch (err) {
          fail(err as Error);
        }
      };
      socket.on('data', onData);
    });
  }

  /** Wires the steady-state handlers once CONNECTED arrived. */
  private attach(): void {
    const { socket } = this;
    socket.on('data', (chunk: Buffer) => {
      this.lastReceived = Date.now();
      try {
        this.decoder.push(chunk);
        for (let f = this.decoder.next(); f; f = this.decoder.next()) this.dispatch(f);
      } catch (err) {
        this.destroy(
          new PulsarClientError('PULSAR_PROTOCOL_ERROR', `${this.opts.url}: ${(err as Error).message}`, {
            cause: err,
          }),
        );
      }
    });
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () =>
      this.destroy(new PulsarClientError('PULSAR_CONNECTION_CLOSED', `${this.opts.url}: connection closed`)),
    );
    const interval = this.opts.keepAliveIntervalMs;
    this.keepAlive = setInterval(() => {
      const idle = Date.now() - this.lastReceived;
      if (idle >= 2 * interval) {
        this.destroy(
          new PulsarClientError('PULSAR_TIMEOUT', `${this.opts.url}: no answer to keepalive PING`),
        );
      } else if (idle >= interval) {
        this.write(encodeCommand({ type: CommandType.PING, ping: {} }));
      }
    }, interval);
    this.keepAlive.unref();
    this.opts.onEvent?.({ type: 'connected', url: this.opts.url, serverVersion: this.serverVersion });
  }

  private async answerChallenge(): Promise<void> {
    const auth = this.opts.auth;
    if (!auth) return;
    try {
      const data = await auth.getAuthData();
      this.write(
        encodeCommand({
          type: CommandType.AUTH_RESPONSE,
          authResponse: {
            client_version: CLIENT_VERSION,
            protocol_version: PROTOCOL_VERSION,
            response: { auth_method_name: auth.method, auth_data: data },
          },
        }),
      );
      this.opts.onEvent?.({ type: 'auth-refreshed', url: this.opts.url });
    } catch (err) {
      this.destroy(
        new PulsarClientError('PULSAR_AUTH_FAILED', 'auth provider failed on challenge', { cause: err }),
      );
    }
  }

  private dispatch(f: Frame): void {
    const c = f.command;
    switch (c.type) {
      case CommandType.PING:
        this.write(encodeCommand({ type: CommandType.PONG, pong: {} }));
        return;
      case CommandType.PONG:
        return;
      case CommandType.AUTH_CHALLENGE:
        void this.answerChallenge();
        return;
      case CommandType.MESSAGE:
        this.consumers.get(c.message?.consumer_id ?? -1n)?.onFrame(f);
        return;
      case CommandType.CLOSE_CONSUMER:
        this.consumers.get(c.close_consumer?.consumer_id ?? -1n)?.onFrame(f);
        return;
      case CommandType.REACHED_END_OF_TOPIC:
        this.consumers.get(c.reachedEndOfTopic?.consumer_id ?? -1n)?.onFrame(f);
        return;
      case CommandType.ACTIVE_CONSUMER_CHANGE:
        this.consumers.get(c.active_consumer_change?.consumer_id ?? -1n)?.onFrame(f);
        return;
      case CommandType.SEND_RECEIPT:
        this.producers.get(c.send_receipt?.producer_id ?? -1n)?.onFrame(f);
        return;
      case CommandType.SEND_ERROR:
        this.producers.get(c.send_error?.producer_id ?? -1n)?.onFrame(f);
        return;
      case CommandType.CLOSE_PRODUCER:
        this.producers.get(c.close_producer?.producer_id ?? -1n)?.onFrame(f);
        return;
      default:
        break;
    }
    const id = responseRequestId(c);
    if (id === undefined) return;
    // The broker may first answer PRODUCER with producer_ready=false (waiting for exclusive access).
    if (c.type === CommandType.PRODUCER_SUCCESS && c.producer_success?.producer_ready === false) return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (c.type === CommandType.ERROR && c.error) {
      const name = SERVER_ERRORS[c.error.error] ?? String(c.error.error);
      p.reject(
        new PulsarClientError('PULSAR_SERVER_ERROR', `${name}: ${c.error.message}`, { serverError: name }),
      );
    } else {
      p.resolve(c);
    }
  }

  newRequestId(): bigint {
    return this.nextRequestId++;
  }

  /** Sends a command carrying `requestId` and resolves with the broker's answer to it. */
  request(
    requestId: bigint,
    command: BaseCommand,
    timeoutMs = this.opts.operationTimeoutMs,
  ): Promise<BaseCommand> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(
          new PulsarClientError(
            'PULSAR_TIMEOUT',
            `${CommandType[command.type]} to ${this.opts.url} got no answer in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      this.write(encodeCommand(command));
    });
  }

  send(command: BaseCommand): boolean {
    return this.write(encodeCommand(command));
  }

  sendWithPayload(command: BaseCommand, metadata: MessageMetadata, payload: Uint8Array): boolean {
    return this.write(encodePayloadCommand(command, metadata, payload));
  }

  write(bytes: Uint8Array): boolean {
    if (this.closedWith) return false;
    return this.socket.write(bytes);
  }

  registerConsumer(id: bigint, h: CommandHandler): void {
    this.consumers.set(id, h);
  }
  unregisterConsumer(id: bigint): void {
    this.consumers.delete(id);
  }
  registerProducer(id: bigint, h: CommandHandler): void {
    this.producers.set(id, h);
  }
  unregisterProducer(id: bigint): void {
    this.producers.delete(id);
  }

  onClose(listener: (err: Error) => void): void {
    if (this.closedWith) listener(this.closedWith);
    else this.closeListeners.push(listener);
  }

  /** Closes the socket; every pending request fails and every handler is told. */
  destroy(error: Error = new PulsarClientError('PULSAR_CLOSED', `${this.opts.url}: closed by client`)): void {
    if (this.closedWith) return;
    this.closedWith = error;
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.socket.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
    const handlers = [...this.consumers.values(), ...this.producers.values()];
    this.consumers.clear();
    this.producers.clear();
    for (const h of handlers) h.onConnectionClosed(error);
    for (const l of this.closeListeners.splice(0)) l(error);
    this.opts.onEvent?.({ type: 'disconnected', url: this.opts.url, error });
  }
}
