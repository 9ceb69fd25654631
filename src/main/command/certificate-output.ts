// How certificates appear outside main: facts, never the private key (a
// certificate's, or a cluster's backend_tls client key). Query answers,
// events, logs and `kakehi ctl` all go through here.

import type { CertificateSummary } from '../../command/protocol.js';
import { redactBackendTls } from '../../model/backend-tls.js';
import { redactFrontend } from '../../model/frontend-rules.js';
import type { Certificate, Cluster } from '../../model/objects.js';
import type { Change } from '../../state/change.js';
import { servedCertificate } from '../../tls/certificate-store.js';

export const REDACTED = '<redacted>';

export type { CertificateSummary };

export function certificateSummary(
  c: Certificate,
  source: string | undefined,
): CertificateSummary | undefined {
  const f = servedCertificate(c)?.facts;
  if (f === undefined) return undefined;
  const out: CertificateSummary = {
    listener: c.listener,
    fingerprint: f.fingerprint,
    names: f.names,
    subject: f.subject,
    issuer: f.issuer,
    serial: f.serial,
    not_before: f.not_before,
    not_after: f.not_after,
    key_type: f.key_type,
    chain_length: f.chain_length,
    chain_fingerprints: f.chain_fingerprints,
    default: c.default,
    source,
  };
  if (c.origin !== undefined) out.origin = c.origin;
  return out;
}

/**
 * A change as it may be shown: a certificate's key, a cluster's backend client
 * key and a frontend's password hashes replaced by markers.
 */
export function redactChange(c: Change): Change {
  if (c.op === 'put_frontend') return { ...c, frontend: redactFrontend(c.frontend) };
  if (c.op === 'put_cluster') return { ...c, cluster: redactCluster(c.cluster) };
  if (c.op !== 'put_certificate') return c;
  return { ...c, certificate: { ...c.certificate, key: REDACTED } };
}

/** A cluster as it may be shown: its backend_tls client key replaced by a marker. */
export function redactCluster<C extends Cluster>(c: C): C {
  return c.backend_tls === undefined ? c : { ...c, backend_tls: redactBackendTls(c.backend_tls) };
}
