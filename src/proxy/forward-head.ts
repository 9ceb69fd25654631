// Writes the head a request or response carries across the proxy: hop-by-hop
// fields removed (RFC 9110 §7.6.1), and on requests the forwarding fields set
// (X-Forwarded-*, Forwarded per RFC 7239, X-Request-Id). Pure string building:
// this runs once per request, so it avoids intermediate arrays.

import { HOP_BY_HOP_FIELDS, SET_BY_KAKEHI_FIELDS } from '../model/frontend-rules.js';
import type { ClientInfo } from './connection-peer.js';
import { type HeaderContext, type HeaderRules, headerLines } from './header-rules.js';
import type { RequestHead, ResponseHead } from './http1-head.js';
import type { RouteRules } from './route-rules.js';

// Names removed in both directions, whatever Connection says. Transfer-Encoding
// is not here: chunked bodies pass through byte for byte, so their framing
// header goes with them.
const HOP_BY_HOP = new Set(HOP_BY_HOP_FIELDS);
// Request fields kakehi sets itself; an incoming value is replaced, not trusted.
const SET_ON_REQUEST = new Set(SET_BY_KAKEHI_FIELDS);

/**
 * Which name lengths occur in these sets: a field name of another length is in
 * none of them, found without hashing the name (a new string per head, so a set
 * lookup would hash it every time).
 */
const NAME_LENGTHS = new Uint8Array(64);
for (const name of [...HOP_BY_HOP, ...SET_ON_REQUEST]) NAME_LENGTHS[name.length] = 1;

function dropped(
  lower: string,
  connectionTokens: readonly string[],
  extra: Set<string> | undefined,
): boolean {
  if (NAME_LENGTHS[lower.length] === 1 && (HOP_BY_HOP.has(lower) || extra?.has(lower) === true)) return true;
  // Fields the sender named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  return connectionTokens.length > 0 && connectionTokens.includes(lower) && lower !== 'transfer-encoding';
}

// RFC 7239 §4: a value that is not a token must be a quoted-string.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
function forwardedValue(v: string): string {
  return TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The forwarding fields but X-Request-Id, as last written, and what they were
 * written from: a connection's requests, and a worker's behind one balancer,
 * repeat the same client and host, so the text is reused, not built again.
 */
const lastForwarding = {
  address: '',
  proto: '',
  port: -1,
  host: '',
  forwardedFor: undefined as string | undefined,
  forwarded: undefined as string | undefined,
  text: '',
};

/** X-Forwarded-For, -Proto, -Port, -Host and Forwarded (RFC 7239) for this request, each ending in CRLF. */
function forwardingFields(req: RequestHead, client: ClientInfo): string {
  const last = lastForwarding;
  if (
    last.address === client.address &&
    last.port === client.port &&
    last.proto === client.proto &&
    last.host === req.host &&
    last.forwardedFor === req.forwardedFor &&
    last.forwarded === req.forwarded
  )
    return last.text;
  const xff = req.forwardedFor === undefined ? client.address : `${req.forwardedFor}, ${client.address}`;
  let fwd = `for=${forwardedNode(client.address)};proto=${client.proto}`;
  if (req.host !== '') fwd += `;host=${forwardedValue(req.host)}`;
  const text =
    `X-Forwarded-For: ${xff}\r\n` +
    `X-Forwarded-Proto: ${client.proto}\r\n` +
    `X-Forwarded-Port: ${client.port}\r\n` +
    (req.host === '' ? '' : `X-Forwarded-Host: ${req.host}\r\n`) +
    `Forwarded: ${req.forwarded === undefined ? fwd : `${req.forwarded}, ${fwd}`}\r\n`;
  last.address = client.address;
  last.port = client.port;
  last.proto = client.proto;
  last.host = req.host;
  last.forwardedFor = req.forwardedFor;
  last.forwarded = req.forwarded;
  last.text = text;
  return text;
}

export function forwardedNode(address: string): string {
  // IPv6 nodes are bracketed and quoted (RFC 7239 §6).
  return address.includes(':') ? `"[${address}]"` : address;
}

export function requestHeadForBackend(
  req: RequestHead,
  client: ClientInfo,
  requestId: string,
  /** The route's rewrites and header rules (route-rules.ts), when it has any. */
  rules?: RouteRules,
): string {
  // Host first (RFC 9110 §7.2 asks it of clients): a backend that keeps only its
  // first N fields still sees the one routing used. For absolute-form it is the
  // target's (RFC 9112 §3.2.2).
  const target = rules?.rewritePath === undefined ? req.target : rules.rewritePath(req.target, req.path);
  let out = `${req.method} ${target} HTTP/1.1\r\nHost: ${rules?.host ?? req.host}\r\n`;
  const names = req.names;
  const lowers = req.lower;
  const values = req.values;
  const drops = rules?.requestHeaders?.drops;
  for (let i = 0; i < names.length; i++) {
    const lower = lowers[i]!;
    if (dropped(lower, req.connectionTokens, SET_ON_REQUEST)) continue;
    if (drops?.has(lower) === true) continue;
    out += `${names[i]}: ${values[i]}\r\n`;
  }
  out += `${forwardingFields(req, client)}X-Request-Id: ${requestId}\r\n`;
  if (rules?.requestHeaders !== undefined)
    out += headerLines(rules.requestHeaders, { client, req, requestId });
  if (req.upgrade === 'h2c') {
    // RFC 7540 §3.2: an h2c upgrade carries exactly one
    // HTTP2-Settings, named in Connection; without it the upgrade is invalid.
    const i = req.lower.indexOf('http2-settings');
    if (i >= 0)
      out += `Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: ${req.values[i]}\r\n`;
    else out += 'Connection: Upgrade\r\nUpgrade: h2c\r\n';
  } else if (req.upgrade !== undefined) {
    // The value the route allowed, not a raw line: with several Upgrade lines
    // the first alone could name a protocol that was never allowed.
    out += `Connection: Upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  }
  return `${out}\r\n`;
}

/**
 * The response head for the client. `connection` is what kakehi will do with the
 * client connection afterwards; `dechunk` drops Transfer-Encoding for an
 * HTTP/1.0 client that gets the body de-chunked and the connection closed.
 */
export function responseHeadForClient(
  res: ResponseHead,
  connection: 'keep-alive' | 'close' | 'default' | 'upgrade',
  dechunk: boolean,
  /** Strict-Transport-Security to send, replacing the backend's. */
  hsts?: string,
  /** The route's response header rules, and the exchange their variables read. */
  rules?: HeaderRules,
  ctx?: HeaderContext,
  /** A Set-Cookie of kakehi's own (sticky sessions), beside the backend's. */
  setCookie?: string,
): string {
  let out = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  const names = res.names;
  const lowers = res.lower;
  const values = res.values;
  for (let i = 0; i < names.length; i++) {
    const lower = lowers[i]!;
    if (connection === 'upgrade' && lower === 'upgrade') {
      out += `${names[i]}: ${values[i]}\r\n`;
      continue;
    }
    if (dropped(lower, res.connectionTokens, undefined)) continue;
    if (dechunk && lower === 'transfer-encoding') continue;
    if (hsts !== undefined && lower === 'strict-transport-security') continue;
    if (rules?.drops.has(lower) === true) continue;
    out += `${names[i]}: ${values[i]}\r\n`;
  }
  if (hsts !== undefined) out += `Strict-Transport-Security: ${hsts}\r\n`;
  if (rules !== undefined && ctx !== undefined) out += headerLines(rules, ctx);
  if (setCookie !== undefined) out += `Set-Cookie: ${setCookie}\r\n`;
  if (connection === 'close') out += 'Connection: close\r\n';
  else if (connection === 'keep-alive') out += 'Connection: keep-alive\r\n';
  else if (connection === 'upgrade') out += 'Connection: Upgrade\r\n';
  return `${out}\r\n`;
}
