// A command-socket fake for client, ctl and connector tests: the real
// CommandServer (framing, malformed-input and oversized-frame answers, error
// encoding) on a Unix socket in a temp dir, answering each request through a
// callback-style handler the test writes. Records every request it saw.
// Tests that need to send frames the real server never would (a broken
// response line) use a raw socket of their own instead (command-client.test.ts).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandRequest } from '../../src/command/frames.js';
import { type ErrorCode, type FieldIssue, KakehiError } from '../../src/errors.js';
import { createLogger } from '../../src/log/logger.js';
import { CommandServer, type RequestContext } from '../../src/main/command/command-server.js';

export interface Reply {
  processing(message: string): void;
  ok(result: unknown): void;
  error(code: string, message: string, issues?: FieldIssue[]): void;
  event(event: { type: string; [field: string]: unknown }): void;
  /** Drops every open connection (the proxy going away mid-request). */
  dropConnections(): void;
}

export type FakeHandler = (req: CommandRequest, reply: Reply) => void;

type EventSender = (event: { type: string; [field: string]: unknown }) => void;

export class FakeCommandServer {
  readonly dir: string;
  readonly path: string;
  readonly requests: CommandRequest[] = [];
  handler: FakeHandler;
  readonly #server: CommandServer;
  #waiters: { count: number; resolve: () => void }[] = [];

  /** Not listening yet: call listen(), or use start(). */
  constructor(handler: FakeHandler = (_req, r) => r.ok({})) {
    this.dir = mkdtempSync(join(tmpdir(), 'kakehi-cmd-'));
    this.path = join(this.dir, 'kakehi.sock');
    this.handler = handler;
    this.#server = new CommandServer(
      this.path,
      0o600,
      (req, ctx) => this.#handle(req, ctx),
      createLogger('silent'),
    );
  }

  static async start(handler: FakeHandler = (_req, r) => r.ok({})): Promise<FakeCommandServer> {
    const s = new FakeCommandServer(handler);
    await s.listen();
    return s;
  }

  listen(): Promise<void> {
    return this.#server.listen();
  }

  /** Resolves once `count` requests in total have arrived. */
  received(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  /** Drops every open connection, keeps listening. */
  dropConnections(): void {
    this.#server.dropConnections();
  }

  /** Stops listening and drops connections (listen() starts again on the same path). */
  stop(): Promise<void> {
    return this.#server.close();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // The handler answers through callbacks; the real server wants a promise. The
  // promise is returned as is (no async wrapper) so that an event sent after
  // ok() is chained behind the server's own write of the ok frame, keeping the
  // order the handler used.
  #handle(req: CommandRequest, ctx: RequestContext): Promise<unknown> {
    this.requests.push(req);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.requests.length < w.count) return true;
      w.resolve();
      return false;
    });
    let send: EventSender | undefined;
    const sender = (): EventSender => {
      if (!send)
        ctx.subscribe((s) => {
          send = s;
          return () => {};
        });
      return send!;
    };
    let settled: Promise<unknown> | undefined;
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const answer = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.handler(req, {
      processing: (message) => ctx.processing(message),
      ok: (result) => {
        settled ??= answer;
        resolve(result);
      },
      error: (code, message, issues = []) => {
        settled ??= answer;
        reject(new KakehiError(code as ErrorCode, message, { issues }));
      },
      event: (event) => {
        const s = sender();
        const write = () => s(event);
        if (settled) void settled.then(write, write);
        else write();
      },
      dropConnections: () => this.#server.dropConnections(),
    });
    return answer;
  }
}
