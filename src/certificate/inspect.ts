// Certificate inspection: everything the proxy needs to know about a certificate,
// its chain and its key before it is allowed near a listener. Pure apart from
// node:crypto; every problem becomes a FieldIssue an operator can act on, and no
// issue ever quotes key material. About 450 lines: the checks of one certificate
// read best together; names and PEM splitting have their own modules.

import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { FieldIssue } from '../errors.js';
import { isCertificateName, namesOf, unreadableSubjectAltName } from './names.js';
import { type PemBlock, splitPem } from './pem.js';

export interface CertificateInput {
  /** PEM: the leaf first, optionally followed by chain certificates (a fullchain file). */
  certificate: string;
  /** PEM bundle of further chain certificates, leaf-issuer first; '' or absent = none. */
  chain?: string;
  /** PEM private key: PKCS#8, PKCS#1 RSA or SEC1 EC. */
  key: string;
  /** Explicit names override the certificate's; an empty list counts as absent. */
  names?: readonly string[];
  allow_expired?: boolean;
}

export interface CertificateFacts {
  /** SHA-256 of the leaf DER, lowercase hex without colons. */
  fingerprint: string;
  /** Lowercased, deduplicated, order kept. */
  names: string[];
  /** Distinguished names on one line, RDNs joined by ', '. */
  subject: string;
  issuer: string;
  /** Uppercase hex, as X509Certificate.serialNumber. */
  serial: string;
  not_before: string;
  not_after: string;
  key_type: string;
  key_bits?: number;
  /** Chain certificates after the leaf. */
  chain_length: number;
  /** SHA-256 of each chain certificate, in order: tells two chains apart without the PEM. */
  chain_fingerprints: string[];
  self_signed: boolean;
}

export interface ParsedCertificate {
  facts: CertificateFacts;
  leafPem: string;
  chainPems: string[];
  keyPem: string;
}

/** Curve sizes for the curves TLS stacks actually use. */
const CURVE_BITS: Record<string, number> = {
  prime256v1: 256,
  secp256k1: 256,
  secp384r1: 384,
  secp521r1: 521,
};

interface Located {
  x509: X509Certificate;
  pem: string;
  /** Where it came from, as an issue path: certificate, certificate[1], chain[0]. */
  path: string;
}

export interface InspectOptions {
  /** The time validity is judged at; default now. */
  now?: number;
  /**
   * false: leave dates out. A certificate already admitted is re-parsed by
   * every worker and state-file load; expiry since then must not unload it.
   */
  dates?: boolean;
}

export type Inspection = { ok: true; cert: ParsedCertificate } | { ok: false; issues: FieldIssue[] };

/**
 * Checks a certificate, key and chain and describes them. A valid result's public
 * part (facts, leaf and chain PEM) is remembered, bounded, by a digest of the input:
 * main admits a certificate, each worker re-checks it, and a state of 1,000
 * certificates should not parse each six times. The key PEM is never remembered (a
 * deleted key must not linger until evicted); a hit takes it from the input again.
 * The facts are shared: callers must not modify them.
 */
export function inspectCertificate(input: CertificateInput, opts: InspectOptions = {}): Inspection {
  const id = cacheKey(input);
  const hit = id === undefined ? undefined : cache.get(id);
  // The digest matched an input whose key read as exactly one private key block: take it again.
  const keyPem = hit && splitPem(input.key).blocks.find((b) => b.type.endsWith('PRIVATE KEY'))?.pem;
  let structural: Inspection | undefined = hit && keyPem ? { ok: true, cert: { ...hit, keyPem } } : undefined;
  if (structural === undefined) {
    structural = inspectUncached(input, { dates: false });
    if (id !== undefined && structural.ok) {
      const { facts, leafPem, chainPems } = structural.cert;
      remember(id, { facts, leafPem, chainPems });
    }
  }
  if (!structural.ok) return opts.dates === false ? structural : inspectUncached(input, opts);
  if (opts.dates === false) return structural;
  const f = structural.cert.facts;
  const issues: FieldIssue[] = [];
  const now = opts.now ?? Date.now();
  checkDates(new Date(f.not_before), new Date(f.not_after), now, input.allow_expired === true, issues);
  return issues.length > 0 ? { ok: false, issues } : structural;
}

const CACHE_ENTRIES = 4096;
/** Public facts only: of the key, just its type and size. */
type PublicPart = Omit<ParsedCertificate, 'keyPem'>;
const cache = new Map<string, PublicPart>();

function cacheKey(input: CertificateInput): string | undefined {
  const { certificate, chain, key, names } = input;
  if (typeof certificate !== 'string' || typeof key !== 'string') return undefined;
  if (chain !== undefined && typeof chain !== 'string') return undefined;
  if (names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === 'string')))
    return undefined;
  // A digest, not the text: the private key PEM must not live on as a map key
  // after its certificate is deleted.
  return createHash('sha256')
    .update(`${certificate}\u0000${chain ?? ''}\u0000${key}\u0000${names?.join(',') ?? ''}`)
    .digest('base64');
}

function remember(id: string, r: PublicPart): void {
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(id, r);
}

function inspectUncached(input: CertificateInput, opts: InspectOptions): Inspection {
  const issues: FieldIssue[] = [];
  const fromCertificate = readCertificates(input.certificate, 'certificate', true, issues);
  const fromChain =
    // Callers validate types first, but this guards the boundary for anyone who did not.
    input.chain === undefined || (typeof input.chain === 'string' && input.chain.trim() === '')
      ? []
      : readCertificates(input.chain, 'chain', false, issues);
  const key = readKey(input.key, issues);
  let names: string[] | undefined;
  if (input.names !== undefined && !Array.isArray(input.names)) {
    issues.push({ path: 'names', reason: 'must be a list of DNS names' });
  } else if (input.names !== undefined && input.names.length > 0) {
    names = checkNames(input.names, issues);
  }

  const leaf = fromCertificate[0];
  if (leaf === undefined) return { ok: false, issues };
  const chain = [...fromCertificate.slice(1), ...fromChain];

  if (key !== undefined && !keyMatches(leaf.x509, key.object)) {
    issues.push({ path: 'key', reason: "does not match the certificate's public key" });
  }
  checkChainOrder([leaf, ...chain], issues);
  if (opts.dates !== false) {
    const now = opts.now ?? Date.now();
    const from = new Date(leaf.x509.validFrom);
    checkDates(from, new Date(leaf.x509.validTo), now, input.allow_expired === true, issues);
  }

  if (unreadableSubjectAltName(leaf.x509)) {
    issues.push({
      path: 'certificate',
      reason: 'has a subjectAltName extension that cannot be decoded (a corrupted certificate?)',
    });
  }
  const finalNames = names ?? namesOf(leaf.x509);
  if (finalNames.length === 0 && !unreadableSubjectAltName(leaf.x509)) {
    issues.push({
      path: 'certificate',
      reason: 'has no DNS name (no subjectAltName dNSName and no DNS-like subject CN); give names explicitly',
    });
  }
  if (issues.length > 0 || key === undefined) return { ok: false, issues };

  const facts: CertificateFacts = {
    fingerprint: sha256Hex(leaf.x509),
    names: finalNames,
    subject: oneLine(leaf.x509.subject),
    issuer: oneLine(leaf.x509.issuer),
    serial: leaf.x509.serialNumber.toUpperCase(),
    not_before: new Date(leaf.x509.validFrom).toISOString(),
    not_after: new Date(leaf.x509.validTo).toISOString(),
    key_type: key.object.asymmetricKeyType ?? 'unknown',
    chain_length: chain.length,
    chain_fingerprints: chain.map((c) => sha256Hex(c.x509)),
    self_signed: isSelfSigned(leaf.x509),
  };
  const bits = keyBits(key.object);
  if (bits !== undefined) facts.key_bits = bits;
  return {
    ok: true,
    cert: { facts, leafPem: leaf.pem, chainPems: chain.map((c) => c.pem), keyPem: key.pem },
  };
}

/** The leaf's fingerprint, without any validation; undefined when unparsable. */
export function fingerprintOf(certificatePem: string): string | undefined {
  if (typeof certificatePem !== 'string') return undefined;
  const known = fingerprints.get(certificatePem);
  if (known !== undefined) return known;
  const fp = fingerprintUncached(certificatePem);
  if (fp !== undefined) {
    if (fingerprints.size >= CACHE_ENTRIES) fingerprints.delete(fingerprints.keys().next().value as string);
    fingerprints.set(certificatePem, fp);
  }
  return fp;
}

const fingerprints = new Map<string, string>();

function fingerprintUncached(certificatePem: string): string | undefined {
  const first = splitPem(certificatePem).blocks.find((b) => b.type === 'CERTIFICATE');
  if (first === undefined) return undefined;
  try {
    return sha256Hex(new X509Certificate(first.pem));
  } catch {
    return undefined;
  }
}

/**
 * Accepts `AB:CD:…` (as `openssl x509 -fingerprint -sha256` prints it, with or
 * without its `sha256 Fingerprint=` prefix) or plain hex, in any case.
 */
export function normalizeFingerprint(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  let t = s.trim().replace(/^sha-?256 fingerprint=/i, '');
  if (t.includes(':')) {
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2})*$/i.test(t)) return undefined;
    t = t.replaceAll(':', '');
  }
  t = t.toLowerCase();
  return /^[0-9a-f]{64}$/.test(t) ? t : undefined;
}

// ---------------------------------------------------------------------------

function readCertificates(
  text: string,
  field: string,
  isLeafField: boolean,
  issues: FieldIssue[],
): Located[] {
  const start = issues.length;
  if (typeof text !== 'string') {
    issues.push({ path: field, reason: 'must be PEM text' });
    return [];
  }
  const { blocks, incomplete } = splitPem(text);
  if (incomplete) {
    issues.push({
      path: field,
      reason: 'holds an incomplete PEM block (BEGIN without its END: a truncated or half-written file?)',
    });
  }
  if (blocks.some((b) => b.type.endsWith('PRIVATE KEY'))) {
    issues.push({ path: field, reason: 'holds a private key block; the private key goes in `key`' });
  }
  const others = [...new Set(blocks.map((b) => b.type))].filter(
    (t) => t !== 'CERTIFICATE' && !t.endsWith('PRIVATE KEY'),
  );
  if (others.length > 0) {
    issues.push({ path: field, reason: `holds PEM blocks that are not certificates: ${others.join(', ')}` });
  }
  const certs = blocks.filter((b) => b.type === 'CERTIFICATE');
  if (certs.length === 0) {
    issues.push({ path: field, reason: 'no complete PEM CERTIFICATE block' });
    return [];
  }
  const out: Located[] = [];
  certs.forEach((block, i) => {
    const path = isLeafField ? (i === 0 ? field : `${field}[${i}]`) : `${field}[${i}]`;
    try {
      out.push({ x509: new X509Certificate(block.pem), pem: block.pem, path });
    } catch (err) {
      issues.push({ path, reason: `is not a readable X.509 certificate (${errorText(err)})` });
    }
  });
  // A certificate we could not read makes the rest meaningless (chain order, key match).
  return issues.length > start ? [] : out;
}

function readKey(text: string, issues: FieldIssue[]): { object: KeyObject; pem: string } | undefined {
  if (typeof text !== 'string') {
    issues.push({ path: 'key', reason: 'must be PEM text' });
    return undefined;
  }
  const { blocks, incomplete } = splitPem(text);
  if (incomplete) {
    issues.push({
      path: 'key',
      reason: 'holds an incomplete PEM block (BEGIN without its END: a truncated or half-written file?)',
    });
    return undefined;
  }
  // Other blocks (EC PARAMETERS from `openssl ecparam -genkey`, a certificate in a
  // combined file) are harmless here; only the private key counts.
  const keys = blocks.filter((b) => b.type.endsWith('PRIVATE KEY'));
  if (keys.some(isEncrypted)) {
    issues.push({
      path: 'key',
      reason: 'is encrypted; encrypted private keys are not supported (decrypt it first)',
    });
    return undefined;
  }
  if (keys.length !== 1) {
    issues.push({
      path: 'key',
      reason:
        keys.length === 0
          ? 'no complete PEM private key block (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)'
          : `holds ${keys.length} private key blocks; exactly one is expected`,
    });
    return undefined;
  }
  const block = keys[0] as PemBlock;
  try {
    return { object: createPrivateKey(block.pem), pem: block.pem };
  } catch (err) {
    // Only the error code: OpenSSL messages never quote the key, but a code is all we need.
    const code = (err as { code?: unknown }).code;
    issues.push({
      path: 'key',
      reason: `is not a readable ${block.type} block${typeof code === 'string' ? ` (${code})` : ''}`,
    });
    return undefined;
  }
}

function isEncrypted(block: PemBlock): boolean {
  return block.type === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(block.pem);
}

function keyMatches(x509: X509Certificate, key: KeyObject): boolean {
  try {
    return x509.checkPrivateKey(key);
  } catch {
    // Node throws on some algorithm mismatches rather than answering false.
    return false;
  }
}

function checkChainOrder(certs: Located[], issues: FieldIssue[]): void {
  const seen = new Map<string, string>();
  for (const c of certs) {
    const fp = sha256Hex(c.x509);
    const first = seen.get(fp);
    if (first !== undefined) {
      issues.push({
        path: c.path,
        reason: `repeats ${first} (is the chain given both in certificate and in chain?)`,
      });
      return;
    }
    seen.set(fp, c.path);
  }
  for (let i = 1; i < certs.length; i++) {
    const prev = certs[i - 1] as Located;
    const next = certs[i] as Located;
    let issued = false;
    try {
      issued = prev.x509.checkIssued(next.x509) && prev.x509.verify(next.x509.publicKey);
    } catch {
      issued = false;
    }
    if (!issued) {
      issues.push({
        path: next.path,
        reason: `does not issue the certificate before it (chain out of order, or a certificate missing?): it is "${oneLine(next.x509.subject)}", the one before was issued by "${oneLine(prev.x509.issuer)}"`,
      });
    }
  }
}

function checkDates(
  notBefore: Date,
  notAfter: Date,
  now: number,
  allowExpired: boolean,
  issues: FieldIssue[],
): void {
  if (now < notBefore.getTime()) {
    issues.push({
      path: 'certificate',
      reason: `not valid before ${notBefore.toISOString()} (is this host's clock or the issuer's wrong?)`,
    });
  }
  if (now > notAfter.getTime() && !allowExpired) {
    issues.push({
      path: 'certificate',
      reason: `expired on ${notAfter.toISOString()} (set allow_expired to load it anyway)`,
    });
  }
}

function checkNames(given: readonly string[], issues: FieldIssue[]): string[] {
  const out: string[] = [];
  given.forEach((name, i) => {
    const n = typeof name === 'string' ? name.toLowerCase() : '';
    if (!isCertificateName(n)) {
      issues.push({
        path: `names[${i}]`,
        reason: `${quoteSafely(name)} is not a DNS name nor a one-label wildcard like *.example.com`,
      });
    } else if (!out.includes(n)) {
      out.push(n);
    }
  });
  return out;
}

/**
 * Echo a bad value only when it cannot be secret: a key pasted into the wrong field
 * must not travel on in an error message, so long, multi-line or base64-looking
 * values are described by their length instead.
 */
function quoteSafely(value: unknown): string {
  if (typeof value !== 'string') return `a ${typeof value}`;
  const looksEncoded = value.length >= 32 && /^[A-Za-z0-9+/=]+$/.test(value);
  if (value.length > 80 || !/^[\x20-\x7e]*$/.test(value) || value.includes('-----') || looksEncoded) {
    return `a ${value.length}-character value`;
  }
  return JSON.stringify(value);
}

/**
 * Same subject and issuer, signed by its own key. Not checkIssued(self): OpenSSL's
 * check also wants keyCertSign, which a self-signed server certificate lacks.
 */
function isSelfSigned(x509: X509Certificate): boolean {
  try {
    return x509.subject === x509.issuer && x509.verify(x509.publicKey);
  } catch {
    return false;
  }
}

function keyBits(key: KeyObject): number | undefined {
  const details = key.asymmetricKeyDetails;
  if (details?.modulusLength !== undefined) return details.modulusLength;
  if (details?.namedCurve !== undefined) return CURVE_BITS[details.namedCurve];
  return undefined;
}

function sha256Hex(x509: X509Certificate): string {
  return createHash('sha256').update(x509.raw).digest('hex');
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}
