// Hostname rules for frontends (exact | one leading wildcard label | regex labels |
// catch-all) and the normalization of a request's Host header into the form the
// router compares. Pure: no I/O, no state.
import { domainToASCII } from 'node:url';
import { RouterRuleError } from './router-rule-error.js';

export type HostRule =
  | { kind: 'exact'; host: string }
  | { kind: 'wildcard'; suffix: string }
  | { kind: 'regex'; labels: (string | RegExp)[] }
  | { kind: 'any' };

/** RFC 1035 §2.3.4 limits; also bound the work done on a hostile Host header. */
const MAX_HOST_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
/** A hostname regex label only ever sees one ≤63-character label; longer sources are mistakes. */
const MAX_REGEX_LABEL_SOURCE = 256;

const ANY: HostRule = Object.freeze({ kind: 'any' });

/**
 * Lowercases, strips a `:port` and one trailing dot; undefined when `raw` is not a
 * hostname (letters, digits, `-`, `_`, dot-separated non-empty labels), an IPv4
 * address or a bracketed IPv6 literal. Returns `raw` itself when already normal, so
 * the common case allocates nothing.
 */
export function normalizeHost(raw: string): string | undefined {
  const length = raw.length;
  if (length === 0) return undefined;
  if (raw.charCodeAt(0) === 0x5b) return normalizeIpLiteral(raw);
  let end = length;
  const colon = raw.indexOf(':');
  if (colon !== -1) {
    if (!isPort(raw, colon + 1)) return undefined;
    end = colon;
  }
  if (end > 0 && raw.charCodeAt(end - 1) === 0x2e) end--;
  if (end === 0 || end > MAX_HOST_LENGTH) return undefined;
  let labelLength = 0;
  let upper = false;
  for (let i = 0; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x2e) {
      if (labelLength === 0) return undefined;
      labelLength = 0;
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) upper = true;
    else if (!isHostChar(c)) return undefined;
    if (++labelLength > MAX_LABEL_LENGTH) return undefined;
  }
  if (labelLength === 0) return undefined;
  const host = end === length ? raw : raw.slice(0, end);
  return upper ? host.toLowerCase() : host;
}

/**
 * Parses a frontend hostname rule: `*` (any host), `*.example.com` (exactly one
 * extra leftmost label), `/cdn[0-9]+/.example.com` (one or more labels given as
 * regexes, each anchored to the whole label) or an exact hostname. Exact labels are
 * lowercased, IDNA-converted and stripped of one trailing dot.
 * @throws RouterRuleError naming the rule and the reason
 */
export function parseHostRule(text: string): HostRule {
  if (text === '*') return ANY;
  const fail = (reason: string): never => {
    throw new RouterRuleError(text, reason);
  };
  if (text.length === 0) fail('a hostname rule must not be empty; use "*" to match any host');
  if (text.trim() !== text) fail('a hostname rule must not have surrounding whitespace');
  if (text.charCodeAt(0) === 0x5b) {
    const ip = normalizeIpLiteral(text);
    if (ip === undefined || !text.endsWith(']'))
      fail('an IPv6 literal rule must be "[" hex digits, ":" and "." "]"');
    return { kind: 'exact', host: ip as string };
  }
  if (text.includes(':') && !text.includes('/')) fail('a hostname rule must not contain a port');

  const parts = splitLabels(text, fail);
  const first = parts[0];
  if (first !== undefined && !first.regex && first.text === '*') {
    const rest = parts.slice(1);
    if (rest.length === 0) fail('a wildcard needs a domain after it, as in "*.example.com"');
    if (rest.some((p) => !p.regex && p.text === '*')) fail('only one leading wildcard label is allowed');
    if (rest.some((p) => p.regex)) fail('a wildcard rule cannot also contain regex labels');
    const suffix = rest.map((p) => plainLabel(p.text, fail)).join('.');
    if (suffix.length + 2 > MAX_HOST_LENGTH) fail(`longer than ${MAX_HOST_LENGTH} characters`);
    return { kind: 'wildcard', suffix };
  }
  if (parts.some((p) => p.regex)) {
    const labels = parts.map((p) => (p.regex ? regexLabel(p.text, fail) : plainLabel(p.text, fail)));
    return { kind: 'regex', labels };
  }
  const host = parts.map((p) => plainLabel(p.text, fail)).join('.');
  if (host.length > MAX_HOST_LENGTH) fail(`longer than ${MAX_HOST_LENGTH} characters`);
  return { kind: 'exact', host };
}

interface RawLabel {
  text: string;
  regex: boolean;
}

/**
 * Splits on dots, except inside a `/…/` regex label (which may itself contain dots,
 * as in `/a.b/`): a regex label ends at the first unescaped `/` followed by `.` or
 * the end. One trailing dot is dropped, as for request hosts.
 */
function splitLabels(text: string, fail: (reason: string) => never): RawLabel[] {
  const out: RawLabel[] = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    if (text.charCodeAt(i) === 0x2f) {
      let j = i + 1;
      let close = -1;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 0x5c) {
          j += 2;
          continue;
        }
        if (c === 0x2f && (j + 1 === n || text.charCodeAt(j + 1) === 0x2e)) {
          close = j;
          break;
        }
        j++;
      }
      if (close === -1) fail(`the regex label starting at character ${i + 1} has no closing "/"`);
      out.push({ text: text.slice(i + 1, close), regex: true });
      i = close + 1;
    } else {
      let j = text.indexOf('.', i);
      if (j === -1) j = n;
      out.push({ text: text.slice(i, j), regex: false });
      i = j;
    }
    if (i >= n) break;
    i++; // the dot
    if (i === n) break; // one trailing dot, ignored
  }
  return out;
}

function plainLabel(raw: string, fail: (reason: string) => never): string {
  if (raw.length === 0) return fail('empty label (two dots in a row, or a leading dot)');
  if (raw.includes('*')) return fail('a wildcard must be the whole leftmost label, as in "*.example.com"');
  let label = raw;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching exactly the non-ASCII range
  if (/[^\x00-\x7f]/.test(label)) {
    // Requests carry the A-label (punycode); compare with what arrives on the wire.
    label = domainToASCII(label);
    if (label === '') return fail(`label "${raw}" is not a valid internationalized name`);
  }
  label = label.toLowerCase();
  if (label.length > MAX_LABEL_LENGTH)
    return fail(`label "${raw}" is longer than ${MAX_LABEL_LENGTH} characters`);
  for (let i = 0; i < label.length; i++) {
    if (!isHostChar(label.charCodeAt(i))) {
      return fail(`label "${raw}" may only contain letters, digits, "-" and "_"`);
    }
  }
  return label;
}

function regexLabel(source: string, fail: (reason: string) => never): RegExp {
  if (source.length === 0) return fail('empty regex label "//"');
  if (source.length > MAX_REGEX_LABEL_SOURCE) {
    return fail(`regex label is longer than ${MAX_REGEX_LABEL_SOURCE} characters`);
  }
  try {
    // Compiled alone first: a source such as `a)|(.*` would otherwise escape the
    // anchoring group below and match part of a label.
    new RegExp(source);
  } catch (err) {
    return fail(`regex label /${source}/ does not compile: ${(err as Error).message}`);
  }
  // Anchored to the whole label: unanchored, /cdn/ would also match "evilcdn-x"
  // (partial-match bypass). Matching one label at a time caps the attacker's input
  // at 63 characters, which keeps polynomial backtracking cheap; it does not defuse
  // an exponential pattern such as (a+)+ (ReDoS), which the operator must avoid.
  return new RegExp(`^(?:${source})$`, 'i');
}

function isHostChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f // a-z 0-9 - _
  );
}

/** RFC 3986 §3.2.3: port = *DIGIT; an empty port is allowed and ignored. */
function isPort(s: string, from: number): boolean {
  const digits = s.length - from;
  if (digits > 5) return false;
  let value = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    value = value * 10 + (c - 0x30);
  }
  return value <= 65535;
}

/** `[v6]` or `[v6]:port`; kept with its brackets, lowercased, port stripped. */
function normalizeIpLiteral(raw: string): string | undefined {
  const close = raw.indexOf(']');
  if (close < 3) return undefined; // shortest literal is "[::]"
  if (close + 1 < raw.length && (raw.charCodeAt(close + 1) !== 0x3a || !isPort(raw, close + 2))) {
    return undefined;
  }
  for (let i = 1; i < close; i++) {
    const c = raw.charCodeAt(i);
    const hex = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
    if (!hex && c !== 0x3a && c !== 0x2e) return undefined;
  }
  return raw.slice(0, close + 1).toLowerCase();
}
