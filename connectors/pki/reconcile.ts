// The planner: what the files say should be served, against what the proxy holds,
// as the changes that close the gap. Pure. The proxy's own list is the truth about
// what is served (so certificates deleted while the connector was down, or lost in
// a proxy restart, are handled the same way as any other difference).
//
// - A certificate's key is listener + fingerprint, as in the proxy.
// - Only certificates of the connector's own source ('pki' unless --source says
//   otherwise) are ever deleted; a certificate another source put (config, ctl,
//   another connector) is never touched, and not put again either.
// - Two pairs holding the same leaf count as one certificate; it goes only when no
//   pair wants it any more.
// - Puts come before deletes, so a renewal (new put, old delete) adds before it removes.

import type { CertificateInput, CertificateSummary } from '../../src/command/protocol.js';
import { keyOf } from '../../src/model/objects.js';
import type { Change } from '../../src/state/change.js';

export interface DesiredPair {
  pairKey: string;
  listeners: readonly string[];
  fingerprint: string;
  materialHash: string;
  certificate: string;
  chain: string;
  key: string;
  /** The listener's default certificate (its directory says so). */
  default?: boolean;
  /** SHA-256 of each chain certificate: compared with what the proxy holds. */
  chainFingerprints?: readonly string[];
}

/**
 * What the planner reads of a list_certificates summary (`origin`: the pair it was
 * put for, which this connector writes); the rest of the summary is not needed.
 */
export type HeldCertificate = Pick<CertificateSummary, 'listener' | 'fingerprint'> &
  Partial<Pick<CertificateSummary, 'source' | 'default' | 'chain_fingerprints' | 'origin'>>;

/** The protocol's certificate changes, as this connector sends them (always with an origin). */
export interface PutCertificate {
  op: 'put_certificate';
  certificate: CertificateInput & { origin: string };
}
export type DeleteCertificate = Extract<Change, { op: 'delete_certificate' }>;

export type CertificateChange = PutCertificate | DeleteCertificate;

export interface Plan {
  puts: PutCertificate[];
  deletes: DeleteCertificate[];
  /** For each put, the pairs that asked for it (to pin a rejection on the right files). */
  putPairs: string[][];
  /** For each put, the material hash it carries. */
  putHashes: string[];
  /** Wanted certificates that another source already holds; left alone. */
  heldElsewhere: { listener: string; fingerprint: string; source: string }[];
  /** Every key the files want, with the material hash sent for it. */
  wanted: Map<string, string>;
  /** Held certificates not wanted now but kept: their pair is there and cannot be read yet. */
  kept: { listener: string; fingerprint: string; origin: string }[];
}

function sameChain(held: HeldCertificate | undefined, pair: DesiredPair): boolean {
  const a = held?.chain_fingerprints;
  const b = pair.chainFingerprints;
  return a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export const certKey = (listener: string, fingerprint: string): string =>
  keyOf('certificate', { listener, fingerprint });

/**
 * @param sent what this connector last put per key (material hash). A key the proxy
 *   holds from `source` is left alone when it was sent with this material, or when
 *   the proxy's chain fingerprints equal the pair's (after a connector restart);
 *   otherwise it is put again, since put is idempotent and the chain may have changed.
 * @param unreadable pairs whose files are there but give no certificate now (half
 *   written, unreadable, invalid) and whose last good one this process does not
 *   know (it restarted): a held certificate whose origin is one of them is kept, so
 *   a connector restart does not withdraw what a bad moment in the files would not.
 */
export function planChanges(
  desired: readonly DesiredPair[],
  held: readonly HeldCertificate[],
  sent: ReadonlyMap<string, string>,
  source: string,
  unreadable: ReadonlySet<string> = new Set(),
): Plan {
  // Group by key; when two pairs share a leaf with different chains, the first by
  // pair key wins, so the choice does not depend on scan order.
  const sorted = [...desired].sort((a, b) => (a.pairKey < b.pairKey ? -1 : a.pairKey > b.pairKey ? 1 : 0));
  const groups = new Map<
    string,
    { pair: DesiredPair; listener: string; pairs: string[]; isDefault: boolean }
  >();
  for (const d of sorted) {
    for (const listener of new Set(d.listeners)) {
      const k = certKey(listener, d.fingerprint);
      const g = groups.get(k);
      if (g) {
        g.pairs.push(d.pairKey);
        // The same leaf in a default directory and another: it is a default.
        g.isDefault ||= d.default === true;
      } else groups.set(k, { pair: d, listener, pairs: [d.pairKey], isDefault: d.default === true });
    }
  }
  const heldAs = new Map<string, HeldCertificate>();
  for (const h of held) heldAs.set(certKey(h.listener, h.fingerprint), h);

  const plan: Plan = {
    puts: [],
    deletes: [],
    putPairs: [],
    putHashes: [],
    heldElsewhere: [],
    wanted: new Map(),
    kept: [],
  };
  for (const [k, g] of groups) {
    const as = heldAs.get(k);
    const holder = as === undefined ? undefined : (as.source ?? '');
    if (holder !== undefined && holder !== source) {
      plan.heldElsewhere.push({ listener: g.listener, fingerprint: g.pair.fingerprint, source: holder });
      continue;
    }
    plan.wanted.set(k, g.pair.materialHash);
    const origin = g.pairs[0] as string;
    if (holder === source && (as?.default === true) === g.isDefault) {
      // Held as wanted: this process sent this material, or (after a connector
      // restart) the proxy shows the same leaf with the same chain and the origin
      // a restart needs. The key is bound to the leaf, so a put would change nothing.
      if (sent.get(k) === g.pair.materialHash) continue;
      if (sameChain(as, g.pair) && as?.origin === origin) continue;
    }
    const certificate: PutCertificate['certificate'] = {
      listener: g.listener,
      certificate: g.pair.certificate,
      key: g.pair.key,
      origin,
    };
    if (g.pair.chain !== '') certificate.chain = g.pair.chain;
    if (g.isDefault) certificate.default = true;
    plan.puts.push({ op: 'put_certificate', certificate });
    plan.putPairs.push(g.pairs);
    plan.putHashes.push(g.pair.materialHash);
  }
  for (const h of held) {
    if ((h.source ?? '') !== source) continue;
    const k = certKey(h.listener, h.fingerprint);
    if (groups.has(k)) continue;
    if (h.origin !== undefined && unreadable.has(h.origin)) {
      plan.kept.push({ listener: h.listener, fingerprint: h.fingerprint, origin: h.origin });
      continue;
    }
    plan.deletes.push({ op: 'delete_certificate', listener: h.listener, fingerprint: h.fingerprint });
  }
  plan.deletes.sort((a, b) =>
    certKey(a.listener, a.fingerprint) < certKey(b.listener, b.fingerprint) ? -1 : 1,
  );
  return plan;
}

/**
 * Splits the plan into transactions under maxBytes of JSON each, puts first, then
 * deletes, order kept. Small plans (the usual renewal: one put, one delete) are one
 * transaction; a plan of thousands spans several, still adding before removing.
 * Each batch carries the index of its first change in the plan's puts+deletes.
 */
export function batchChanges(
  plan: Pick<Plan, 'puts' | 'deletes'>,
  maxBytes: number,
  maxChanges = 500,
): { changes: CertificateChange[]; start: number }[] {
  const all: CertificateChange[] = [...plan.puts, ...plan.deletes];
  const out: { changes: CertificateChange[]; start: number }[] = [];
  let cur: CertificateChange[] = [];
  let curStart = 0;
  let bytes = 0;
  all.forEach((c, i) => {
    const size = Buffer.byteLength(JSON.stringify(c)) + 1;
    if (cur.length > 0 && (bytes + size > maxBytes || cur.length >= maxChanges)) {
      out.push({ changes: cur, start: curStart });
      cur = [];
      bytes = 0;
      curStart = i;
    }
    cur.push(c);
    bytes += size;
  });
  if (cur.length > 0) out.push({ changes: cur, start: curStart });
  return out;
}

/** Indexes of changes an error's issue paths name (`changes[3].certificate.key` → 3). */
export function rejectedIndexes(issues: readonly { path: string }[]): Set<number> {
  const out = new Set<number>();
  for (const i of issues) {
    const m = /^changes\[(\d+)\]/.exec(i.path);
    if (m) out.add(Number(m[1]));
  }
  return out;
}
