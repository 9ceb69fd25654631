// A worker's TLS counters, fed by the HTTPS listeners' events
// (src/tls/tls-events.ts): handshakes by version and cipher, failures and
// fatal errors by reason; and by the backend connections' (src/proxy/backend-tls.ts). Labels come from small fixed sets (OpenSSL's names, our reasons).

import {
  type BackendTlsError,
  type BackendTlsHandshake,
  backendTlsError,
  backendTlsHandshake,
} from '../proxy/backend-tls.js';
import {
  type TlsErrorEvent,
  type TlsFailureEvent,
  type TlsHandshakeEvent,
  tlsError,
  tlsHandshake,
  tlsHandshakeFailure,
} from '../tls/tls-events.js';
import { type Family, Registry } from './registry.js';

export class TlsMetrics {
  private readonly registry = new Registry();
  private readonly handshakes = this.registry.counter(
    'kakehi_tls_handshakes_total',
    'TLS handshakes completed, by listener, protocol version and cipher suite.',
  );
  private readonly failures = this.registry.counter(
    'kakehi_tls_handshake_failures_total',
    'TLS handshakes that failed, by listener and reason.',
  );
  private readonly errors = this.registry.counter(
    'kakehi_tls_errors_total',
    'Connections ended with a fatal TLS alert (a refused ClientHello, or an error after the handshake), by listener and reason.',
  );
  private readonly backendHandshakes = this.registry.counter(
    'kakehi_backend_tls_handshakes_total',
    'TLS handshakes completed with backends (backend_tls), by cluster, backend and whether a saved session was resumed.',
  );
  private readonly backendErrors = this.registry.counter(
    'kakehi_backend_tls_errors_total',
    'TLS handshakes with backends that failed, by cluster, backend and reason (hostname_mismatch, untrusted_certificate, certificate_dates, alert, closed, timeout, other).',
  );
  private readonly onBackendHandshake = (m: unknown) => {
    const e = m as BackendTlsHandshake;
    const resumed = e.resumed ? 'true' : 'false';
    this.backendHandshakes
      .get(`${e.cluster}\u0000${e.backend}\u0000${resumed}`, () => ({
        cluster: e.cluster,
        backend: e.backend,
        resumed,
      }))
      .add(1);
  };
  private readonly onBackendError = (m: unknown) => {
    const e = m as BackendTlsError;
    this.backendErrors
      .get(`${e.cluster}\u0000${e.backend}\u0000${e.reason}`, () => ({
        cluster: e.cluster,
        backend: e.backend,
        reason: e.reason,
      }))
      .add(1);
  };
  private readonly onHandshake = (m: unknown) => {
    const e = m as TlsHandshakeEvent;
    this.handshakes
      .get(`${e.listener}\u0000${e.version}\u0000${e.cipher}`, () => ({
        listener: e.listener,
        version: e.version,
        cipher: e.cipher,
      }))
      .add(1);
  };
  private readonly onFailure = (m: unknown) => {
    const e = m as TlsFailureEvent;
    this.failures
      .get(`${e.listener}\u0000${e.reason}`, () => ({ listener: e.listener, reason: e.reason }))
      .add(1);
  };

  private readonly onError = (m: unknown) => {
    const e = m as TlsErrorEvent;
    this.errors
      .get(`${e.listener}\u0000${e.reason}`, () => ({ listener: e.listener, reason: e.reason }))
      .add(1);
  };

  start(): this {
    tlsHandshake.subscribe(this.onHandshake);
    tlsHandshakeFailure.subscribe(this.onFailure);
    tlsError.subscribe(this.onError);
    backendTlsHandshake.subscribe(this.onBackendHandshake);
    backendTlsError.subscribe(this.onBackendError);
    return this;
  }

  stop(): void {
    tlsHandshake.unsubscribe(this.onHandshake);
    tlsHandshakeFailure.unsubscribe(this.onFailure);
    tlsError.unsubscribe(this.onError);
    backendTlsHandshake.unsubscribe(this.onBackendHandshake);
    backendTlsError.unsubscribe(this.onBackendError);
  }

  families(): Family[] {
    return this.registry.families();
  }
}
