// Path rules for frontends: exact, prefix (plain string prefix, as in Sōzu) or a
// regex anchored to the whole path. Paths are compared as they appear in the
// request line, without the query string: no percent-decoding, no dot-segment removal.
import { RouterRuleError } from './router-rule-error.js';

export type PathRule =
  | { kind: 'exact'; path: string }
  | { kind: 'prefix'; prefix: string }
  | { kind: 'regex'; source: string; re: RegExp };

export type PathRuleKind = PathRule['kind'];

/** Longer than any request line the proxy accepts; a longer rule is a mistake. */
const MAX_PATH_RULE_LENGTH = 8192;

/**
 * Builds a path rule. `exact` and `prefix` values must start with `/` (a prefix may
 * also be empty, matching every path) and be printable ASCII without `?` or `#`,
 * since the compared path never contains them. A regex must compile and is anchored
 * to the whole path.
 * @throws RouterRuleError naming the value and the reason
 */
export function parsePathRule(kind: PathRuleKind, value: string): PathRule {
  const fail = (reason: string): never => {
    throw new RouterRuleError(value, reason);
  };
  if (value.length > MAX_PATH_RULE_LENGTH)
    fail(`a path rule is limited to ${MAX_PATH_RULE_LENGTH} characters`);
  switch (kind) {
    case 'exact':
      if (!value.startsWith('/')) fail('an exact path must start with "/"');
      checkLiteral(value, fail);
      return { kind: 'exact', path: value };
    case 'prefix':
      if (value !== '' && !value.startsWith('/')) fail('a path prefix must be empty or start with "/"');
      checkLiteral(value, fail);
      return { kind: 'prefix', prefix: value };
    case 'regex':
      return { kind: 'regex', source: value, re: compilePathRegex(value, fail) };
    default:
      return fail(`unknown path rule kind ${JSON.stringify(kind as unknown)}; use exact, prefix or regex`);
  }
}

function checkLiteral(value: string, fail: (reason: string) => never): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    // RFC 9112 §3.2: the request-target carries no whitespace or controls, and
    // non-ASCII arrives percent-encoded, so such a rule could never match.
    if (c <= 0x20 || c >= 0x7f) {
      fail(
        `character ${JSON.stringify(value[i])} at ${i + 1} cannot appear in a request path; percent-encode it`,
      );
    }
    if (c === 0x3f || c === 0x23) {
      fail(`"${value[i]}" at ${i + 1}: paths are matched without the query string or fragment`);
    }
  }
}

function compilePathRegex(source: string, fail: (reason: string) => never): RegExp {
  if (source.length === 0) return fail('empty path regex; use prefix "" to match every path');
  try {
    // Compiled alone first: a source such as `x)|(.*` would otherwise escape the
    // anchoring group below.
    new RegExp(source);
  } catch (err) {
    return fail(`path regex does not compile: ${(err as Error).message}`);
  }
  // Anchored to the whole path: unanchored, `/admin` would also match
  // `/public/x/admin` and route it to the admin cluster (partial-match bypass).
  // Anchoring does not stop catastrophic backtracking (ReDoS): the request-line
  // length limit bounds the input, but an exponential pattern such as (a+)+ still
  // hangs the worker on a crafted path, so operators must avoid nested quantifiers.
  return new RegExp(`^(?:${source})$`);
}
