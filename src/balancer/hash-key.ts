// What a hash balancer hashes: the key an operator names (`hash_key`: the
// client address, the path, a header or a cookie), parsed once per cluster
// spec, and the 32-bit string hash every hash balancer and Maglev table uses.
// Pure and deterministic: every worker and every machine maps a key alike.

export type HashKey =
  | { readonly from: 'client_ip' }
  | { readonly from: 'path' }
  /** `name` lowercased, as request heads keep their names for lookups. */
  | { readonly from: 'header'; readonly name: string }
  | { readonly from: 'cookie'; readonly name: string };

// RFC 9110 §5.6.2 token: header names and (RFC 6265 §4.1.1) cookie names.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

/** A `hash_key` value as kakehi reads it, or the reason it is not one. */
export function parseHashKey(s: string): HashKey | string {
  if (s === 'client_ip' || s === 'path') return { from: s };
  const colon = s.indexOf(':');
  const kind = colon < 0 ? s : s.slice(0, colon);
  if (kind === 'header' || kind === 'cookie') {
    const name = s.slice(colon + 1);
    if (colon < 0 || !TOKEN.test(name))
      return `"${s}": ${kind}: must be followed by a ${kind} name (a token such as ${kind === 'header' ? 'x-user-id' : 'session'})`;
    return kind === 'header' ? { from: 'header', name: name.toLowerCase() } : { from: 'cookie', name };
  }
  return `"${s}" is not a hash key; use client_ip, path, header:<name> or cookie:<name>`;
}

/** Murmur3's 32-bit finalizer: every input bit flips about half the output bits. */
export function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * FNV-1a over the UTF-16 code units, then fmix32 so keys differing in their
 * last character ("user1", "user2") do not land side by side. `seed` gives
 * independent hashes of one string (Maglev needs two per backend).
 */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
