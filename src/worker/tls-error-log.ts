// The worker's warn line for each connection ended by a fatal TLS error, fed
// by the listeners' events like the metrics: the operator sees which listener,
// why, and OpenSSL's own words, never the connection's data.

import type { Logger } from '../log/logger.js';
import { type TlsErrorEvent, tlsError } from '../tls/tls-events.js';

/** Subscribes; the returned function unsubscribes. */
export function logTlsErrors(log: Logger): () => void {
  const onError = (m: unknown) => {
    const e = m as TlsErrorEvent;
    log.warn(
      { listener: e.listener, reason: e.reason, detail: e.detail },
      'fatal TLS error; connection closed',
    );
  };
  tlsError.subscribe(onError);
  return () => tlsError.unsubscribe(onError);
}
