// A cluster's `backend_tls`: kakehi speaks TLS to every backend of the cluster,
// checking each backend's certificate against the built-in roots or a given CA
// and its name, optionally presenting a client certificate (mTLS). This holds
// the schema and the checks of its PEM fields; the connections are
// src/proxy/backend-tls.ts's.

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { splitPem } from '../certificate/pem.js';
import type { FieldIssue } from '../errors.js';
import { bool, type ObjectOf, object, oneOf, str } from './schema.js';

const PEM_MAX = 256 * 1024;
const DNS_NAME = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** What the redacted private key reads as wherever a cluster is shown. */
export const REDACTED_KEY = '<redacted>';

export const backendTlsSchema = object(
  {
    verify: {
      schema: bool(),
      default: true,
      doc: "check each backend's certificate chain and name; false is logged as a warning at every load",
    },
    ca: {
      schema: str({ maxLength: PEM_MAX, check: (s) => certificatesProblem(s, 'certificates') }),
      doc: "PEM CA certificates trusted for the backends, in place of Node's built-in (Mozilla) roots",
    },
    server_name: {
      schema: str({
        maxLength: 253,
        check: (s) => (DNS_NAME.test(s) ? undefined : `"${s}" is not a DNS name`),
      }),
      doc: "name sent as SNI and checked against each backend's certificate; absent: the backend address's host when it is a name, else its IP address is checked against the certificate's IP SANs (no SNI)",
    },
    client_certificate: {
      schema: str({ maxLength: PEM_MAX, check: (s) => certificatesProblem(s, 'certificate') }),
      doc: 'PEM client certificate (and its chain) presented to backends that ask for one (mTLS)',
    },
    client_key: {
      schema: str({ maxLength: PEM_MAX }),
      doc: 'PEM private key of client_certificate; never shown in logs, answers or ctl',
    },
    min_version: {
      schema: oneOf(['1.2', '1.3'] as const),
      default: '1.2',
      doc: 'lowest TLS version offered to backends: 1.2 or 1.3',
    },
  },
  {
    renamed: {
      sni: 'server_name',
      servername: 'server_name',
      ca_certificate: 'ca',
      cert: 'client_certificate',
      key: 'client_key',
      insecure_skip_verify: 'verify (false)',
      tls_versions: 'min_version',
    },
    check: (t, path, issues) => {
      const before = issues.length;
      clientPairIssues(t, path, issues);
      if (issues.length === before) contextIssues(t, path, issues);
    },
  },
);
export type BackendTls = ObjectOf<typeof backendTlsSchema.fields>;

/** Every block is a certificate, and there is at least one. */
function certificatesProblem(text: string, what: string): string | undefined {
  const { blocks, incomplete } = splitPem(text);
  if (incomplete) return 'holds an incomplete PEM block (BEGIN without its END: a truncated file?)';
  if (blocks.some((b) => b.type.endsWith('PRIVATE KEY')))
    return 'holds a private key block; a private key goes in client_key only';
  const certs = blocks.filter((b) => b.type === 'CERTIFICATE');
  if (certs.length === 0) return `holds no PEM ${what} (-----BEGIN CERTIFICATE-----)`;
  for (const [i, b] of certs.entries()) {
    try {
      new X509Certificate(b.pem);
    } catch (err) {
      return `PEM block ${i + 1} is not a readable certificate: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/** client_certificate and client_key come together, and the key is the certificate's. */
function clientPairIssues(t: BackendTls, path: string, issues: FieldIssue[]): void {
  const at = (field: string) => (path === '' ? field : `${path}.${field}`);
  if ((t.client_certificate === undefined) !== (t.client_key === undefined)) {
    const missing = t.client_key === undefined ? 'client_key' : 'client_certificate';
    issues.push({
      path: at(missing),
      reason: 'client_certificate and client_key go together; this one is missing',
    });
    return;
  }
  if (t.client_certificate === undefined || t.client_key === undefined) return;
  const key = readKey(t.client_key);
  if (typeof key === 'string') {
    issues.push({ path: at('client_key'), reason: key });
    return;
  }
  const leaf = splitPem(t.client_certificate).blocks.find((b) => b.type === 'CERTIFICATE');
  if (leaf === undefined) return; // the field's own check named it
  let matches = false;
  try {
    matches = new X509Certificate(leaf.pem).checkPrivateKey(key);
  } catch {
    // Node throws on some algorithm mismatches rather than answering false.
  }
  if (!matches)
    issues.push({ path: at('client_key'), reason: "does not match client_certificate's public key" });
}

/**
 * What OpenSSL itself makes of the material, as each worker will: a
 * certificate it will not load (an unsupported key type, a weak signature)
 * is refused here, named, rather than failing a worker's apply.
 */
function contextIssues(t: BackendTls, path: string, issues: FieldIssue[]): void {
  try {
    createSecureContext({
      ...(t.ca === undefined ? {} : { ca: t.ca }),
      ...(t.client_certificate === undefined ? {} : { cert: t.client_certificate, key: t.client_key }),
    });
  } catch (err) {
    // OpenSSL's words name the problem, never the key's bytes.
    issues.push({ path, reason: `OpenSSL refuses this material: ${(err as Error).message}` });
  }
}

/** The one private key of a PEM text, or why there is none; never echoes the text. */
function readKey(text: string): KeyObject | string {
  const { blocks, incomplete } = splitPem(text);
  if (incomplete) return 'holds an incomplete PEM block (BEGIN without its END: a truncated file?)';
  const keys = blocks.filter((b) => b.type.endsWith('PRIVATE KEY'));
  if (keys.length !== 1) return `must hold exactly one PEM private key (found ${keys.length})`;
  if (keys[0]!.type === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:.*ENCRYPTED/.test(keys[0]!.pem))
    return 'is encrypted; encrypted private keys are not supported (decrypt it first)';
  try {
    return createPrivateKey(keys[0]!.pem);
  } catch {
    return 'is not a readable private key';
  }
}

/** The settings as they may be shown: the client key replaced by a marker. */
export function redactBackendTls(t: BackendTls): BackendTls {
  return t.client_key === undefined ? t : { ...t, client_key: REDACTED_KEY };
}
