// An HTTP/2 request's header block as the HTTP/1.1 head the client session
// parses (RFC 9113 §8.3 to RFC 9112): pseudo-headers become the request line
// and Host, cookie crumbs are joined again (§8.2.3), and what HTTP/2 forbids is
// refused here too, whatever nghttp2 already checked: a field that could frame
// the request differently on the HTTP/1.1 side must never get through.
// I/O-free, so tests feed it header lists directly.

/** How the request body reaches the HTTP/1.1 side. */
export type H2BodyFraming = 'none' | 'length' | 'chunked';

export interface H2RequestHead {
  /** The HTTP/1.1 head, CRLF-terminated, ready for the request parser. */
  head: string;
  method: string;
  framing: H2BodyFraming;
}

/** Connection-specific fields: a malformed request in HTTP/2 (RFC 9113 §8.2.2). */
export const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * `raw` is the header block as name/value pairs in arrival order (Node's
 * rawHeaders); `endStream` says the HEADERS frame ended the stream (no body).
 * A string is why the request is malformed: the stream is reset with PROTOCOL_ERROR.
 */
export function h1RequestOfH2(raw: readonly string[], endStream: boolean): H2RequestHead | string {
  let method: string | undefined;
  let path: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let host: string | undefined;
  let contentLength = false;
  let cookie: string | undefined;
  let fields = '';
  let regularSeen = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regularSeen) return `pseudo-header ${name} after a regular field`;
      switch (name) {
        case ':method':
          if (method !== undefined) return 'two :method fields';
          method = value;
          break;
        case ':path':
          if (path !== undefined) return 'two :path fields';
          path = value;
          break;
        case ':scheme':
          if (scheme !== undefined) return 'two :scheme fields';
          scheme = value;
          break;
        case ':authority':
          if (authority !== undefined) return 'two :authority fields';
          authority = value;
          break;
        default:
          // :protocol (RFC 8441) is not offered: SETTINGS_ENABLE_CONNECT_PROTOCOL stays 0.
          return `pseudo-header ${name} is not served`;
      }
      continue;
    }
    regularSeen = true;
    if (name !== name.toLowerCase()) return `field name ${name} is not lowercase`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'te') {
      if (value !== 'trailers') return 'te other than "trailers"';
      continue; // hop-by-hop on the HTTP/1.1 side
    }
    if (name === 'host') {
      if (host !== undefined) return 'two host fields';
      host = value;
      continue;
    }
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    if (name === 'content-length') contentLength = true;
    fields += `${name}: ${value}\r\n`;
  }
  if (method === undefined) return 'no :method';
  if (method === 'CONNECT') return 'CONNECT is not served';
  if (path === undefined || path === '') return 'no :path';
  if (scheme === undefined) return 'no :scheme';
  // RFC 9113 §8.3.1: Host and :authority naming two origins is malformed.
  if (authority !== undefined && host !== undefined && host !== authority)
    return `host "${host}" differs from :authority "${authority}"`;
  const hostValue = authority ?? host;
  if (cookie !== undefined) fields += `cookie: ${cookie}\r\n`;
  let framing: H2BodyFraming = 'none';
  if (!endStream) {
    framing = contentLength ? 'length' : 'chunked';
    if (framing === 'chunked') fields += 'transfer-encoding: chunked\r\n';
  }
  // Host first, as HTTP/1.1 clients send it; none at all is left to the parser (400).
  const hostLine = hostValue === undefined ? '' : `host: ${hostValue}\r\n`;
  return { head: `${method} ${path} HTTP/1.1\r\n${hostLine}${fields}\r\n`, method, framing };
}

/** Trailer fields of a chunked HTTP/1.1 body: the ones a trailer may carry (RFC 9110 §6.5.1). */
export function h1TrailersOfH2(headers: Readonly<Record<string, string | string[] | undefined>>): string {
  let out = '';
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined || TRAILER_FORBIDDEN.has(name)) continue;
    for (const v of Array.isArray(value) ? value : [value]) out += `${name}: ${v}\r\n`;
  }
  return out;
}

/** Fields that frame, route or authenticate a message: never taken from a trailer. */
const TRAILER_FORBIDDEN = new Set([
  ...CONNECTION_SPECIFIC,
  'te',
  'host',
  'content-length',
  'content-type',
  'authorization',
  'cookie',
  'trailer',
]);
