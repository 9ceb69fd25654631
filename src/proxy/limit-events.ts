// What the limits (listener max_connections, backend queues, rate limits, body
// size) tell the rest of the process, through node:diagnostics_channel like
// request-events.ts: metrics and the log subscribe; published only when refused.

import diagnostics_channel from 'node:diagnostics_channel';

/** A listener at its max_connections closed a new connection unserved; the message is the listener key. */
export const listenerRefused = diagnostics_channel.channel('kakehi:listener:refused');
/** The worker at its overall max_connections closed a new connection unserved; the message is the listener key. */
export const connectionsRefused = diagnostics_channel.channel('kakehi:connections:refused');

export interface LimitRefusal {
  /** rate: a frontend's rate limit (429); queue_full, queue_timeout: a backend's queue (503); body: 413. */
  reason: 'rate' | 'queue_full' | 'queue_timeout' | 'body';
  listener: string;
  cluster: string;
  /** The backend whose queue refused; '' for the others. */
  backend: string;
}
/** A request refused by a limit, published before its answer. */
export const limitRefused = diagnostics_channel.channel('kakehi:limit:refused');

/** A request began / stopped waiting in a backend's queue: the queue length gauge follows these. */
export interface QueueMove {
  cluster: string;
  backend: string;
  /** +1 in, -1 out. */
  delta: 1 | -1;
}
export const backendQueueMove = diagnostics_channel.channel('kakehi:backend:queue');
