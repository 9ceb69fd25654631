// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header
// a load balancer in front writes before a connection's first byte to say who the
// client was, and the version-2 header kakehi writes to a backend for the same
// reason. Reading is I/O-free and bounded, like the ClientHello reader: the caller
// feeds what has arrived and gets "need more", a header and how many bytes it
// took, or a refusal with its reason, decided as soon as the bytes allow.

import { isIPv4, isIPv6 } from 'node:net';
import { crc32c } from '@aws-crypto/crc32c';

/** Version 1's longest line, CRLF included (the "worst case" of the specification). */
export const MAX_V1_BYTES = 107;
/**
 * The most a version-2 header may hold here. The format allows 16 + 65,535 bytes;
 * real senders write addresses (at most 216 bytes) and a few TLVs, so 4 KiB leaves
 * room for TLS details and keeps a connection that has not said who it is small.
 */
export const MAX_V2_BYTES = 4096;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V2_FIXED = 16;

/** TLV types this module reads (others are kept as they came). */
export const TLV = { ALPN: 0x01, AUTHORITY: 0x02, CRC32C: 0x03, NOOP: 0x04, UNIQUE_ID: 0x05 } as const;

export interface Endpoint {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export interface ProxyHeader {
  version: 1 | 2;
  /**
   * `proxy`: relayed for a client, with its addresses when the family is IP.
   * `local`: the balancer's own connection (a health check): use the socket's addresses.
   */
  command: 'proxy' | 'local';
  /** Absent for `local`, for version 1's UNKNOWN, and for version 2's UNSPEC and UNIX families. */
  source?: Endpoint;
  destination?: Endpoint;
  /** Version 2's type-length-value extensions, in order; the CRC32C one is checked, then kept. */
  tlvs: { type: number; value: Buffer }[];
}

export type ProxyRefusal =
  | 'not_proxy_protocol' // the first bytes are neither signature
  | 'too_large' // past MAX_V1_BYTES without CRLF, or a v2 length past MAX_V2_BYTES
  | 'malformed' // a field that is not what the version allows
  | 'unsupported' // well-formed, but a version, command or transport kakehi does not take
  | 'bad_checksum'; // a CRC32C TLV that does not match

export type ProxyHeaderResult =
  | { kind: 'incomplete' }
  | { kind: 'header'; header: ProxyHeader; length: number }
  | { kind: 'invalid'; reason: ProxyRefusal; message: string };

const invalid = (reason: ProxyRefusal, message: string): ProxyHeaderResult => ({
  kind: 'invalid',
  reason,
  message,
});

/**
 * Reads the PROXY header at the start of `buf` (everything received so far). Bytes
 * after the header are the client's own and are not looked at.
 */
export function readProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return { kind: 'incomplete' };
  if (buf[0] === V1_PREFIX[0]) {
    if (!isPrefixOf(buf, V1_PREFIX))
      return invalid('not_proxy_protocol', 'neither a PROXY v1 line nor a v2 signature');
    return buf.length < V1_PREFIX.length ? { kind: 'incomplete' } : readV1(buf);
  }
  if (buf[0] === V2_SIGNATURE[0]) {
    if (!isPrefixOf(buf, V2_SIGNATURE))
      return invalid('not_proxy_protocol', 'neither a PROXY v1 line nor a v2 signature');
    return buf.length < V2_FIXED ? { kind: 'incomplete' } : readV2(buf);
  }
  return invalid('not_proxy_protocol', 'neither a PROXY v1 line nor a v2 signature');
}

/** `buf` and `sig` agree on their common length. */
function isPrefixOf(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

// ---- version 1: "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n" ----

function readV1(buf: Buffer): ProxyHeaderResult {
  const window = buf.subarray(0, MAX_V1_BYTES);
  const cr = window.indexOf(0x0d);
  const lf = window.indexOf(0x0a);
  if (lf >= 0 && (cr < 0 || cr > lf))
    return invalid('malformed', 'v1 line ends in a bare LF; it must end in CRLF');
  if (cr < 0 || cr === window.length - 1) {
    return buf.length >= MAX_V1_BYTES
      ? invalid('too_large', `no CRLF within ${MAX_V1_BYTES} bytes of a v1 line`)
      : { kind: 'incomplete' };
  }
  if (window[cr + 1] !== 0x0a) return invalid('malformed', 'v1 line has a CR not followed by LF');
  const line = window.subarray(0, cr);
  for (const c of line) {
    if (c < 0x20 || c > 0x7e) return invalid('malformed', 'v1 line holds a byte that is not printable ASCII');
  }
  const length = cr + 2;
  const fields = line.toString('latin1').split(' ');
  const proto = fields[1];
  // UNKNOWN: the receiver must ignore whatever follows it on the line.
  if (proto === 'UNKNOWN')
    return { kind: 'header', header: { version: 1, command: 'proxy', tlvs: [] }, length };
  if (proto !== 'TCP4' && proto !== 'TCP6') {
    return invalid(
      'malformed',
      `v1 protocol must be TCP4, TCP6 or UNKNOWN (got ${JSON.stringify(proto ?? '')})`,
    );
  }
  if (fields.length !== 6) return invalid('malformed', 'v1 line must be "PROXY TCPx SRC DST SPORT DPORT"');
  const family = proto === 'TCP4' ? 'IPv4' : 'IPv6';
  const [, , src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const srcOk = family === 'IPv4' ? isIPv4(src) : isIPv6(src);
  const dstOk = family === 'IPv4' ? isIPv4(dst) : isIPv6(dst);
  if (!srcOk || !dstOk) return invalid('malformed', `v1 addresses must be ${family} addresses for ${proto}`);
  const sp = v1Port(sport);
  const dp = v1Port(dport);
  if (sp === undefined || dp === undefined) {
    return invalid('malformed', 'v1 ports must be decimal 0-65535 without leading zeros');
  }
  return {
    kind: 'header',
    header: {
      version: 1,
      command: 'proxy',
      source: { address: src, port: sp, family },
      destination: { address: dst, port: dp, family },
      tlvs: [],
    },
    length,
  };
}

function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

// ---- version 2: signature, version/command, family/transport, length, addresses, TLVs ----

const FAMILY_UNSPEC = 0;
const FAMILY_INET = 1;
const FAMILY_INET6 = 2;
const FAMILY_UNIX = 3;
const ADDRESS_BYTES: Record<number, number> = {
  [FAMILY_UNSPEC]: 0,
  [FAMILY_INET]: 12,
  [FAMILY_INET6]: 36,
  [FAMILY_UNIX]: 216,
};
const TRANSPORT_UNSPEC = 0;
const TRANSPORT_STREAM = 1;

function readV2(buf: Buffer): ProxyHeaderResult {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid('unsupported', `v2 version nibble is ${verCmd >> 4}; only 2 exists`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid('unsupported', `v2 command ${cmd} is neither LOCAL (0) nor PROXY (1)`);
  const famTransport = buf[13]!;
  const family = famTransport >> 4;
  const transport = famTransport & 0x0f;
  if (family > FAMILY_UNIX) return invalid('malformed', `v2 address family ${family} does not exist`);
  if (transport > 2) return invalid('malformed', `v2 transport ${transport} does not exist`);
  const bodyLength = buf.readUInt16BE(14);
  const length = V2_FIXED + bodyLength;
  if (length > MAX_V2_BYTES)
    return invalid('too_large', `v2 header of ${length} bytes; at most ${MAX_V2_BYTES}`);
  if (buf.length < length) return { kind: 'incomplete' };
  const header = buf.subarray(0, length);
  const command = cmd === 0 ? 'local' : 'proxy';
  // LOCAL: the specification tells the receiver to skip the rest and use the real addresses.
  if (command === 'proxy' && transport !== TRANSPORT_STREAM && transport !== TRANSPORT_UNSPEC) {
    return invalid('unsupported', 'v2 transport is DGRAM; a stream listener takes STREAM only');
  }
  const addressBytes = ADDRESS_BYTES[family]!;
  if (bodyLength < addressBytes) {
    return invalid(
      'malformed',
      `v2 length ${bodyLength} is shorter than the ${addressBytes} address bytes of its family`,
    );
  }
  const body = header.subarray(V2_FIXED);
  const tlvs = readTlvs(body.subarray(addressBytes));
  if (typeof tlvs === 'string') return invalid('malformed', tlvs);
  const crc = tlvs.find((t) => t.type === TLV.CRC32C);
  if (crc !== undefined) {
    if (crc.value.length !== 4) return invalid('malformed', 'v2 CRC32C TLV must hold 4 bytes');
    // The checksum covers the whole header with its own value zeroed.
    const zeroed = Buffer.from(header);
    const at = crc.value.byteOffset - header.byteOffset;
    zeroed.fill(0, at, at + 4);
    if (crc32c(zeroed) >>> 0 !== crc.value.readUInt32BE(0)) {
      return invalid('bad_checksum', 'v2 CRC32C TLV does not match the header');
    }
  }
  const parsed: ProxyHeader = { version: 2, command, tlvs };
  if (command === 'proxy' && (family === FAMILY_INET || family === FAMILY_INET6)) {
    const v4 = family === FAMILY_INET;
    const n = v4 ? 4 : 16;
    const fam = v4 ? 'IPv4' : 'IPv6';
    parsed.source = { address: ipText(body.subarray(0, n), v4), port: body.readUInt16BE(2 * n), family: fam };
    parsed.destination = {
      address: ipText(body.subarray(n, 2 * n), v4),
      port: body.readUInt16BE(2 * n + 2),
      family: fam,
    };
  }
  return { kind: 'header', header: parsed, length };
}

function readTlvs(b: Buffer): { type: number; value: Buffer }[] | string {
  const out: { type: number; value: Buffer }[] = [];
  let at = 0;
  while (at < b.length) {
    if (b.length - at < 3) return 'v2 TLV area ends inside a TLV header';
    const type = b[at]!;
    const len = b.readUInt16BE(at + 1);
    if (at + 3 + len > b.length) return `v2 TLV of type 0x${type.toString(16)} runs past the header's length`;
    out.push({ type, value: b.subarray(at + 3, at + 3 + len) });
    at += 3 + len;
  }
  return out;
}

function ipText(b: Buffer, v4: boolean): string {
  if (v4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The canonical form (RFC 5952): the longest run of two or more zero groups as "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

// ---- writing version 2, for backends with send_proxy ----

/**
 * The version-2 header for a connection from `source` to `destination` (both of
 * one family), with `tlvs` appended; `local` writes a LOCAL header (no addresses).
 */
export function encodeProxyV2(
  endpoints: { source: Endpoint; destination: Endpoint } | 'local',
  tlvs: readonly { type: number; value: Buffer }[] = [],
  options: { checksum?: boolean } = {},
): Buffer {
  // The CRC32C TLV goes last, written as zeros and filled once the header is whole.
  if (options.checksum)
    tlvs = [...tlvs.filter((t) => t.type !== TLV.CRC32C), { type: TLV.CRC32C, value: Buffer.alloc(4) }];
  let family = FAMILY_UNSPEC;
  let addresses = Buffer.alloc(0);
  if (endpoints !== 'local') {
    const { source, destination } = endpoints;
    if (source.family !== destination.family) throw new Error('source and destination must be of one family');
    const v4 = source.family === 'IPv4';
    family = v4 ? FAMILY_INET : FAMILY_INET6;
    const n = v4 ? 4 : 16;
    addresses = Buffer.alloc(2 * n + 4);
    ipBytes(source.address, v4).copy(addresses, 0);
    ipBytes(destination.address, v4).copy(addresses, n);
    addresses.writeUInt16BE(source.port, 2 * n);
    addresses.writeUInt16BE(destination.port, 2 * n + 2);
  }
  const tlvBytes = tlvs.map((t) => {
    const b = Buffer.alloc(3 + t.value.length);
    b[0] = t.type;
    b.writeUInt16BE(t.value.length, 1);
    t.value.copy(b, 3);
    return b;
  });
  const fixed = Buffer.alloc(V2_FIXED);
  V2_SIGNATURE.copy(fixed, 0);
  fixed[12] = endpoints === 'local' ? 0x20 : 0x21;
  fixed[13] = (family << 4) | (endpoints === 'local' ? TRANSPORT_UNSPEC : TRANSPORT_STREAM);
  const body = Buffer.concat([addresses, ...tlvBytes]);
  if (V2_FIXED + body.length > MAX_V2_BYTES) throw new Error(`a v2 header over ${MAX_V2_BYTES} bytes`);
  fixed.writeUInt16BE(body.length, 14);
  const out = Buffer.concat([fixed, body]);
  if (options.checksum) out.writeUInt32BE(crc32c(out) >>> 0, out.length - 4);
  return out;
}

function ipBytes(address: string, v4: boolean): Buffer {
  if (v4) {
    if (!isIPv4(address)) throw new Error(`not an IPv4 address: ${address}`);
    return Buffer.from(address.split('.').map(Number));
  }
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  const out = Buffer.alloc(16);
  let text = address;
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] as string[];
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), 2 * i);
  return out;
}
