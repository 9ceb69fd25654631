// The certificates one HTTPS listener serves, and the choice among them for a
// handshake: by SNI name (exact, then a one-label wildcard), else the
// listener's default, else a self-signed one; an ECDSA certificate for clients
// that take ECDSA, RSA for the others; the one valid the longest.

import { createSecureContext, type SecureContext } from 'node:tls';
import { type CertificateFacts, inspectCertificate } from '../certificate/inspect.js';
import { nameMatches } from '../certificate/names.js';
import type { Certificate, Listener } from '../model/objects.js';
import { contextOptions, SESSION_TIMEOUT_S } from './policy.js';
import { renewTicketsOnResumption } from './ticket-renewal.js';

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

/** Which signatures the client takes, from its ClientHello (src/tls/client-hello.ts). */
export interface Accepts {
  ecdsa: boolean;
  rsa: boolean;
}
const ANY: Accepts = { ecdsa: true, rsa: true };

export class CertificateStore {
  private exact = new Map<string, ServedCertificate[]>();
  private wildcard = new Map<string, ServedCertificate[]>();
  private defaults: ServedCertificate[] = [];
  private byName = new Map<string, Served>();
  /** One context per certificate, by fingerprint. */
  private contexts = new Map<string, Served>();
  private selfSignedServed: Served;

  constructor(
    private listener: Pick<Listener, 'tls_versions'>,
    certs: Iterable<Certificate>,
    private readonly selfSigned: { certificate: string; key: string },
    private ticketKeys: Buffer,
  ) {
    this.selfSignedServed = this.build(undefined);
    this.update(listener, certs);
  }

  /** Replaces the set; contexts of certificates that stay are reused. */
  update(listener: Pick<Listener, 'tls_versions'>, certs: Iterable<Certificate>): void {
    const policyChanged = listener.tls_versions.join() !== this.listener.tls_versions.join();
    this.listener = listener;
    if (policyChanged) this.rebuildContexts();
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
    // Contexts of certificates that stay are kept; handshakes reuse them.
    const present = new Set<string>();
    for (const s of this.certificates) present.add(s.facts.fingerprint);
    for (const fp of [...this.contexts.keys()]) if (!present.has(fp)) this.contexts.delete(fp);
  }

  /** Rotation: every context is remade with the new keys (sessions ticketed before resume no more). */
  setTicketKeys(keys: Buffer): void {
    this.ticketKeys = keys;
    this.rebuildContexts();
  }

  private rebuildContexts(): void {
    this.contexts.clear();
    this.byName.clear();
    this.selfSignedServed = this.build(undefined);
  }

  /**
   * The context for a handshake: by SNI name (exact, then wildcard), else the
   * default; among those, an ECDSA certificate for clients that take ECDSA,
   * else one whose signatures the client takes, the one valid the longest.
   */
  resolve(servername: string | undefined, accepts: Accepts = ANY): Served {
    const name = servername?.toLowerCase() ?? '';
    const cacheKey = `${accepts.ecdsa ? 'e' : '-'}${accepts.rsa ? 'r' : '-'}${name}`;
    const cached = this.byName.get(cacheKey);
    if (cached !== undefined) return cached;
    let matches = name === '' ? undefined : this.exact.get(name);
    if (matches === undefined && name !== '') {
      const dot = name.indexOf('.');
      if (dot > 0) matches = this.wildcard.get(name.slice(dot + 1));
    }
    const chosen = choose(matches ?? this.defaults, accepts);
    const served = chosen === undefined ? this.selfSignedServed : this.contextFor(chosen);
    if (this.byName.size >= MAX_CACHED_NAMES) this.byName.clear();
    this.byName.set(cacheKey, served);
    return served;
  }

  /** Every certificate served, for metrics: fingerprint and expiry. */
  get certificates(): ServedCertificate[] {
    const all = new Set<ServedCertificate>(this.defaults);
    for (const l of this.exact.values()) for (const s of l) all.add(s);
    for (const l of this.wildcard.values()) for (const s of l) all.add(s);
    return [...all];
  }

  private contextFor(c: ServedCertificate): Served {
    let served = this.contexts.get(c.facts.fingerprint);
    if (served === undefined) {
      served = this.build(c);
      this.contexts.set(c.facts.fingerprint, served);
    }
    return served;
  }

  private build(c: ServedCertificate | undefined): Served {
    const pem = c === undefined ? this.selfSigned.certificate : c.pem;
    const key = c === undefined ? this.selfSigned.key : c.key;
    const context = createSecureContext({
      ...contextOptions(this.listener),
      cert: pem,
      key,
      // Every context of every worker shares main's keys: any of them resumes any session.
      ticketKeys: this.ticketKeys,
      sessionTimeout: SESSION_TIMEOUT_S,
    });
    renewTicketsOnResumption(context, () => this.ticketKeys);
    return {
      context,
      names: c === undefined ? [] : c.facts.names,
      fingerprints: c === undefined ? [] : [c.facts.fingerprint],
    };
  }
}

/**
 * ECDSA for clients that take it (smaller, faster), else a certificate whose
 * signature the client takes, else any (the handshake then says why it fails);
 * within each, the one valid the longest.
 */
function choose(candidates: readonly ServedCertificate[], accepts: Accepts): ServedCertificate | undefined {
  const usable = (c: ServedCertificate) =>
    c.facts.key_type === 'ec' ? accepts.ecdsa : c.facts.key_type === 'rsa' ? accepts.rsa : true;
  const longest = (list: readonly ServedCertificate[]) => {
    let best: ServedCertificate | undefined;
    for (const c of list) {
      if (
        best === undefined ||
        c.facts.not_after > best.facts.not_after ||
        (c.facts.not_after === best.facts.not_after && c.facts.fingerprint < best.facts.fingerprint)
      )
        best = c;
    }
    return best;
  };
  if (accepts.ecdsa) {
    const ec = longest(candidates.filter((c) => c.facts.key_type === 'ec'));
    if (ec !== undefined) return ec;
  }
  return longest(candidates.filter(usable)) ?? longest(candidates);
}

/** True when `host` (no port, lowercase) is a name of the served certificate. */
export function hostMatchesServed(served: Served, host: string): boolean {
  for (const n of served.names) if (nameMatches(n, host)) return true;
  return false;
}
