// What a frontend may do to a request besides routing it: header rules both
// ways, a path and Host rewrite towards the backend, basic authentication and
// client address lists. The schemas and every check live here, so the config
// file, the command socket, Pulsar and the state file refuse the same things
// with the same words; src/proxy compiles what passed into per-request form.

import { createHash } from 'node:crypto';
import type { FieldIssue } from '../errors.js';
import { cidrProblem } from '../router/ip-list.js';
import { dict, type Field, list, object, str } from './schema.js';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Hop-by-hop fields (RFC 9110 §7.6.1): kakehi drops them both ways and writes its own. */
export const HOP_BY_HOP_FIELDS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'upgrade',
  'trailer',
  'http2-settings',
];
/** Request fields kakehi sets itself on every request, never passing the client's. */
export const SET_BY_KAKEHI_FIELDS: readonly string[] = [
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
];
/**
 * Fields a rule may not touch. Framing and hop-by-hop fields: a rule changing
 * them would let the operator's config desynchronise kakehi and the backend
 * (request smuggling) or the client. Host has host_rewrite; the forwarding
 * fields and X-Request-Id are kakehi's own, set on every request.
 */
const FRAMING = ['content-length', 'transfer-encoding', ...HOP_BY_HOP_FIELDS];

export type HeaderDirection = 'request' | 'response';

/** Why a header rule may not name this field, or undefined when it may. */
export function headerNameProblem(name: string, direction: HeaderDirection): string | undefined {
  if (!TOKEN.test(name))
    return `"${name}" is not a header field name (RFC 9110 token: no spaces, colons or controls)`;
  const lower = name.toLowerCase();
  if (FRAMING.includes(lower))
    return `${name} frames the message or the connection; kakehi sets it, a rule may not (it would open request smuggling)`;
  if (direction === 'request' && lower === 'host')
    return 'Host is rewritten with host_rewrite, not a header rule';
  if (direction === 'request' && SET_BY_KAKEHI_FIELDS.includes(lower))
    return `${name} is set by kakehi on every request; a rule may not replace it`;
  if (direction === 'response' && lower === 'strict-transport-security')
    return 'Strict-Transport-Security is set with hsts, not a header rule';
  return undefined;
}

/** Variables a header value may name, expanded per request from values kakehi has already checked. */
export const HEADER_VARIABLES = ['client_ip', 'request_id', 'host', 'method', 'path', 'proto'] as const;
export type HeaderVariable = (typeof HEADER_VARIABLES)[number];
const VARIABLE = /\{([a-z_0-9]+)\}/g;

/** Why a header value may not be sent, or undefined when it may. */
export function headerValueProblem(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    // RFC 9110 §5.5 field-value, visible ASCII only: a CR or LF would start a new
    // field or end the head (header injection), and non-ASCII has no one encoding.
    if ((c < 0x20 && c !== 0x09) || c > 0x7e)
      return `character ${JSON.stringify(value[i])} at ${i + 1} cannot be in a header value (only visible ASCII, space and tab)`;
  }
  if (/^[ \t]|[ \t]$/.test(value)) return 'a header value may not start or end with a space or tab';
  for (const m of value.matchAll(VARIABLE)) {
    if (!(HEADER_VARIABLES as readonly string[]).includes(m[1]!))
      return `{${m[1]}} is not a variable; use ${HEADER_VARIABLES.map((v) => `{${v}}`).join(', ')}`;
  }
  return undefined;
}

function headerRulesSchema(direction: HeaderDirection) {
  const name = str({ maxLength: 256, check: (s) => headerNameProblem(s, direction) });
  const value = str({ minLength: 0, maxLength: 4096, check: headerValueProblem });
  return object(
    {
      remove: { schema: list(name, { maxItems: 100 }), default: [], doc: 'fields removed' },
      set: {
        schema: dict(value, { keyCheck: (k) => headerNameProblem(k, direction), maxEntries: 100 }),
        default: {},
        doc: 'fields replaced (any existing value removed), name to value',
      },
      add: {
        schema: dict(value, { keyCheck: (k) => headerNameProblem(k, direction), maxEntries: 100 }),
        default: {},
        doc: 'fields added after those already there, name to value',
      },
    },
    {
      check: (r, path, issues) => {
        const removed = new Set(r.remove.map((n) => n.toLowerCase()));
        const set = new Set<string>();
        for (const n of Object.keys(r.set)) {
          const lower = n.toLowerCase();
          if (removed.has(lower)) issues.push({ path: at(path, `set.${n}`), reason: `${n} is also removed` });
          if (set.has(lower)) issues.push({ path: at(path, `set.${n}`), reason: `${n} is set twice` });
          set.add(lower);
        }
        for (const n of Object.keys(r.add)) {
          const lower = n.toLowerCase();
          if (removed.has(lower) || set.has(lower))
            issues.push({ path: at(path, `add.${n}`), reason: `${n} is also set or removed; use one` });
        }
      },
    },
  );
}
export const requestHeadersSchema = headerRulesSchema('request');
export const responseHeadersSchema = headerRulesSchema('response');

const at = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);

/** A path or path prefix a rewrite writes or matches: as the request line carries it. */
function rewritePathProblem(s: string): string | undefined {
  if (!s.startsWith('/')) return `"${s}" must start with /`;
  return /^\/[\x21-\x7e]*$/.test(s) && !/[?#]/.test(s)
    ? undefined
    : `"${s}" must be visible ASCII without ?, # or spaces (the query string is kept as it came)`;
}

const HOST_REWRITE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::\d{1,5})?$/;

// Realms are quoted in WWW-Authenticate (RFC 7617): no quote, backslash or control.
const REALM = /^[\x20-\x7e]+$/;

/**
 * A password hash in the PHC string format for scrypt, as passlib and
 * `kakehi hash-password` write it: `$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, salt
 * and hash in base64 without padding. ln is log2 of scrypt's N.
 */
export interface ScryptHash {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Most memory one verification may take (scrypt needs 128·N·r bytes). */
export const SCRYPT_MAX_MEMORY = 256 * 1024 * 1024;
const PHC =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{22,88})\$([A-Za-z0-9+/]{43,88})$/;

export function parseScryptHash(s: string): ScryptHash | string {
  const m = PHC.exec(s);
  if (m === null)
    return 'not a scrypt hash in PHC form ($scrypt$ln=15,r=8,p=1$salt$hash); make one with `kakehi hash-password` (plain passwords are never accepted)';
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 20) return `ln=${ln}: scrypt cost must be from 10 to 20 (N = 2^ln)`;
  if (r < 1 || r > 32 || p < 1 || p > 16) return 'r must be from 1 to 32 and p from 1 to 16';
  if (128 * 2 ** ln * r > SCRYPT_MAX_MEMORY)
    return `ln=${ln},r=${r} needs ${(128 * 2 ** ln * r) / 2 ** 20} MiB per check; at most ${SCRYPT_MAX_MEMORY / 2 ** 20} MiB`;
  const salt = Buffer.from(m[4]!, 'base64');
  const hash = Buffer.from(m[5]!, 'base64');
  if (salt.length < 16) return 'the salt must be at least 16 bytes';
  if (hash.length < 32 || hash.length > 64) return 'the derived hash must be 32 to 64 bytes';
  return { ln, r, p, salt, hash };
}

const basicAuthSchema = object({
  realm: {
    schema: str({
      maxLength: 128,
      check: (s) =>
        REALM.test(s) && !/["\\]/.test(s)
          ? undefined
          : 'a realm is visible ASCII and spaces, without " or \\',
    }),
    default: 'kakehi',
    doc: 'shown by browsers in the login prompt',
  },
  users: {
    schema: list(
      object({
        name: {
          schema: str({
            maxLength: 128,
            check: (s) => (/^[\x21-\x39\x3b-\x7e]+$/.test(s) ? undefined : 'visible ASCII without ":"'),
          }),
          required: true,
        },
        password_hash: {
          schema: str({
            maxLength: 256,
            check: (s) => {
              const h = parseScryptHash(s);
              return typeof h === 'string' ? h : undefined;
            },
          }),
          required: true,
          doc: 'scrypt in PHC form, from `kakehi hash-password`; never shown by ctl or logs',
        },
      }),
      { maxItems: 1000 },
    ),
    required: true,
  },
});

const cidrList = list(str({ maxLength: 64, check: cidrProblem }), { maxItems: 10_000 });

/** The rule fields of a frontend, spread into its schema. */
export const frontendRuleFields = {
  request_headers: { schema: requestHeadersSchema, doc: 'header rules on the request sent to the backend' },
  response_headers: { schema: responseHeadersSchema, doc: 'header rules on the response sent to the client' },
  strip_prefix: {
    schema: str({ maxLength: 2048, check: rewritePathProblem }),
    doc: 'removed from the start of the path sent to the backend (query kept)',
  },
  replace_prefix: {
    schema: object({
      from: { schema: str({ maxLength: 2048, check: rewritePathProblem }), required: true },
      to: { schema: str({ maxLength: 2048, check: rewritePathProblem }), required: true },
    }),
    doc: '{from, to}: a path starting with from is sent starting with to (query kept)',
  },
  host_rewrite: {
    schema: str({
      maxLength: 260,
      check: (s) =>
        HOST_REWRITE.test(s) ? undefined : `"${s}" is not a host name or address, with an optional port`,
    }),
    doc: 'Host sent to the backend; X-Forwarded-Host keeps the one the client sent',
  },
  basic_auth: { schema: basicAuthSchema, doc: '{realm, users}: requests need one of these users, else 401' },
  ip_allow: {
    schema: cidrList,
    doc: 'client addresses (CIDR, v4 or v6) let through; when set, any other gets 403',
  },
  ip_deny: { schema: cidrList, doc: 'client addresses (CIDR, v4 or v6) answered 403; wins over ip_allow' },
} satisfies Record<string, Field<unknown>>;

type RuleFields = {
  cluster?: string | undefined;
  request_headers?: unknown;
  response_headers?: unknown;
  strip_prefix?: string | undefined;
  replace_prefix?: unknown;
  host_rewrite?: string | undefined;
};

/** The checks across rule fields, run in the frontend's own check. */
export function frontendRulesCheck(f: RuleFields, path: string, issues: FieldIssue[]): void {
  if (f.strip_prefix !== undefined && f.replace_prefix !== undefined)
    issues.push({
      path: at(path, 'replace_prefix'),
      reason: 'strip_prefix and replace_prefix exclude each other',
    });
  if (f.cluster === undefined) {
    for (const k of [
      'request_headers',
      'response_headers',
      'strip_prefix',
      'replace_prefix',
      'host_rewrite',
    ] as const)
      if (f[k] !== undefined)
        issues.push({
          path: at(path, k),
          reason: 'only a frontend forwarding to a cluster rewrites requests',
        });
  }
}

/** Captures {1}-{9} a redirect names must exist in its frontend's path regex. */
export function redirectCapturesProblem(to: string, pathType: string, path: string): string | undefined {
  let highest = 0;
  for (const m of to.matchAll(/\{(\d+)\}/g)) highest = Math.max(highest, Number(m[1]));
  if (highest === 0) return undefined;
  if (pathType !== 'regex') return `{${highest}} names a capture, but only a regex path has captures`;
  // The number of groups: an empty alternative always matches, every group undefined.
  const groups = (new RegExp(`${path}|`).exec('')?.length ?? 1) - 1;
  if (highest > groups || highest > 9)
    return `{${highest}} names a capture the path regex does not have (it has ${groups}; at most 9 are used)`;
  return undefined;
}

/**
 * A frontend as it may be shown (ctl, get_state, events): each password hash
 * replaced by a marker carrying a digest of it, so a connector can still tell
 * a changed hash from the same one without the hash ever leaving main.
 */
export function redactFrontend<
  F extends { basic_auth?: { realm: string; users: { name: string; password_hash: string }[] } | undefined },
>(f: F): F {
  if (f.basic_auth === undefined) return f;
  return {
    ...f,
    basic_auth: {
      ...f.basic_auth,
      users: f.basic_auth.users.map((u) => ({ ...u, password_hash: redactedHash(u.password_hash) })),
    },
  };
}

/** The marker standing for a password hash; one already redacted stays as it is. */
export function redactedHash(hash: string): string {
  if (hash.startsWith('<redacted')) return hash;
  return `<redacted sha256:${createHash('sha256').update(hash).digest('hex').slice(0, 16)}>`;
}

/** The rules of a frontend in a few words, for `kakehi ctl frontends` (never a hash). */
export function frontendRulesSummary(f: {
  request_headers?:
    | { remove: string[]; set: Record<string, string>; add: Record<string, string> }
    | undefined;
  response_headers?:
    | { remove: string[]; set: Record<string, string>; add: Record<string, string> }
    | undefined;
  strip_prefix?: string | undefined;
  replace_prefix?: { from: string; to: string } | undefined;
  host_rewrite?: string | undefined;
  basic_auth?: { realm: string; users: unknown[] } | undefined;
  ip_allow?: string[] | undefined;
  ip_deny?: string[] | undefined;
}): string {
  const out: string[] = [];
  const count = (r: { remove: string[]; set: object; add: object }) =>
    r.remove.length + Object.keys(r.set).length + Object.keys(r.add).length;
  if (f.request_headers !== undefined) out.push(`request headers: ${count(f.request_headers)}`);
  if (f.response_headers !== undefined) out.push(`response headers: ${count(f.response_headers)}`);
  if (f.strip_prefix !== undefined) out.push(`strip ${f.strip_prefix}`);
  if (f.replace_prefix !== undefined) out.push(`${f.replace_prefix.from} -> ${f.replace_prefix.to}`);
  if (f.host_rewrite !== undefined) out.push(`host ${f.host_rewrite}`);
  if (f.basic_auth !== undefined)
    out.push(`basic auth "${f.basic_auth.realm}": ${f.basic_auth.users.length} users`);
  if (f.ip_allow !== undefined) out.push(`allow ${f.ip_allow.length}`);
  if (f.ip_deny !== undefined) out.push(`deny ${f.ip_deny.length}`);
  return out.join(', ');
}
