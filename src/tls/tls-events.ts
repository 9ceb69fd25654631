// TLS facts published for metrics, like the request events: nothing is
// computed unless someone subscribes.

import diagnostics_channel from 'node:diagnostics_channel';

/** { listener, version, cipher } after each completed handshake. */
export const tlsHandshake = diagnostics_channel.channel('kakehi:tls:handshake');
/** { listener, reason } when a handshake fails (reason: a short OpenSSL code, lowercased). */
export const tlsHandshakeFailure = diagnostics_channel.channel('kakehi:tls:handshake-failure');

export interface TlsHandshakeEvent {
  listener: string;
  version: string;
  cipher: string;
}
export interface TlsFailureEvent {
  listener: string;
  reason: string;
}

/** A bounded reason label from a handshake error: OpenSSL's reason code, else the error code. */
export function failureReason(err: Error & { code?: string; reason?: string }): string {
  if (err.code === 'ERR_SSL_NO_SHARED_CIPHER' || /no shared cipher/i.test(err.message))
    return 'no_shared_cipher';
  if (/unsupported protocol|wrong version|version too low/i.test(err.message)) return 'unsupported_protocol';
  if (err.code === 'ECONNRESET' || /socket hang up|ECONNRESET/.test(err.message)) return 'client_reset';
  if (/timed? ?out/i.test(err.message)) return 'timeout';
  if (/alert/i.test(err.message)) return 'client_alert';
  if (/http request|wrong version number/i.test(err.message)) return 'not_tls';
  return 'other';
}
