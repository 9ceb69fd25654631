// The keys an access log line can carry, and how each is read off a request's
// end; a leaf module, so the configuration schema can name them without loading
// the access log itself.

import type { RequestEnd } from '../proxy/request-events.js';
import type { TcpConnectionEnd } from '../proxy/tcp-events.js';

/** Milliseconds to three decimals. */
const ms = (d: number) => Math.round(d * 1000) / 1000;

/**
 * Every field an access log line can have, in the default order; `access_log_fields`
 * picks and orders a subset (HAProxy's log-format, as JSON keys). The one place
 * that says what each key holds: docs/operations.md lists the same keys.
 */
export const ACCESS_LOG_FIELDS = {
  time: () => new Date().toISOString(),
  client: (e) => e.client,
  method: (e) => e.method,
  host: (e) => e.host,
  path: (e) => e.path,
  status: (e) => e.status,
  cluster: (e) => e.cluster,
  backend: (e) => e.backend,
  bytes_in: (e) => e.bytesIn,
  bytes_out: (e) => e.bytesOut,
  duration_ms: (e) => ms(e.durationMs),
  backend_ms: (e) => (e.backendMs < 0 ? undefined : ms(e.backendMs)),
  request_id: (e) => e.requestId,
  listener: (e) => e.listener,
  // HTTP/1.1 lines leave it out, so they read as they always have; h2 and tcp/tls lines carry it.
  protocol: (e) => (e.protocol === 'h2' ? 'h2' : undefined),
  tags: (e) => (e.tags && Object.keys(e.tags).length > 0 ? e.tags : undefined),
  error: (e) => e.error,
} satisfies Record<string, (e: RequestEnd) => unknown>;

export type AccessLogField = keyof typeof ACCESS_LOG_FIELDS;
export const ACCESS_LOG_FIELD_NAMES = Object.keys(ACCESS_LOG_FIELDS) as AccessLogField[];

/** One line's object: the chosen keys in the chosen order; absent values leave their key out. */
export function lineMaker(fields: readonly AccessLogField[]): (e: RequestEnd) => Record<string, unknown> {
  const getters = fields.map((f) => [f, ACCESS_LOG_FIELDS[f] as (e: RequestEnd) => unknown] as const);
  return (e) => {
    const line: Record<string, unknown> = {};
    for (const [key, get] of getters) line[key] = get(e);
    return line;
  };
}

/**
 * The keys a tcp/tls connection's line can have, read off its end; keys of
 * HTTP only (method, host, status…) are not among them, so they stay out.
 */
const TCP_FIELDS: Partial<Record<AccessLogField, (e: TcpConnectionEnd) => unknown>> = {
  time: () => new Date().toISOString(),
  client: (e) => e.client,
  cluster: (e) => e.cluster,
  backend: (e) => e.backend,
  bytes_in: (e) => e.bytesIn,
  bytes_out: (e) => e.bytesOut,
  duration_ms: (e) => ms(e.durationMs),
  listener: (e) => e.listener,
  protocol: (e) => e.protocol,
  error: (e) => e.error,
};

/** A tcp/tls connection's line: the chosen keys it has, in the chosen order. */
export function tcpLineMaker(
  fields: readonly AccessLogField[],
): (e: TcpConnectionEnd) => Record<string, unknown> {
  const getters = fields.flatMap((f) => {
    const get = TCP_FIELDS[f];
    return get === undefined ? [] : [[f, get] as const];
  });
  return (e) => {
    const line: Record<string, unknown> = {};
    for (const [key, get] of getters) line[key] = get(e);
    return line;
  };
}
