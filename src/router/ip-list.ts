// Client address lists of a frontend: CIDR blocks, IPv4 and IPv6, parsed once
// when the frontend is put into a matcher that compares integers per request
// (no string or BigInt work on the request path). An IPv4-mapped IPv6 client
// (::ffff:1.2.3.4, what a dual-stack socket reports) matches IPv4 blocks.

import { isIPv4, isIPv6 } from 'node:net';

/** One block: its network and mask as four 32-bit words (IPv4 uses the last word only). */
interface Block {
  readonly v4: boolean;
  readonly net: Uint32Array;
  readonly mask: Uint32Array;
}

/** A parsed CIDR list; `matches` is what a request asks. */
export interface IpList {
  readonly size: number;
  matches(address: string): boolean;
}

/** The reason a CIDR (or bare address) is refused, or undefined when it parses. */
export function cidrProblem(s: string): string | undefined {
  const b = parseBlock(s);
  return typeof b === 'string' ? b : undefined;
}

/**
 * Builds the matcher of a list of CIDRs, each already checked by cidrProblem.
 * @throws Error naming the first entry that does not parse
 */
export function ipList(cidrs: readonly string[]): IpList {
  const v4: Block[] = [];
  const v6: Block[] = [];
  for (const c of cidrs) {
    const b = parseBlock(c);
    if (typeof b === 'string') throw new Error(b);
    (b.v4 ? v4 : v6).push(b);
  }
  const words = new Uint32Array(4);
  return {
    size: cidrs.length,
    matches(address: string): boolean {
      const family = addressWords(address, words);
      if (family === undefined) return false;
      const blocks = family === 4 ? v4 : v6;
      for (const b of blocks) if (inBlock(b, words)) return true;
      return false;
    },
  };
}

function inBlock(b: Block, w: Uint32Array): boolean {
  for (let i = 0; i < 4; i++) if ((w[i]! & b.mask[i]!) >>> 0 !== b.net[i]) return false;
  return true;
}

function parseBlock(s: string): Block | string {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const words = new Uint32Array(4);
  const family = addressWords(addr, words);
  if (family === undefined)
    return `"${s}" is not an IPv4 or IPv6 address or CIDR block (such as 10.0.0.0/8 or fd00::/8)`;
  const v4Text = isIPv4(addr);
  const bits = v4Text ? 32 : 128;
  let len = bits;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits)
      return `"${s}": the prefix length must be a number from 0 to ${bits}`;
    len = Number(p);
  }
  // An IPv4-mapped block is an IPv4 block: clients are compared in that form.
  if (family === 4 && !v4Text) {
    if (len < 96) return `"${s}" reaches past the IPv4-mapped range; write it as an IPv4 block`;
    len -= 96;
  }
  const mask = maskWords(family === 4 ? 96 + len : len);
  const net = new Uint32Array(4);
  for (let i = 0; i < 4; i++) net[i] = (words[i]! & mask[i]!) >>> 0;
  if (net.some((n, i) => n !== words[i]))
    return `"${s}" has bits set past its prefix length; write the network address (${formatBlock(net, family, len)})`;
  return { v4: family === 4, net, mask };
}

function maskWords(len: number): Uint32Array {
  const m = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, len - i * 32));
    m[i] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }
  return m;
}

function formatBlock(net: Uint32Array, family: 4 | 6, len: number): string {
  if (family === 4) {
    const n = net[3]!;
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 4; i++) groups.push((net[i]! >>> 16).toString(16), (net[i]! & 0xffff).toString(16));
  return `${groups.join(':')}/${len}`;
}

/**
 * Writes an address into four words: IPv4 (and IPv4-mapped IPv6) as
 * ::ffff:a.b.c.d, family 4. Undefined when it is not an address.
 */
function addressWords(address: string, out: Uint32Array): 4 | 6 | undefined {
  if (isIPv4(address)) {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0xffff;
    out[3] = v4Word(address);
    return 4;
  }
  if (!isIPv6(address) || address.includes('%')) return undefined;
  const groups = v6Groups(address);
  for (let i = 0; i < 4; i++) out[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  return out[0] === 0 && out[1] === 0 && out[2] === 0xffff ? 4 : 6;
}

function v4Word(a: string): number {
  const p = a.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** The eight groups of a valid IPv6 address (isIPv6 already said so). */
function v6Groups(a: string): number[] {
  let tail: number[] = [];
  let text = a;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const w = v4Word(text.slice(lastColon + 1));
    tail = [w >>> 16, w & 0xffff];
    // Keep a "::" that ends right before the IPv4 part; drop a single ":".
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const dbl = text.indexOf('::');
  let groups: number[];
  if (dbl < 0) groups = [...parse(text), ...tail];
  else {
    const head = parse(text.slice(0, dbl));
    const rest = [...parse(text.slice(dbl + 2)), ...tail];
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  }
  return groups;
}
