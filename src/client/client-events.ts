// What `for await (const ev of client.events())` yields: the proxy's events and
// the client's own connection events as one type-tagged union, and the bounded
// per-iterator queue that holds them until the consumer reads.

export type Fields = { readonly [field: string]: unknown };
/** Events the proxy sends after subscribe_events; fields beyond `type` are in docs/protocol.md. */
export type ProxyEvent =
  | ({ type: 'change_applied'; generation?: number } & Fields)
  | ({ type: 'backend_down' } & Fields)
  | ({ type: 'backend_up' } & Fields)
  | ({ type: 'worker_crashed' } & Fields)
  | ({ type: 'worker_restarted' } & Fields)
  | ({ type: 'worker_not_answering' } & Fields);
const PROXY_EVENT_TYPES: ReadonlySet<string> = new Set([
  'change_applied',
  'backend_down',
  'backend_up',
  'worker_crashed',
  'worker_restarted',
  'worker_not_answering',
]);

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
  if (PROXY_EVENT_TYPES.has(event.type)) return event as ProxyEvent;
  return { type: 'other', name: event.type, event };
}
