// The certificates one HTTPS listener serves, and the SNI choice among them:
// an exact name, then a one-label wildcard, then the listener's default. Among
// the certificates a name matches, the one valid the longest wins.

import { createSecureContext, type SecureContext } from 'node:tls';
import type { Certificate, Listener } from '../model/objects.js';
import { type CertificateFacts, inspectCertificate, nameMatches } from './certificate.js';
import { contextOptions } from './policy.js';

export interface ServedCertificate {
  facts: CertificateFacts;
  pem: string;
  key: string;
}

/** What a handshake for one name serves. */
export interface Served {
  context: SecureContext;
  /** The names of every certificate in the context: what strict SNI checks the Host against. */
  names: readonly string[];
  fingerprints: readonly string[];
  /** PEMs the context was made of: a tls.Server's own context is set from these. */
  cert: string[];
  key: string[];
}

const parsed = new WeakMap<Certificate, ServedCertificate | null>();

/** A certificate's facts and PEMs, parsed once per object (state objects are immutable). */
export function servedCertificate(c: Certificate): ServedCertificate | undefined {
  let s = parsed.get(c);
  if (s === undefined) {
    // Admitted certificates parse; the null only guards a state built by hand.
    const r = inspectCertificate(c, { dates: false });
    s = r.ok
      ? { facts: r.cert.facts, pem: [r.cert.leafPem, ...r.cert.chainPems].join(''), key: r.cert.keyPem }
      : null;
    parsed.set(c, s);
  }
  return s ?? undefined;
}

/** Bound on cached per-name answers; a scan of random SNI names must not grow memory. */
const MAX_CACHED_NAMES = 10_000;

export class CertificateStore {
  private exact = new Map<string, ServedCertificate[]>();
  private wildcard = new Map<string, ServedCertificate[]>();
  private defaults: ServedCertificate[] = [];
  private byName = new Map<string, Served>();
  private contexts = new Map<string, Served>();
  private fallback: Served;

  constructor(
    private listener: Pick<Listener, 'tls_versions'>,
    certs: Iterable<Certificate>,
    private readonly selfSigned: { certificate: string; key: string },
  ) {
    this.selfSignedServed = this.build([]);
    this.fallback = this.selfSignedServed;
    this.update(listener, certs);
  }

  /** Replaces the set; contexts of certificates that stay are reused. */
  update(listener: Pick<Listener, 'tls_versions'>, certs: Iterable<Certificate>): void {
    const policyChanged = listener.tls_versions.join() !== this.listener.tls_versions.join();
    this.listener = listener;
    if (policyChanged) {
      this.contexts.clear();
      this.selfSignedServed = this.build([]);
    }
    const exact = new Map<string, ServedCertificate[]>();
    const wildcard = new Map<string, ServedCertificate[]>();
    const defaults: ServedCertificate[] = [];
    for (const c of certs) {
      const s = servedCertificate(c);
      if (s === undefined) continue;
      if (c.default) defaults.push(s);
      for (const name of s.facts.names) {
        const [map, key] = name.startsWith('*.') ? [wildcard, name.slice(2)] : [exact, name];
        const list = map.get(key);
        if (list) list.push(s);
        else map.set(key, [s]);
      }
    }
    this.exact = exact;
    this.wildcard = wildcard;
    this.defaults = defaults;
    this.byName = new Map();
    // Contexts whose certificates all stay are kept; handshakes reuse them.
    const present = new Set<string>();
    for (const s of this.certificates) present.add(s.facts.fingerprint);
    for (const [id, served] of this.contexts) {
      if (!served.fingerprints.every((f) => present.has(f))) this.contexts.delete(id);
    }
    const fallback = this.choose(defaults);
    this.fallback = fallback.length > 0 ? this.contextFor(fallback) : this.selfSignedServed;
  }

  /** The context for a handshake: by SNI name, or the default when none matches or none was sent. */
  resolve(servername: string | undefined): Served {
    if (servername === undefined || servername === '') return this.fallback;
    const name = servername.toLowerCase();
    const cached = this.byName.get(name);
    if (cached !== undefined) return cached;
    let matches = this.exact.get(name);
    if (matches === undefined) {
      const dot = name.indexOf('.');
      if (dot > 0) matches = this.wildcard.get(name.slice(dot + 1));
    }
    const served = matches === undefined ? this.fallback : this.contextFor(this.choose(matches));
    if (this.byName.size >= MAX_CACHED_NAMES) this.byName.clear();
    this.byName.set(name, served);
    return served;
  }

  get defaultServed(): Served {
    return this.fallback;
  }

  /**
   * What the tls.Server's own context holds: it answers clients that send no
   * SNI name, and it is also the base every SNI handshake starts from. Node
   * installs an SNI context by copying its one certificate into the
   * connection, leaving the base's certificates of other key types in place;
   * OpenSSL then prefers an ECDSA one when the client takes both. So the base
   * holds the default only when no certificate of another key type could be
   * shadowed by it, and an RSA certificate (the default or the self-signed
   * one) otherwise, which never wins over an ECDSA certificate a name has.
   */
  get baseServed(): Served {
    const d = this.fallback;
    const type = this.choose(this.defaults)[0]?.facts.key_type;
    if (type === undefined || type === 'rsa') return d;
    for (const c of this.certificates) if (c.facts.key_type !== type) return this.selfSignedServed;
    return d;
  }

  private selfSignedServed: Served;

  /** Every certificate served, for metrics: fingerprint and expiry. */
  get certificates(): ServedCertificate[] {
    const all = new Set<ServedCertificate>(this.defaults);
    for (const l of this.exact.values()) for (const s of l) all.add(s);
    for (const l of this.wildcard.values()) for (const s of l) all.add(s);
    return [...all];
  }

  /**
   * The one valid the longest. One certificate per context: Node resolves SNI
   * after OpenSSL has taken its key-type choices from the listener's first
   * context, so an RSA and an ECDSA certificate in one SNI context does not
   * give RSA-only clients the RSA one (tried: they got the default's).
   */
  private choose(candidates: readonly ServedCertificate[]): ServedCertificate[] {
    let best: ServedCertificate | undefined;
    for (const c of candidates) {
      if (
        best === undefined ||
        c.facts.not_after > best.facts.not_after ||
        (c.facts.not_after === best.facts.not_after && c.facts.fingerprint < best.facts.fingerprint)
      )
        best = c;
    }
    return best === undefined ? [] : [best];
  }

  private contextFor(chosen: ServedCertificate[]): Served {
    const id = chosen.map((c) => c.facts.fingerprint).join(',');
    let served = this.contexts.get(id);
    if (served === undefined) {
      served = this.build(chosen);
      this.contexts.set(id, served);
    }
    return served;
  }

  private build(chosen: ServedCertificate[]): Served {
    if (chosen.length === 0) {
      return {
        context: createSecureContext({
          ...contextOptions(this.listener),
          cert: this.selfSigned.certificate,
          key: this.selfSigned.key,
        }),
        names: [],
        fingerprints: [],
        cert: [this.selfSigned.certificate],
        key: [this.selfSigned.key],
      };
    }
    return {
      context: createSecureContext({
        ...contextOptions(this.listener),
        cert: chosen.map((c) => c.pem),
        key: chosen.map((c) => c.key),
      }),
      names: [...new Set(chosen.flatMap((c) => c.facts.names))],
      fingerprints: chosen.map((c) => c.facts.fingerprint),
      cert: chosen.map((c) => c.pem),
      key: chosen.map((c) => c.key),
    };
  }
}

/** True when `host` (no port, lowercase) is a name of the served certificate. */
export function hostMatchesServed(served: Served, host: string): boolean {
  for (const n of served.names) if (nameMatches(n, host)) return true;
  return false;
}
