// Parses HTTP/1.1 request and response heads (start line and header fields)
// strictly, as RFC 9112 asks of a proxy: every rule here closes a request
// smuggling or header injection route, and the reason is kept for the 400.
// I/O-free: fed the bytes of one complete head (up to and including CRLFCRLF).

import { MAX_HEADER_COUNT } from '../defaults.js';

export type HeadError = { error: string; status: 400 | 431 | 501 | 505 };

export interface RequestHead {
  method: string;
  /** Origin-form target as it will be forwarded (absolute-form is reduced). */
  target: string;
  /** Path without query, for routing. */
  path: string;
  version: 10 | 11;
  /** Header names as received, and values; same index. */
  names: string[];
  /** The same names lowercased, computed once here for every later lookup. */
  lower: string[];
  values: string[];
  host: string;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** The client asked to close after this exchange (or is HTTP/1.0 without keep-alive). */
  close: boolean;
  /** Lowercased tokens of the Connection header. */
  connectionTokens: string[];
  /**
   * The protocol the request asks to upgrade to (the Upgrade value, lowercased),
   * when Connection names "upgrade" on HTTP/1.1. The session clears it when the
   * matched frontend's allowed_upgrades does not list it: the request then goes
   * on as a plain one, its Upgrade fields dropped.
   */
  upgrade: string | undefined;
  requestId: string | undefined;
  forwardedFor: string | undefined;
  forwarded: string | undefined;
  wsKey: boolean;
}

export interface ResponseHead {
  version: 10 | 11;
  status: number;
  /** Status line after the code, for forwarding verbatim. */
  reason: string;
  names: string[];
  lower: string[];
  values: string[];
  contentLength: number;
  chunked: boolean;
  /** Transfer-Encoding present but not ending in chunked: body runs until close. */
  otherEncoding: boolean;
  close: boolean;
  connectionTokens: string[];
  /** Seconds, from a Keep-Alive: timeout=N header; -1 when absent. */
  keepAliveTimeoutS: number;
  wsAccept: boolean;
}

// RFC 9110 §5.6.2 token, then ':' with no whitespace before it (RFC 9112 §5.1),
// then a value of VCHAR, obs-text, SP and HTAB only: no CR, LF, NUL or other
// control characters, which would let a value inject a header downstream.
// Sticky, run at a line's start inside the whole head: the line is checked without slicing it out.
const FIELD_LINE = /[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n/y;
// The reason phrase, from its first byte to the status line's CRLF (sticky, as FIELD_LINE).
const REASON = /[\t\x20-\x7e\x80-\xff]*\r\n/y;
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Request target: visible ASCII only (RFC 9112 §3.2); spaces, controls and
// obs-text are refused rather than guessed at.
const TARGET = /^[\x21-\x7e]+$/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::\d{0,5})?$/;
const REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,200}$/;
const DIGITS = /^\d{1,15}$/;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function splitTokens(value: string, into: string[]): void {
  // Mostly one token ("keep-alive", "close", "chunked"): no array from split for it.
  if (!value.includes(',')) {
    const t = trimOws(value).toLowerCase();
    if (t !== '') into.push(t);
    return;
  }
  for (const part of value.split(',')) {
    const t = trimOws(part).toLowerCase();
    if (t !== '') into.push(t);
  }
}

/**
 * Where the lines of a head are: start and end (before its CRLF) of each, in
 * pairs, into `bounds`; returns how many lines, or -1 if any line ends in a bare
 * CR or LF. Offsets, not line strings: a field is sliced once, as name and
 * value, and never as a line.
 */
function lineBounds(head: string, bounds: number[]): number {
  // head ends with CRLFCRLF; the lines are what comes before, split on CRLF.
  const end = head.length - 4;
  let n = 0;
  let pos = 0;
  for (;;) {
    const e = head.indexOf('\r\n', pos);
    // A CRLF not wholly before `end` (the final CRLFCRLF's) ends the last line.
    if (e < 0 || e + 2 > end) {
      bounds[n++] = pos;
      bounds[n++] = end;
      break;
    }
    bounds[n++] = pos;
    bounds[n++] = e;
    pos = e + 2;
  }
  // Every CR and LF before `end` must be one of the CRLF pairs just found.
  const lines = n / 2;
  return countOf(head, 13, end) === lines - 1 && countOf(head, 10, end) === lines - 1 ? lines : -1;
}

function countOf(s: string, code: 10 | 13, end: number): number {
  const ch = code === 10 ? '\n' : '\r';
  let n = 0;
  for (let p = s.indexOf(ch); p >= 0 && p < end; p = s.indexOf(ch, p + 1)) n++;
  return n;
}

/** The tokens of a head without Connection: one shared array, frozen so that no one adds to it. */
const NO_TOKENS = Object.freeze([]) as unknown as string[];

// Reused by every parse (parsing is synchronous), only ever grown: no array per head.
const bounds: number[] = [];

/** The value of the field line [colon + 1, end) of `head`, without its leading and trailing whitespace. */
function fieldValue(head: string, colon: number, end: number): string {
  let a = colon + 1;
  let b = end;
  while (a < b && (head.charCodeAt(a) === 32 || head.charCodeAt(a) === 9)) a++;
  while (b > a && (head.charCodeAt(b - 1) === 32 || head.charCodeAt(b - 1) === 9)) b--;
  return head.slice(a, b);
}

export function parseRequestHead(head: string, maxHeaderCount = MAX_HEADER_COUNT): RequestHead | HeadError {
  const lineCount = lineBounds(head, bounds);
  if (lineCount < 0) return { error: 'bare CR or LF in the request head', status: 400 };
  if (lineCount - 1 > maxHeaderCount) {
    return { error: `more than ${maxHeaderCount} header fields in the request head`, status: 431 };
  }
  const start = head.slice(0, bounds[1]);
  const sp1 = start.indexOf(' ');
  const sp2 = start.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) {
    return { error: 'request line must be "METHOD target HTTP/1.x" (HTTP/0.9 is not served)', status: 400 };
  }
  const method = start.slice(0, sp1);
  let target = start.slice(sp1 + 1, sp2);
  const versionText = start.slice(sp2 + 1);
  if (!METHOD.test(method)) return { error: 'invalid method', status: 400 };
  if (!TARGET.test(target)) return { error: 'invalid request target', status: 400 };
  let version: 10 | 11;
  if (versionText === 'HTTP/1.1') version = 11;
  else if (versionText === 'HTTP/1.0') version = 10;
  // RFC 9110 §6.2: a higher minor version of a major we implement is handled as our highest.
  else if (/^HTTP\/1\.[2-9]$/.test(versionText)) version = 11;
  else if (/^HTTP\/\d\.\d$/.test(versionText))
    return { error: `${versionText} is not supported`, status: 505 };
  else return { error: 'request line must end in HTTP/1.0 or HTTP/1.1', status: 400 };

  // Sized once: a growing array would allocate room for 17 fields at the first.
  const fieldCount = lineCount - 1;
  const names: string[] = new Array(fieldCount);
  const lowers: string[] = new Array(fieldCount);
  const values: string[] = new Array(fieldCount);
  let host: string | undefined;
  let hostCount = 0;
  let contentLength = -1;
  let clCount = 0;
  let te: string[] | undefined;
  let connectionTokens: string[] | undefined;
  let upgradeValue: string | undefined;
  let requestId: string | undefined;
  let forwardedFor: string | undefined;
  let forwarded: string | undefined;
  let wsKey = false;

  for (let i = 1; i < lineCount; i++) {
    const from = bounds[2 * i]!;
    const to = bounds[2 * i + 1]!;
    FIELD_LINE.lastIndex = from;
    if (!FIELD_LINE.test(head) || FIELD_LINE.lastIndex !== to + 2) {
      const first = head.charCodeAt(from);
      if (first === 32 || first === 9) {
        return { error: 'obsolete line folding in a header field', status: 400 };
      }
      return { error: `invalid header field line ${i}`, status: 400 };
    }
    const colon = head.indexOf(':', from);
    const name = head.slice(from, colon);
    const value = fieldValue(head, colon, to);
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        hostCount++;
        host = value;
        break;
      case 'content-length':
        clCount++;
        if (!DIGITS.test(value)) return { error: 'Content-Length is not a number', status: 400 };
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        te ??= [];
        splitTokens(value, te);
        break;
      case 'connection':
        connectionTokens ??= [];
        connectionTokens ??= [];
        splitTokens(value, connectionTokens);
        break;
      case 'upgrade':
        // Several lines are one list (RFC 9110 §5.3): "h2c" then "websocket" is
        // "h2c, websocket", which no single allowed protocol matches.
        upgradeValue =
          upgradeValue === undefined ? value.toLowerCase() : `${upgradeValue}, ${value.toLowerCase()}`;
        break;
      case 'x-request-id':
        requestId = value;
        break;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        break;
      case 'forwarded':
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      case 'sec-websocket-key':
        wsKey = value !== '';
        break;
    }
    names[i - 1] = name;
    lowers[i - 1] = lower;
    values[i - 1] = value;
  }

  // Absolute-form (RFC 9112 §3.2.2): the target's authority replaces Host.
  if (target.charCodeAt(0) !== 47 /* / */) {
    if (method === 'OPTIONS' && target === '*') {
      // asterisk-form: forwarded as is.
    } else {
      const m = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target);
      if (m === null)
        return { error: 'request target must be a path or an absolute http(s) URI', status: 400 };
      if (m[1] === '' || m[1]!.includes('@'))
        return { error: 'absolute request target has no usable host', status: 400 };
      host = m[1]!;
      hostCount = Math.max(hostCount, 1);
      target = m[2] === '' ? '/' : m[2]!;
      if (target.charCodeAt(0) !== 47) target = `/${target}`;
    }
  }
  if (hostCount > 1) return { error: 'more than one Host header', status: 400 };
  if (host === undefined) {
    if (version === 11) return { error: 'HTTP/1.1 request without Host', status: 400 };
    host = '';
  }
  if (!HOST.test(host)) return { error: 'invalid Host', status: 400 };
  const port = host.lastIndexOf(':');
  if (port > host.lastIndexOf(']')) {
    const p = host.slice(port + 1);
    if (p !== '' && (Number(p) < 1 || Number(p) > 65535))
      return { error: 'invalid port in Host', status: 400 };
  }

  let chunked = false;
  if (te !== undefined) {
    // RFC 9112 §6.1: with Content-Length too, the message is a smuggling attempt.
    if (clCount > 0) return { error: 'both Content-Length and Transfer-Encoding', status: 400 };
    if (version === 10) return { error: 'Transfer-Encoding in an HTTP/1.0 request', status: 400 };
    if (te.length !== 1 || te[0] !== 'chunked') {
      // Codings before a final chunked are legal but not ours to decode (501);
      // anything else leaves the body length unknowable (400, RFC 9112 §6.3).
      const legalButUnsupported = te.indexOf('chunked') === te.length - 1;
      return {
        error: `unsupported Transfer-Encoding "${te.join(', ')}"`,
        status: legalButUnsupported ? 501 : 400,
      };
    }
    chunked = true;
  }
  if (clCount > 1) return { error: 'more than one Content-Length', status: 400 };

  connectionTokens ??= NO_TOKENS;
  const keepAlive = connectionTokens.includes('keep-alive');
  const close = connectionTokens.includes('close') || (version === 10 && !keepAlive);
  // Whether it is forwarded depends on the route (allowed_upgrades), known only later.
  const upgrade =
    connectionTokens.includes('upgrade') && version === 11 && upgradeValue !== '' ? upgradeValue : undefined;
  const q = target.indexOf('?');
  return {
    method,
    target,
    path: q < 0 ? target : target.slice(0, q),
    version,
    names,
    lower: lowers,
    values,
    host,
    contentLength,
    chunked,
    close,
    connectionTokens,
    upgrade,
    requestId: requestId !== undefined && REQUEST_ID.test(requestId) ? requestId : undefined,
    forwardedFor,
    forwarded,
    wsKey,
  };
}

export function parseResponseHead(head: string): ResponseHead | { error: string } {
  const lineCount = lineBounds(head, bounds);
  if (lineCount < 0) return { error: 'bare CR or LF in the response head' };
  // HTTP/1.x, a three-digit code, then nothing or a space and the reason phrase.
  const startEnd = bounds[1]!;
  const minor = head.charCodeAt(7);
  if (
    !head.startsWith('HTTP/1.', 0) ||
    (minor !== 48 && minor !== 49) ||
    head.charCodeAt(8) !== 32 ||
    !isDigit(head.charCodeAt(9)) ||
    !isDigit(head.charCodeAt(10)) ||
    !isDigit(head.charCodeAt(11)) ||
    (startEnd !== 12 && head.charCodeAt(12) !== 32)
  )
    return { error: 'invalid status line' };
  let reason = '';
  if (startEnd > 12) {
    REASON.lastIndex = 13;
    if (!REASON.test(head) || REASON.lastIndex !== startEnd + 2) return { error: 'invalid status line' };
    reason = head.slice(13, startEnd);
  }
  const status =
    (head.charCodeAt(9) - 48) * 100 + (head.charCodeAt(10) - 48) * 10 + (head.charCodeAt(11) - 48);
  if (status < 100) return { error: 'invalid status code' };
  // Sized once: a growing array would allocate room for 17 fields at the first.
  const fieldCount = lineCount - 1;
  const names: string[] = new Array(fieldCount);
  const lowers: string[] = new Array(fieldCount);
  const values: string[] = new Array(fieldCount);
  let contentLength = -1;
  let te: string[] | undefined;
  let connectionTokens: string[] | undefined;
  let keepAliveTimeoutS = -1;
  let wsAccept = false;
  for (let i = 1; i < lineCount; i++) {
    const from = bounds[2 * i]!;
    const to = bounds[2 * i + 1]!;
    FIELD_LINE.lastIndex = from;
    if (!FIELD_LINE.test(head) || FIELD_LINE.lastIndex !== to + 2)
      return { error: `invalid header field line ${i}` };
    const colon = head.indexOf(':', from);
    const name = head.slice(from, colon);
    const value = fieldValue(head, colon, to);
    const lower = name.toLowerCase();
    switch (lower) {
      case 'content-length':
        if (!DIGITS.test(value)) return { error: 'Content-Length is not a number' };
        if (contentLength !== -1 && contentLength !== Number(value))
          return { error: 'conflicting Content-Length' };
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        te ??= [];
        splitTokens(value, te);
        break;
      case 'connection':
        connectionTokens ??= [];
        splitTokens(value, connectionTokens);
        break;
      case 'keep-alive': {
        const t = /(?:^|[,\s])timeout=(\d{1,6})/i.exec(value);
        if (t) keepAliveTimeoutS = Number(t[1]);
        break;
      }
      case 'sec-websocket-accept':
        wsAccept = value !== '';
        break;
    }
    names[i - 1] = name;
    lowers[i - 1] = lower;
    values[i - 1] = value;
  }
  const version = minor === 49 ? 11 : 10;
  const chunked = te !== undefined && te.at(-1) === 'chunked';
  const otherEncoding = te !== undefined && !chunked;
  connectionTokens ??= NO_TOKENS;
  const close =
    connectionTokens.includes('close') || (version === 10 && !connectionTokens.includes('keep-alive'));
  return {
    version,
    status,
    reason,
    names,
    lower: lowers,
    values,
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
    contentLength: te !== undefined ? -1 : contentLength,
    chunked,
    otherEncoding,
    close,
    connectionTokens,
    keepAliveTimeoutS,
    wsAccept,
  };
}
