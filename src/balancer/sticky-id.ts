// The value a sticky cookie carries to name a backend: the backend's own
// `sticky_id` when the operator set one, else an opaque one derived from its
// cluster and id. Never the address, which a client has no business knowing;
// derived from the key and nothing else, so every worker, every machine and
// every restart names a backend alike, and its cookies survive an address change.

import { createHash } from 'node:crypto';
import type { FieldIssue } from '../errors.js';

/** Cookie values (RFC 6265 §4.1.1 cookie-octet): no spaces, quotes, commas, semicolons or backslashes. */
const COOKIE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,64}$/;

export function stickyIdProblem(s: string): string | undefined {
  return COOKIE_VALUE.test(s)
    ? undefined
    : `"${s}" cannot be a cookie value: 1-64 printable ASCII characters without spaces, '"', ',', ';' or '\\'`;
}

/** 16 hex digits (64 bits) of SHA-256 over cluster and id: short, and unique in any cluster that will ever be. */
export function stickyIdOf(b: {
  readonly cluster: string;
  readonly id: string;
  readonly sticky_id?: string | undefined;
}): string {
  if (b.sticky_id !== undefined) return b.sticky_id;
  return createHash('sha256')
    .update(`kakehi sticky\u0000${b.cluster}\u0000${b.id}`)
    .digest('hex')
    .slice(0, 16);
}

interface StickyNamed {
  readonly cluster: string;
  readonly id: string;
  readonly sticky_id?: string | undefined;
}

/**
 * For each put backend with a sticky_id, the other backends of its cluster
 * whose cookie value is the same: a cookie must name one backend. Scans only
 * the clusters of those puts.
 */
export function stickyIdClashes(
  backends: Iterable<StickyNamed>,
  puts: readonly { readonly backend: StickyNamed; readonly at: string }[],
): FieldIssue[] {
  const clusters = new Set(puts.map((p) => p.backend.cluster));
  const owners = new Map<string, string[]>();
  for (const b of backends) {
    if (!clusters.has(b.cluster)) continue;
    const k = `${b.cluster}\u0000${stickyIdOf(b)}`;
    const ids = owners.get(k);
    if (ids === undefined) owners.set(k, [b.id]);
    else ids.push(b.id);
  }
  const issues: FieldIssue[] = [];
  for (const { backend: b, at } of puts) {
    const others = (owners.get(`${b.cluster}\u0000${stickyIdOf(b)}`) ?? []).filter((id) => id !== b.id);
    if (others.length > 0)
      issues.push({
        path: `${at}.sticky_id`,
        reason: `"${stickyIdOf(b)}" is also the sticky id of backend ${others.map((id) => `${b.cluster}/${id}`).join(', ')}; a sticky cookie must name one backend`,
      });
  }
  return issues;
}
