// TLS to a cluster's backends: the client side of a backend connection. A
// cluster's `backend_tls` becomes one secure context (CA, client certificate,
// versions and ciphers), made once per setting; each connection gets the name
// it checks (and sends as SNI) from the setting or the backend's address; a
// failed handshake is named by a reason from a small fixed set, for the log
// and the metric. Main's health checks build their probes from the same options.

import { createHash } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import { isIP } from 'node:net';
import { type ConnectionOptions, createSecureContext, type SecureContext } from 'node:tls';
import type { BackendTls } from '../model/backend-tls.js';
import { ALPN, CIPHERS, GROUPS } from '../tls/policy.js';

/** A backend_tls made ready for connections; shared by every backend of the cluster. */
export interface PreparedBackendTls {
  /**
   * Names the settings: a pooled connection or a saved session made under
   * other settings is never reused (a plain connection has the key '').
   */
  readonly key: string;
  readonly verify: boolean;
  readonly serverName: string | undefined;
  readonly context: SecureContext;
}

// By the frozen setting object: an unchanged cluster keeps its context across updates.
const prepared = new WeakMap<BackendTls, PreparedBackendTls>();

/** Throws when the PEM material is refused by OpenSSL (the schema checked it first). */
export function prepareBackendTls(spec: BackendTls): PreparedBackendTls {
  const known = prepared.get(spec);
  if (known !== undefined) return known;
  const context = createSecureContext({
    minVersion: spec.min_version === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: CIPHERS,
    ecdhCurve: GROUPS,
    // Absent: Node's built-in roots.
    ...(spec.ca === undefined ? {} : { ca: spec.ca }),
    ...(spec.client_certificate === undefined ? {} : { cert: spec.client_certificate, key: spec.client_key }),
  });
  // A digest, so the client key does not live on as a string in a map.
  const key = createHash('sha256').update(JSON.stringify(spec)).digest('base64').slice(0, 16);
  const p = { key, verify: spec.verify, serverName: spec.server_name, context };
  prepared.set(spec, p);
  return p;
}

/**
 * The name a backend's certificate is checked against, and sent as SNI: the
 * configured server_name, else the address's host when it is a name. An IP
 * address is never sent as SNI (RFC 6066 §3); it is checked against the
 * certificate's IP SANs.
 */
export function serverNameFor(tls: Pick<PreparedBackendTls, 'serverName'>, host: string): string | undefined {
  return tls.serverName ?? (isIP(host) === 0 ? host : undefined);
}

/** The options of one TLS connection to `host`, on `socket` when the TCP connection is already made. */
export function connectionOptions(
  tls: PreparedBackendTls,
  host: string,
  port: number,
  session: Buffer | undefined,
): ConnectionOptions {
  const name = serverNameFor(tls, host);
  return {
    // Node checks the certificate against servername, else host: an IP address against IP SANs.
    host,
    port,
    ...(name === undefined ? {} : { servername: name }),
    secureContext: tls.context,
    rejectUnauthorized: tls.verify,
    ALPNProtocols: ALPN,
    ...(session === undefined ? {} : { session }),
  };
}

/** Why a handshake with a backend failed: the `reason` label of kakehi_backend_tls_errors_total. */
export type BackendTlsReason =
  | 'hostname_mismatch'
  | 'untrusted_certificate'
  | 'certificate_dates'
  | 'alert'
  | 'closed'
  | 'timeout'
  | 'other';

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);

export function tlsFailureReason(err: Error & { code?: unknown }): BackendTlsReason {
  const code = typeof err.code === 'string' ? err.code : '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'hostname_mismatch';
  if (UNTRUSTED.has(code)) return 'untrusted_certificate';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return 'certificate_dates';
  // OpenSSL's alert codes: the backend refused us (no client certificate, no common version…).
  if (/ALERT/.test(code)) return 'alert';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket disconnected/i.test(err.message)) return 'closed';
  return 'other';
}

/** A handshake with a backend failed; published for the worker's warn line and metric. */
export interface BackendTlsError {
  cluster: string;
  backend: string;
  address: string;
  /** The name the certificate was checked against; null: the address's IP. */
  server_name: string | null;
  reason: BackendTlsReason;
  /** OpenSSL's or Node's own words, such as "Hostname/IP does not match certificate's altnames". */
  detail: string;
}
export const backendTlsError = diagnostics_channel.channel('kakehi:backend:tls-error');

/** A handshake with a backend completed; `resumed`: a saved session was taken up. */
export interface BackendTlsHandshake {
  cluster: string;
  backend: string;
  resumed: boolean;
}
export const backendTlsHandshake = diagnostics_channel.channel('kakehi:backend:tls-handshake');
