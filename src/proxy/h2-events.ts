// What HTTP/2 connections tell the rest of the process (metrics, logs), through
// node:diagnostics_channel like the other data-plane events.

import diagnostics_channel from 'node:diagnostics_channel';

/** Why kakehi closed an HTTP/2 connection on its own account. */
export type H2Refusal = 'rapid_reset' | 'malformed_request' | 'session_error';
export interface H2ConnectionClosed {
  listener: string;
  reason: H2Refusal;
  detail: string;
}
/** An HTTP/2 connection (or stream, for malformed_request) refused for what its client did. */
export const h2Refused = diagnostics_channel.channel('kakehi:h2:refused');
