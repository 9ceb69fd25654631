// What the data plane tells the rest of the process, through
// node:diagnostics_channel so the hot path holds no logging or metrics code:
// the access log and metrics subscribe; tests can too.

import diagnostics_channel from 'node:diagnostics_channel';
import type { HttpProtocol } from './client-stream.js';

/**
 * Published once per request, when it ends (answered, failed or cut), and read
 * synchronously by subscribers: the time it ended is the time they receive it.
 */
export interface RequestEnd {
  listener: string;
  client: string;
  method: string;
  host: string;
  path: string;
  status: number;
  cluster: string | undefined;
  backend: string | undefined;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Request sent to response head received; -1 when no backend answered. */
  backendMs: number;
  requestId: string;
  tags: Readonly<Record<string, string>> | undefined;
  /** The protocol the client spoke. */
  protocol: HttpProtocol;
  /** Why it ended other than with a complete response, if it did. */
  error: string | undefined;
}

export const requestEnd = diagnostics_channel.channel('kakehi:request:end');

/** A backend went down or came back, as its connection outcomes show. */
export type HealthEvent = {
  type: 'backend_down' | 'backend_up';
  backend: string;
  cluster: string;
  address: string;
  /** Why it went down (its last connection error); absent when it came up. */
  reason?: string;
};
export const backendHealth = diagnostics_channel.channel('kakehi:backend:health');

/** A client connection was accepted / ended; the message is the listener key. */
export const connectionOpen = diagnostics_channel.channel('kakehi:connection:open');
export const connectionClose = diagnostics_channel.channel('kakehi:connection:close');

export interface BackendAttempt {
  cluster: string;
  backend: string;
}
/** Connecting to a backend failed (refused, reset, or timed out). */
export const backendConnectFailure = diagnostics_channel.channel('kakehi:backend:connect-failure');
/** A request is tried again on another backend after a failed connect. */
export const backendRetry = diagnostics_channel.channel('kakehi:backend:retry');

/** A sticky cookie named a backend that is gone or unavailable; the message is the cluster id. */
export const stickyMiss = diagnostics_channel.channel('kakehi:sticky:miss');
