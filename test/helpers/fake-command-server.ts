// A tiny command-socket server for client and ctl tests: a real Unix socket in a
// temp dir, framed by the real FrameDecoder and parseRequest, answering each
// request through a handler the test writes. Records every request it saw.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder } from '../../src/command/frame-decoder.js';
import {
  type CommandRequest,
  encodeResponse,
  parseRequest,
  type ResponseFrame,
  tooLargeResponse,
} from '../../src/command/frames.js';
import type { FieldIssue } from '../../src/errors.js';

export interface Reply {
  processing(message: string): void;
  ok(result: unknown): void;
  error(code: string, message: string, issues?: FieldIssue[]): void;
  event(event: { type: string; [field: string]: unknown }): void;
  raw(line: string): void;
  socket: Socket;
}

export type FakeHandler = (req: CommandRequest, reply: Reply) => void;

export class FakeCommandServer {
  readonly dir: string;
  readonly path: string;
  readonly requests: CommandRequest[] = [];
  readonly sockets = new Set<Socket>();
  handler: FakeHandler;
  #server: Server | undefined;
  #waiters: { count: number; resolve: () => void }[] = [];

  private constructor(handler: FakeHandler) {
    this.dir = mkdtempSync(join(tmpdir(), 'kakehi-cmd-'));
    this.path = join(this.dir, 'kakehi.sock');
    this.handler = handler;
  }

  static async start(handler: FakeHandler = (_req, r) => r.ok({})): Promise<FakeCommandServer> {
    const s = new FakeCommandServer(handler);
    await s.listen();
    return s;
  }

  listen(): Promise<void> {
    const server = createServer((socket) => this.#serve(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
  }

  /** Resolves once `count` requests in total have arrived. */
  received(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  /** Drops every open connection, keeps listening. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Stops listening and drops connections (listen() starts again on the same path). */
  async stop(): Promise<void> {
    this.dropConnections();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  #serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const decoder = new FrameDecoder();
    const send = (f: ResponseFrame) => {
      if (!socket.destroyed) socket.write(encodeResponse(f));
    };
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.kind === 'too_large') {
          send(tooLargeResponse(f.limit));
          socket.end();
          return;
        }
        const parsed = parseRequest(f.line);
        if (!parsed.ok) {
          send(parsed.response);
          continue;
        }
        const req = parsed.request;
        this.requests.push(req);
        this.#waiters = this.#waiters.filter((w) => {
          if (this.requests.length < w.count) return true;
          w.resolve();
          return false;
        });
        const id = req.id;
        this.handler(req, {
          socket,
          processing: (message) => send({ id, status: 'processing', message }),
          ok: (result) => send({ id, status: 'ok', result }),
          error: (code, message, issues = []) =>
            send({ id, status: 'error', error: { code, message, issues } }),
          event: (event) => send({ id, status: 'event', event }),
          raw: (line) => {
            if (!socket.destroyed) socket.write(line);
          },
        });
      }
    });
  }
}
