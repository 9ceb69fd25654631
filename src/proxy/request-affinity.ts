// What ties a request to a backend before any balancing: the sticky cookie's
// value (sticky_session) and the hash of the cluster's hash_key (hash
// balancers). Read once per request, into an object the session reuses (a tcp
// or tls connection has only its address); the choice itself is
// chooseBackend's (data-plane.ts).

import { type HashKey, hashString, parseHashKey } from '../balancer/hash-key.js';
import { isHashing } from '../balancer/select.js';
import { type Cluster, DEFAULT_STICKY_COOKIE } from '../model/objects.js';
import type { RequestHead } from './http1-head.js';
import { requestCookie } from './sticky-cookie.js';

export interface Affinity {
  /** The sticky cookie's value, when the cluster is sticky and the request carries one. */
  sticky: string | undefined;
  /** The hash of the request's hash_key, when the cluster hashes and the request has that key. */
  key: number | undefined;
}

const CLIENT_IP: HashKey = { from: 'client_ip' };
/** Parsed once per cluster spec (a spec is replaced, never changed, on a change). */
const hashKeys = new WeakMap<Cluster, HashKey>();

function hashKeyOf(spec: Cluster): HashKey {
  let k = hashKeys.get(spec);
  if (k === undefined) {
    const parsed = spec.hash_key === undefined ? CLIENT_IP : parseHashKey(spec.hash_key);
    // The schema admitted it, so it parses; the fallback only keeps the types honest.
    k = typeof parsed === 'string' ? CLIENT_IP : parsed;
    hashKeys.set(spec, k);
  }
  return k;
}

export function readAffinity(into: Affinity, spec: Cluster, req: RequestHead, clientAddress: string): void {
  into.sticky = spec.sticky_session
    ? requestCookie(req, (spec.sticky_cookie ?? DEFAULT_STICKY_COOKIE).name)
    : undefined;
  into.key = isHashing(spec.load_balancing) ? requestKey(hashKeyOf(spec), req, clientAddress) : undefined;
}

/** The key's hash, or undefined when the request lacks it (then it is balanced round robin). */
function requestKey(k: HashKey, req: RequestHead, clientAddress: string): number | undefined {
  switch (k.from) {
    case 'client_ip':
      return clientKey(clientAddress);
    case 'path':
      return hashString(req.path);
    case 'header': {
      const i = req.lower.indexOf(k.name);
      const v = i < 0 ? '' : req.values[i]!;
      return v === '' ? undefined : hashString(v);
    }
    case 'cookie': {
      const v = requestCookie(req, k.name);
      return v === undefined || v === '' ? undefined : hashString(v);
    }
  }
}

/** An IPv4 client on a dual-stack listener shows as ::ffff:a.b.c.d: one client, one key. */
function clientKey(address: string): number {
  return hashString(address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address);
}

/**
 * A tcp or tls connection's affinity: no cookie, and of the hash keys only the
 * client address (no header, cookie or path is read from a byte stream).
 */
export function connectionAffinity(spec: Cluster, clientAddress: string | undefined): Affinity {
  const byAddress =
    isHashing(spec.load_balancing) && clientAddress !== undefined && hashKeyOf(spec).from === 'client_ip';
  return { sticky: undefined, key: byAddress ? clientKey(clientAddress) : undefined };
}
