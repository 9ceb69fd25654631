// What the data plane tells the rest of the process, through
// node:diagnostics_channel so the hot path holds no logging or metrics code:
// the access log and metrics subscribe; tests can too.

import diagnostics_channel from 'node:diagnostics_channel';

export interface RequestEnd {
  time: number;
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
  /** Why it ended other than with a complete response, if it did. */
  error: string | undefined;
}

export const requestEnd = diagnostics_channel.channel('kakehi:request:end');
export const backendHealth = diagnostics_channel.channel('kakehi:backend:health');
