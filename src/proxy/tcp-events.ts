// What tcp and tls listeners tell the rest of the process, beside the HTTP
// request events (request-events.ts): one event when a connection is given to
// its cluster, one when it ends. Separate channels, so HTTP request metrics
// never count a byte stream as a request.

import diagnostics_channel from 'node:diagnostics_channel';

/** Published once per tcp/tls connection, when both sockets are gone (or it failed). */
export interface TcpConnectionEnd {
  listener: string;
  protocol: 'tcp' | 'tls' | 'tls_passthrough';
  client: string;
  cluster: string;
  /** The backend that carried it; undefined when none could be connected. */
  backend: string | undefined;
  /** Bytes from the client to the backend / from the backend to the client. */
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Why it ended other than by both sides closing, if it did. */
  error: string | undefined;
}

export const tcpConnectionEnd = diagnostics_channel.channel('kakehi:tcp:end');
/** A tcp/tls connection began for a cluster; the message is the cluster id. */
export const tcpConnectionStart = diagnostics_channel.channel('kakehi:tcp:start');
