// Sticky sessions on the wire: reading one cookie out of a request's Cookie
// fields with a scan (no map of every cookie built per request), and the
// Set-Cookie value that names a backend, its attributes formatted once per
// cluster spec.

import { type Cluster, DEFAULT_STICKY_COOKIE, type StickyCookie } from '../model/objects.js';

/** The value of cookie `name` in one Cookie field value (RFC 6265 §5.4), or undefined. */
export function cookieValue(field: string, name: string): string | undefined {
  for (let i = field.indexOf(name); i >= 0; i = field.indexOf(name, i + 1)) {
    const eq = i + name.length;
    // A whole name: at the start or after ";" (and spaces), followed by "=".
    if (field.charCodeAt(eq) !== 61 || !startsPair(field, i)) continue;
    let end = field.indexOf(';', eq + 1);
    if (end < 0) end = field.length;
    let from = eq + 1;
    while (from < end && isSpace(field.charCodeAt(from))) from++;
    while (end > from && isSpace(field.charCodeAt(end - 1))) end--;
    // RFC 6265 §4.1.1 allows the value in double quotes.
    if (end - from >= 2 && field.charCodeAt(from) === 34 && field.charCodeAt(end - 1) === 34) {
      from++;
      end--;
    }
    return field.slice(from, end);
  }
  return undefined;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

function startsPair(field: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && isSpace(field.charCodeAt(j))) j--;
  return j < 0 || field.charCodeAt(j) === 59;
}

/** The first value of cookie `name` among a request head's Cookie fields (HTTP/2 may split them). */
export function requestCookie(
  head: { readonly lower: readonly string[]; readonly values: readonly string[] },
  name: string,
): string | undefined {
  const lower = head.lower;
  for (let i = 0; i < lower.length; i++) {
    if (lower[i] !== 'cookie') continue;
    const v = cookieValue(head.values[i]!, name);
    if (v !== undefined) return v;
  }
  return undefined;
}

const attributes = new WeakMap<StickyCookie, string>();

/** `NAME=value; Path=/; …`: the Set-Cookie value naming the backend whose sticky id is `value`. */
export function setCookieValue(c: StickyCookie, value: string): string {
  let attrs = attributes.get(c);
  if (attrs === undefined) {
    attrs = `; Path=${c.path}${c.max_age_s === undefined ? '' : `; Max-Age=${c.max_age_s}`}${c.secure ? '; Secure' : ''}${c.http_only ? '; HttpOnly' : ''}; SameSite=${SAME_SITE[c.same_site]}`;
    attributes.set(c, attrs);
  }
  return `${c.name}=${value}${attrs}`;
}

const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const;

/**
 * The Set-Cookie a response carries for a sticky cluster: one naming the
 * backend that answered, unless the request's cookie already named it.
 */
export function stickySetCookie(
  spec: Cluster,
  backend: { readonly stickyId: string } | undefined,
  requestSticky: string | undefined,
): string | undefined {
  if (!spec.sticky_session || backend === undefined || backend.stickyId === requestSticky) return undefined;
  return setCookieValue(spec.sticky_cookie ?? DEFAULT_STICKY_COOKIE, backend.stickyId);
}
