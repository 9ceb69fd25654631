// What `for await (const ev of client.events())` yields: the proxy's events and
// the client's own connection events as one type-tagged union, and the bounded
// per-iterator queue that holds them until the consumer reads.

import { PROXY_EVENT_TYPES, type ProxyEvent } from '../command/protocol.js';

export type { ProxyEvent };
export type Fields = { readonly [field: string]: unknown };

/** What `for await (const ev of client.events())` yields; switch on `type`. */
export type ClientEvent =
  | ProxyEvent
  /** An event type this client does not know yet (a newer proxy). */
  | { type: 'other'; name: string; event: Fields }
  | { type: 'disconnected'; reason: string; willReconnect: boolean }
  | { type: 'reconnected'; attempts: number }
  /** The consumer was slower than the proxy: this many events were dropped. */
  | { type: 'events_dropped'; count: number };

/** One events() iterator's buffer: bounded, dropping (and counting) the oldest. */
export class EventQueue {
  items: ClientEvent[] = [];
  dropped = 0;
  ended = false;
  error: Error | undefined;
  // Every next() waiting; a list, so concurrent next() calls all wake.
  readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {}

  push(ev: ClientEvent): void {
    if (this.ended) return;
    if (this.items.length >= this.limit) {
      this.items.shift();
      this.dropped++;
    }
    this.items.push(ev);
    this.#notify();
  }

  end(error?: Error): void {
    this.ended = true;
    this.error ??= error;
    this.#notify();
  }

  #notify(): void {
    for (const w of this.waiting.splice(0)) w();
  }
}

export function toClientEvent(event: { type: string; [field: string]: unknown }): ClientEvent {
  // The proxy's own events, as src/command/protocol.ts declares them; the wire is trusted as main's.
  if (PROXY_EVENT_TYPES.has(event.type)) return event as unknown as ProxyEvent;
  return { type: 'other', name: event.type, event };
}
