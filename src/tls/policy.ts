// The TLS policy every HTTPS listener serves: TLS 1.2 and 1.3 only (RFC 8996),
// ECDHE key exchange with AEAD ciphers for 1.2, the three 1.3 suites, and the
// server's preference order. Node's defaults include CBC and static-RSA suites
// (testssl flags them), so the list is explicit.

import { constants } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
import type { Listener } from '../model/objects.js';

/** TLS 1.2 suites: forward secret, AEAD, ECDSA before RSA, strongest first. */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/** TLS 1.3 suites, all AEAD; OpenSSL takes them in the same cipher string. */
const TLS13_CIPHERS = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

export const CIPHERS = [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':');
export const GROUPS = 'X25519:P-256:P-384';
/** h2 joins this list when the HTTP/2 front end exists. */
export const ALPN = ['http/1.1'];
/** How long a session ticket may resume a session (seconds). */
export const SESSION_TIMEOUT_S = 3_600;
/** Session ticket keys are replaced this often across every worker. */
export const TICKET_KEY_ROTATION_MS = 12 * 3_600_000;

export interface VersionRange {
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
}

export function versionRange(l: Pick<Listener, 'tls_versions'>): VersionRange {
  const v = l.tls_versions.length === 0 ? ['1.2', '1.3'] : l.tls_versions;
  return {
    minVersion: v.includes('1.2') ? 'TLSv1.2' : 'TLSv1.3',
    maxVersion: v.includes('1.3') ? 'TLSv1.3' : 'TLSv1.2',
  };
}

/** Options every secure context of a listener shares. */
export function contextOptions(l: Pick<Listener, 'tls_versions'>) {
  return {
    ...versionRange(l),
    ciphers: CIPHERS,
    ecdhCurve: GROUPS,
    honorCipherOrder: true,
    // TLS 1.2 renegotiation: a client could make the server redo handshakes
    // for free (CVE-2011-1473); nothing kakehi serves needs it. testssl checks.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}
