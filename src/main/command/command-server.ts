// The command socket: a Unix socket speaking newline-delimited JSON
// (docs/protocol.md). Each connection may have several requests in flight;
// malformed input gets an error naming it and the connection stays usable; only
// an oversized frame closes it. Nothing a client sends can crash the proxy.

import { chmodSync, existsSync, lstatSync, rmSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../../command/frame-decoder.js';
import {
  type CommandRequest,
  encodeResponse,
  parseRequest,
  type ResponseFrame,
  tooLargeResponse,
} from '../../command/frames.js';
import { KakehiError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';

/** What a request handler may do besides returning its result. */
export interface RequestContext {
  processing(message: string): void;
  /** Streams events to this connection until it closes (subscribe_events). */
  subscribe(onEvent: (send: (event: { type: string; [k: string]: unknown }) => void) => () => void): void;
}

export type Handler = (req: CommandRequest, ctx: RequestContext) => Promise<unknown>;

const MAX_IN_FLIGHT_PER_CONNECTION = 64;
const MAX_CONNECTIONS = 256;
/** A subscriber that reads slower than events come is dropped past this much unsent output. */
const MAX_UNSENT_BYTES = 8 * 1024 * 1024;

export class CommandServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Set by handedOver(): the path leads to a successor main now. */
  #handedOver = false;
  /** Set by movedTo(): the path this socket was renamed to, which close() must remove itself. */
  #movedTo: string | undefined;

  constructor(
    private readonly boundPath: string,
    private readonly mode: number,
    private readonly handle: Handler,
    private readonly log: Logger,
  ) {
    this.server = createServer((socket) => this.accept(socket));
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Where clients reach this socket. */
  get path(): string {
    return this.#movedTo ?? this.boundPath;
  }

  /**
   * The old main renamed this socket (bound beside the real path) over the real
   * path (ctl upgrade --main). Node removes the path a socket was bound at when
   * it closes, which is not this one any more.
   */
  movedTo(path: string): void {
    this.#movedTo = path;
  }

  /**
   * The path now names the successor's socket. From here close() leaves the
   * listening socket open: closing it would remove the path, and with it the
   * successor's socket. It goes when the process exits.
   */
  handedOver(): void {
    this.#handedOver = true;
  }

  /** Binds the socket; a stale file is replaced, a live kakehi on the same path is an error. */
  async listen(): Promise<void> {
    if (existsSync(this.boundPath)) {
      if (!lstatSync(this.boundPath).isSocket()) {
        throw new KakehiError(
          'KKH_SOCKET_IN_USE',
          `${this.boundPath} exists and is not a socket; refusing to replace it`,
        );
      }
      if (await answers(this.boundPath)) {
        throw new KakehiError(
          'KKH_SOCKET_IN_USE',
          `another kakehi is running on the command socket ${this.boundPath}; stop it or configure another command_socket`,
        );
      }
      unlinkSync(this.boundPath); // stale: left by a process that died
    }
    // The socket must never exist with a wider mode than asked, even briefly.
    const old = process.umask(0o777 & ~this.mode);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.boundPath, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(old);
    }
    chmodSync(this.boundPath, this.mode);
  }

  /** Ends every open connection once what was written to it is sent (a hand-over: clients reconnect to the new main). */
  endConnections(): void {
    for (const s of this.sockets) s.end();
  }

  /** Drops every open connection and keeps listening (also used by tests' fakes). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.dropConnections();
    if (this.#handedOver) return Promise.resolve();
    return new Promise((resolve) =>
      this.server.close(() => {
        if (this.#movedTo !== undefined) rmSync(this.#movedTo, { force: true });
        resolve();
      }),
    );
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const decoder = new FrameDecoder();
    let inFlight = 0;
    const unsubscribers: (() => void)[] = [];
    const write = (frame: ResponseFrame) => {
      if (socket.destroyed) return;
      socket.write(encodeResponse(frame));
      if (socket.writableLength > MAX_UNSENT_BYTES) {
        this.log.warn('command client reads too slowly; closing its connection');
        socket.destroy();
      }
    };
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const u of unsubscribers.splice(0)) u();
    });
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.kind === 'too_large') {
          write(tooLargeResponse(f.limit));
          socket.end();
          return;
        }
        const parsed = parseRequest(f.line);
        if (!parsed.ok) {
          write(parsed.response);
          continue;
        }
        const req = parsed.request;
        if (inFlight >= MAX_IN_FLIGHT_PER_CONNECTION) {
          write({
            id: req.id,
            status: 'error',
            error: {
              code: 'KKH_REQUEST_INVALID',
              message: `at most ${MAX_IN_FLIGHT_PER_CONNECTION} requests may be in flight on one connection`,
            },
          });
          continue;
        }
        inFlight++;
        const ctx: RequestContext = {
          processing: (message) => write({ id: req.id, status: 'processing', message }),
          subscribe: (register) => {
            unsubscribers.push(register((event) => write({ id: req.id, status: 'event', event })));
          },
        };
        this.handle(req, ctx).then(
          (result) => {
            inFlight--;
            write({ id: req.id, status: 'ok', result: result ?? null });
          },
          (err: unknown) => {
            inFlight--;
            write({ id: req.id, status: 'error', error: toWireError(err) });
            if (!(err instanceof KakehiError))
              this.log.error({ err, type: req.type }, 'command failed unexpectedly');
          },
        );
      }
    });
  }
}

function toWireError(err: unknown): {
  code: string;
  message: string;
  issues?: { path: string; reason: string }[];
} {
  if (err instanceof KakehiError) return { code: err.code, message: err.message, issues: [...err.issues] };
  return { code: 'KKH_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** True when something accepts connections on the socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(true); // it accepted but is slow: still alive
    }, 1000);
    s.on('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
