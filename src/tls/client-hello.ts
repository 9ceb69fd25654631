// Reads what a TLS ClientHello says before any handshake starts: the SNI name
// and which signature algorithms the client takes (ECDSA, RSA). The listener
// picks the certificate with them, then hands the bytes to a TLSSocket. Node's
// SNICallback cannot do this: it never sees the signature algorithms, and it
// mixes the SNI context's certificate with the base context's (docs/tls.md).
// RFC 8446 §4.1.2 and RFC 5246 §7.4.1.2; bounds are checked at every step.

/**
 * A ClientHello larger than this (the handshake message, not its framing) is
 * refused: real ones are a few KiB. Records may be as small as one byte, as
 * OpenSSL and nginx allow; empty ones are refused, so the bytes read before a
 * verdict stay bounded too (at most 6 per hello byte, plus one record).
 */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;
/** RFC 8446 §5.1: a plaintext record longer than this is a record_overflow. */
const MAX_RECORD_BYTES = 2 ** 14;

export interface ClientHello {
  servername: string | undefined;
  /** The client accepts ECDSA signatures (or said nothing, which TLS 1.2 allows). */
  ecdsa: boolean;
  /** The client accepts RSA (PKCS#1 or PSS) signatures (or said nothing). */
  rsa: boolean;
}

/**
 * Why a hello is refused. `not_tls`: the bytes are no TLS record at all;
 * `unexpected_message`: a record or handshake message of another type;
 * `record_overflow`: a record over 2^14 bytes; `too_large`: a hello over
 * MAX_CLIENT_HELLO_BYTES; `malformed`: a length or field out of range.
 */
export type HelloRefusal = 'not_tls' | 'unexpected_message' | 'record_overflow' | 'too_large' | 'malformed';

export type ClientHelloResult =
  | { kind: 'incomplete' }
  | { kind: 'hello'; hello: ClientHello }
  | { kind: 'invalid'; reason: HelloRefusal };

const RECORD_CHANGE_CIPHER_SPEC = 20;
const RECORD_APPLICATION_DATA = 23;
const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_SIGNATURE_ALGORITHMS = 13;
const INCOMPLETE: ClientHelloResult = { kind: 'incomplete' };

/**
 * Reads a ClientHello from the bytes of a connection as they arrive, chunk by
 * chunk, reassembling it across handshake records. I/O-free; each byte is
 * copied a bounded number of times, so a client trickling one byte per packet
 * costs linear work.
 */
export class ClientHelloReader {
  private result: ClientHelloResult = INCOMPLETE;
  /** Bytes not yet consumed: at most a record header and a partial record. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** The current record's payload length, once its header is read. */
  private recordLength = -1;
  private records = 0;
  /** Handshake payload so far (the ClientHello and its 4-byte header). */
  private readonly message: Buffer[] = [];
  private messageLength = 0;
  /** The whole handshake message's length, once its header is read. */
  private need = -1;

  push(chunk: Buffer): ClientHelloResult {
    if (this.result.kind !== 'incomplete' || chunk.length === 0) return this.result;
    if (this.records === 0 && this.pendingLength === 0 && !isRecordType(chunk[0] as number))
      return this.finish({ kind: 'invalid', reason: 'not_tls' });
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    while (this.result.kind === 'incomplete') {
      const want = this.recordLength < 0 ? 5 : 5 + this.recordLength;
      if (this.pendingLength < want) break;
      const buf = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
      let at = 0;
      while (this.result.kind === 'incomplete' && buf.length >= at + 5) {
        if (this.recordLength < 0) {
          const refused = this.checkHeader(buf, at);
          if (refused !== undefined) return this.finish({ kind: 'invalid', reason: refused });
          this.recordLength = buf.readUInt16BE(at + 3);
        }
        if (buf.length < at + 5 + this.recordLength) break;
        this.takeFragment(buf.subarray(at + 5, at + 5 + this.recordLength));
        at += 5 + this.recordLength;
        this.recordLength = -1;
        this.records++;
      }
      this.pending = at === buf.length ? [] : [buf.subarray(at)];
      this.pendingLength = buf.length - at;
    }
    return this.result;
  }

  private checkHeader(buf: Buffer, at: number): HelloRefusal | undefined {
    const type = buf[at] as number;
    // Like OpenSSL, a first record that does not look like TLS gets no alert: the peer speaks something else.
    if (this.records === 0 && (!isRecordType(type) || buf[at + 1] !== 3)) return 'not_tls';
    if (type !== RECORD_HANDSHAKE) return 'unexpected_message';
    if (buf[at + 1] !== 3) return 'malformed';
    const len = buf.readUInt16BE(at + 3);
    // RFC 8446 §5.1: no zero-length handshake fragments; this also bounds the records per hello.
    if (len === 0) return 'malformed';
    if (len > MAX_RECORD_BYTES) return 'record_overflow';
    return undefined;
  }

  private takeFragment(fragment: Buffer): void {
    this.message.push(fragment);
    this.messageLength += fragment.length;
    if (this.need < 0 && this.messageLength >= 4) {
      const head = Buffer.concat(this.message);
      this.message.splice(0, this.message.length, head);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) {
        this.finish({ kind: 'invalid', reason: 'unexpected_message' });
        return;
      }
      this.need = 4 + head.readUIntBE(1, 3);
      if (this.need > MAX_CLIENT_HELLO_BYTES) {
        this.finish({ kind: 'invalid', reason: 'too_large' });
        return;
      }
    }
    if (this.need < 0 || this.messageLength < this.need) return;
    const hello = readHello(Buffer.concat(this.message).subarray(4, this.need));
    this.finish(hello === undefined ? { kind: 'invalid', reason: 'malformed' } : { kind: 'hello', hello });
  }

  private finish(r: ClientHelloResult): ClientHelloResult {
    this.result = r;
    this.pending = [];
    this.message.length = 0;
    return r;
  }
}

function isRecordType(type: number): boolean {
  return type >= RECORD_CHANGE_CIPHER_SPEC && type <= RECORD_APPLICATION_DATA;
}

/** Parses the ClientHello at the start of `buf` in one go. */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  return new ClientHelloReader().push(buf);
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
