// The worker's warn line for each connection ended by a fatal TLS error, fed
// by the listeners' events like the metrics: the operator sees which listener,
// why, and OpenSSL's own words, never the connection's data.

import type { Logger } from '../log/logger.js';
import { type BackendTlsError, backendTlsError } from '../proxy/backend-tls.js';
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

/**
 * A warn line for each failed handshake with a backend (backend_tls): which
 * backend, the name checked, and why, e.g. "Hostname/IP does not match
 * certificate's altnames". Subscribes; the returned function unsubscribes.
 */
export function logBackendTlsErrors(log: Logger): () => void {
  const onError = (m: unknown) => {
    const e = m as BackendTlsError;
    log.warn(
      {
        event: 'backend_tls_error',
        cluster: e.cluster,
        backend: e.backend,
        address: e.address,
        server_name: e.server_name,
        reason: e.reason,
        detail: e.detail,
      },
      'TLS handshake with a backend failed',
    );
  };
  backendTlsError.subscribe(onError);
  return () => backendTlsError.unsubscribe(onError);
}
