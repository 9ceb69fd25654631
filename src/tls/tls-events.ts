// TLS facts published for metrics, like the request events: nothing is
// computed unless someone subscribes.

import diagnostics_channel from 'node:diagnostics_channel';
import type { TLSSocket } from 'node:tls';

/** { listener, version, cipher } after each completed handshake. */
export const tlsHandshake = diagnostics_channel.channel('kakehi:tls:handshake');
/** { listener, reason } when a handshake fails (reason: a short OpenSSL code, lowercased). */
export const tlsHandshakeFailure = diagnostics_channel.channel('kakehi:tls:handshake-failure');

/** { listener, reason } when kakehi ends a connection for a fatal TLS error, with an alert. */
export const tlsError = diagnostics_channel.channel('kakehi:tls:error');

export interface TlsHandshakeEvent {
  listener: string;
  version: string;
  cipher: string;
}
export interface TlsFailureEvent {
  listener: string;
  reason: string;
}

/**
 * Fatal TLS errors, a small fixed set: the hello kakehi refused itself, or what
 * OpenSSL raised after the handshake, named by the alert it sent (RFC 8446 §6).
 */
export type TlsErrorReason =
  | 'malformed_hello'
  | 'truncated_hello'
  | 'oversized_hello'
  | 'unexpected_message'
  | 'record_overflow'
  | 'bad_record_mac'
  | 'peer_alert'
  | 'other';

export interface TlsErrorEvent {
  listener: string;
  reason: TlsErrorReason;
  /** OpenSSL's message, for the log; never a label. */
  detail: string;
}

/** The reason for an OpenSSL error after the handshake, from its code (ERR_SSL_…). */
export function fatalReason(err: Error & { code?: string }): TlsErrorReason {
  const code = err.code ?? '';
  // The peer's own alert first: its codes also name the alert (…_ALERT_BAD_RECORD_MAC).
  if (/_ALERT_/.test(code)) return 'peer_alert';
  if (/BAD_RECORD_MAC|DECRYPTION_FAILED/.test(code)) return 'bad_record_mac';
  if (/LENGTH_TOO_LONG|RECORD_OVERFLOW|EXCESSIVE_MESSAGE_SIZE/.test(code)) return 'record_overflow';
  if (/BAD_RECORD_TYPE|UNEXPECTED_(MESSAGE|RECORD|CCS_MESSAGE)/.test(code)) return 'unexpected_message';
  return 'other';
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

/** A completed handshake, with what it negotiated; callers check hasSubscribers first. */
export function publishHandshake(listener: string, socket: TLSSocket): void {
  const cipher = socket.getCipher();
  tlsHandshake.publish({
    listener,
    version: socket.getProtocol() ?? 'unknown',
    cipher: cipher?.standardName ?? cipher?.name ?? 'unknown',
  });
}
