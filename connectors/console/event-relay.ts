// The proxy's event stream (subscribe_events) relayed to browsers as
// server-sent events: one subscription for the whole console, a short history so
// a page opened late still shows the recent timeline, and every browser bounded:
// one that does not read is dropped, never buffered for.

import type { ServerResponse } from 'node:http';
import type { ClientEvent, CommandClient } from '../../src/client/command-client.js';
import type { Logger } from '../../src/log/logger.js';

export const HISTORY_EVENTS = 200;
/** A change of many objects makes a large event: the history is bounded in bytes as well. */
export const HISTORY_BYTES = 256 * 1024;
export const MAX_EVENT_CLIENTS = 32;
/** Bytes a browser may leave unread before it is dropped. */
export const MAX_CLIENT_BACKLOG_BYTES = 1024 * 1024;
const KEEPALIVE_MS = 15_000;

export interface TimelineEvent {
  at: string;
  event: ClientEvent;
}

export class EventRelay {
  // Each event as its SSE frame, ready to send to a browser that opens late.
  readonly #history: string[] = [];
  #historyBytes = 0;
  readonly #clients = new Set<ServerResponse>();
  readonly #keepalive: NodeJS.Timeout;
  #stopped = false;

  constructor(
    private readonly client: CommandClient,
    private readonly log: Logger,
  ) {
    this.#keepalive = setInterval(() => {
      for (const res of this.#clients) this.#write(res, ': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.#keepalive.unref();
    void this.#follow();
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  async #follow(): Promise<void> {
    try {
      for await (const event of this.client.events()) {
        if (this.#stopped) return;
        const item: TimelineEvent = { at: new Date().toISOString(), event };
        const frame = `data: ${JSON.stringify(item)}\n\n`;
        this.#history.push(frame);
        this.#historyBytes += frame.length;
        // Under the per-browser backlog, so a browser opening late is never dropped for the history alone.
        while (this.#history.length > HISTORY_EVENTS || this.#historyBytes > HISTORY_BYTES) {
          this.#historyBytes -= (this.#history.shift() as string).length;
        }
        for (const res of this.#clients) this.#write(res, frame);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'event stream ended');
    }
  }

  /** Opens an SSE stream on `res`: the history first, then live events. */
  attach(res: ServerResponse): boolean {
    if (this.#clients.size >= MAX_EVENT_CLIENTS) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    // The request timeout of the server must not cut a stream that is meant to stay open.
    res.socket?.setTimeout(0);
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
    for (const frame of this.#history) this.#write(res, frame);
    return true;
  }

  #write(res: ServerResponse, frame: string): void {
    if (res.writableLength > MAX_CLIENT_BACKLOG_BYTES) {
      this.log.warn({ backlog: res.writableLength }, 'dropping a browser that does not read its events');
      this.#clients.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#keepalive);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}
