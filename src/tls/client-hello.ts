// Reads what a TLS ClientHello says before any handshake starts: the SNI name
// and which signature algorithms the client takes (ECDSA, RSA). The listener
// picks the certificate with them, then hands the bytes to a TLSSocket. Node's
// SNICallback cannot do this: it never sees the signature algorithms, and it
// mixes the SNI context's certificate with the base context's (docs/tls.md).
// RFC 8446 §4.1.2 and RFC 5246 §7.4.1.2; bounds are checked at every step.

/** A ClientHello larger than this (after reassembly) is refused: real ones are a few KiB. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

export interface ClientHello {
  servername: string | undefined;
  /** The client accepts ECDSA signatures (or said nothing, which TLS 1.2 allows). */
  ecdsa: boolean;
  /** The client accepts RSA (PKCS#1 or PSS) signatures (or said nothing). */
  rsa: boolean;
}

export type ClientHelloResult =
  | { kind: 'incomplete' }
  | { kind: 'hello'; hello: ClientHello }
  | { kind: 'invalid'; reason: 'not_tls' | 'too_large' | 'malformed' };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_SIGNATURE_ALGORITHMS = 13;

/** Parses the ClientHello at the start of `buf`, reassembling it across TLS records. */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length >= 1 && buf[0] !== RECORD_HANDSHAKE) return { kind: 'invalid', reason: 'not_tls' };
  // Concatenate handshake-record payloads until the ClientHello's own length is covered.
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  let at = 0;
  while (need < 0 || have < need) {
    if (buf.length < at + 5) return { kind: 'incomplete' };
    if (buf[at] !== RECORD_HANDSHAKE || buf[at + 1] !== 3) return { kind: 'invalid', reason: 'not_tls' };
    const len = buf.readUInt16BE(at + 3);
    if (len === 0) return { kind: 'invalid', reason: 'malformed' };
    if (buf.length < at + 5 + len) return { kind: 'incomplete' };
    parts.push(buf.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    if (need < 0 && have >= 4) {
      const head = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: 'invalid', reason: 'malformed' };
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO_BYTES) return { kind: 'invalid', reason: 'too_large' };
    }
    if (at > MAX_CLIENT_HELLO_BYTES + 5 * 8) return { kind: 'invalid', reason: 'too_large' };
  }
  const msg = (parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)).subarray(4, need);
  const hello = readHello(msg);
  return hello === undefined ? { kind: 'invalid', reason: 'malformed' } : { kind: 'hello', hello };
}

/** The ClientHello body: version, random, session id, suites, compression, extensions. */
function readHello(b: Buffer): ClientHello | undefined {
  let p = 2 + 32; // legacy_version, random
  if (b.length < p + 1) return undefined;
  p += 1 + (b[p] as number); // legacy_session_id
  if (b.length < p + 2) return undefined;
  p += 2 + b.readUInt16BE(p); // cipher_suites
  if (b.length < p + 1) return undefined;
  p += 1 + (b[p] as number); // legacy_compression_methods
  const hello: ClientHello = { servername: undefined, ecdsa: true, rsa: true };
  if (p === b.length) return hello; // no extensions at all
  if (b.length < p + 2) return undefined;
  const end = p + 2 + b.readUInt16BE(p);
  if (end > b.length) return undefined;
  p += 2;
  while (p < end) {
    if (end < p + 4) return undefined;
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const body = p + 4;
    if (body + len > end) return undefined;
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(b.subarray(body, body + len));
      if (name === null) return undefined;
      hello.servername = name;
    } else if (type === EXT_SIGNATURE_ALGORITHMS) {
      const algs = readSignatureAlgorithms(b.subarray(body, body + len));
      if (algs === undefined) return undefined;
      hello.ecdsa = algs.ecdsa;
      hello.rsa = algs.rsa;
    }
    p = body + len;
  }
  return hello;
}

/** The host_name entry of a server_name extension; null when malformed. */
function readServerName(e: Buffer): string | undefined | null {
  if (e.length < 2 || 2 + e.readUInt16BE(0) !== e.length) return null;
  let p = 2;
  while (p < e.length) {
    if (e.length < p + 3) return null;
    const type = e[p] as number;
    const len = e.readUInt16BE(p + 1);
    if (e.length < p + 3 + len) return null;
    if (type === 0) {
      const name = e.toString('latin1', p + 3, p + 3 + len);
      // RFC 6066: ASCII, no trailing dot; anything else is not a name we could serve.
      return /^[A-Za-z0-9._-]{1,253}$/.test(name) ? name.toLowerCase() : undefined;
    }
    p += 3 + len;
  }
  return undefined;
}

function readSignatureAlgorithms(e: Buffer): { ecdsa: boolean; rsa: boolean } | undefined {
  if (e.length < 2) return undefined;
  const len = e.readUInt16BE(0);
  if (len % 2 !== 0 || 2 + len !== e.length) return undefined;
  let ecdsa = false;
  let rsa = false;
  for (let p = 2; p < e.length; p += 2) {
    const hash = e[p] as number;
    const sig = e[p + 1] as number;
    // TLS 1.2 pairs (hash, signature): signature 1 = RSA, 3 = ECDSA.
    // TLS 1.3 schemes 0x04-0x06|03 are ECDSA, 0x04-0x06|01 RSA PKCS#1, 0x0804-0x0806 and 0x0809-0x080b RSA-PSS.
    if (sig === 3 && hash >= 2 && hash <= 6) ecdsa = true;
    else if (sig === 1 && hash >= 2 && hash <= 6) rsa = true;
    else if (hash === 8 && ((sig >= 4 && sig <= 6) || (sig >= 9 && sig <= 11))) rsa = true;
  }
  return { ecdsa, rsa };
}
