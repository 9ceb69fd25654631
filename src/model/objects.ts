// The routing objects — listeners, clusters, backends, frontends — as typed,
// validated values with stable keys. The config file, the command socket, Pulsar
// messages and saved state all describe changes with these same objects.

import { parseHashKey } from '../balancer/hash-key.js';
import { isHashing } from '../balancer/select.js';
import { stickyIdProblem } from '../balancer/sticky-id.js';
import { fingerprintOf, inspectCertificate, normalizeFingerprint } from '../certificate/inspect.js';
import * as D from '../defaults.js';
import type { FieldIssue } from '../errors.js';
import { parseHostRule } from '../router/host-rule.js';
import { parsePathRule } from '../router/path-rule.js';
import { formatAddress, parseAddress } from './address.js';
import { backendTlsSchema } from './backend-tls.js';
import { frontendRuleFields, frontendRulesCheck, redirectCapturesProblem } from './frontend-rules.js';
import { bool, dict, type Field, int, list, type ObjectOf, object, oneOf, str } from './schema.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const idCheck = (s: string) =>
  ID.test(s)
    ? undefined
    : `"${s}": ids are 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit`;

/** Statuses kakehi answers itself, whose page an operator may replace. */
export const ANSWER_STATUSES = [
  '400',
  '401',
  '403',
  '404',
  '408',
  '413',
  '421',
  '429',
  '431',
  '502',
  '503',
  '504',
] as const;

const answers = dict(str({ maxLength: 64 * 1024 }), {
  keyCheck: (k) =>
    (ANSWER_STATUSES as readonly string[]).includes(k)
      ? undefined
      : `kakehi answers only ${ANSWER_STATUSES.join(', ')} itself; no page can be set for ${k}`,
});

const listenAddress = str({
  check: (s) => {
    const a = parseAddress(s, { allowPortZero: true });
    return typeof a === 'string' ? a : undefined;
  },
});
const backendAddress = str({
  check: (s) => {
    const a = parseAddress(s, { allowPortZero: false });
    return typeof a === 'string' ? a : undefined;
  },
});
const ms = (max: number) => int({ min: 1, max });
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

export const LISTENER_PROTOCOLS = ['http', 'https', 'tcp', 'tls', 'tls_passthrough'] as const;
export type ListenerProtocol = (typeof LISTENER_PROTOCOLS)[number];
/** What an https listener can offer by ALPN. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'] as const;
/** Listeners that pass a connection's bytes to a cluster, with no HTTP parsed. */
export function carriesBytes(protocol: ListenerProtocol): protocol is 'tcp' | 'tls' | 'tls_passthrough' {
  return protocol === 'tcp' || protocol === 'tls' || protocol === 'tls_passthrough';
}
/** Listeners that terminate TLS, so take certificates. */
export function terminatesTls(protocol: ListenerProtocol): protocol is 'https' | 'tls' {
  return protocol === 'https' || protocol === 'tls';
}
/** Every cluster a listener names: its own and those of its server names. */
export function listenerClusters(l: Pick<Listener, 'cluster' | 'sni_clusters'>): string[] {
  const out = l.sni_clusters === undefined ? [] : Object.values(l.sni_clusters);
  if (l.cluster !== undefined) out.push(l.cluster);
  return out;
}

export const listenerSchema = object(
  {
    address: { schema: listenAddress, required: true, doc: 'host:port to listen on; its stable key' },
    protocol: {
      schema: oneOf(LISTENER_PROTOCOLS),
      default: 'http',
      doc: 'http; https to terminate TLS with the certificates put for this listener; tcp to pass bytes to its cluster; tls to terminate TLS, then pass bytes',
    },
    cluster: {
      schema: str({ check: idCheck }),
      doc: 'tcp and tls only, and required there: the cluster every connection goes to; tls_passthrough: the cluster for a server name sni_clusters lacks',
    },
    sni_clusters: {
      schema: dict(str({ check: idCheck }), {
        maxEntries: 10_000,
        keyCheck: (k) =>
          CERT_NAME.test(k) && k === k.toLowerCase()
            ? undefined
            : `"${k}" is not a lowercase DNS name or a one-label *.wildcard`,
      }),
      doc: 'tls_passthrough only: server name (SNI) to cluster id; TLS is not terminated',
    },
    tls_versions: {
      schema: list(str({ check: tlsVersionProblem }), { maxItems: 2 }),
      default: ['1.2', '1.3'],
      doc: 'https only: TLS versions offered, 1.2 and 1.3 (or 1.3 alone)',
    },
    strict_sni: {
      schema: bool(),
      default: false,
      doc: 'https only: answer 421 when the Host is not a name of the certificate the handshake served',
    },
    alpn: {
      schema: list(oneOf(ALPN_PROTOCOLS), { maxItems: 2 }),
      default: ['h2', 'http/1.1'],
      doc: 'https only: protocols offered by ALPN, the preferred first; ["http/1.1"] turns HTTP/2 off',
    },
    h2c: {
      schema: bool(),
      default: false,
      doc: 'http only: a connection opening with the HTTP/2 preface is served as HTTP/2 (h2c with prior knowledge; Upgrade: h2c is not offered)',
    },
    h2_max_concurrent_streams: {
      schema: int({ min: 1, max: 10_000 }),
      default: D.H2_MAX_CONCURRENT_STREAMS,
      doc: 'HTTP/2: streams a client may have open at once on one connection; more are refused (REFUSED_STREAM)',
    },
    h2_max_resets_per_second: {
      schema: int({ min: 1, max: 1_000_000 }),
      default: D.H2_MAX_RESETS_PER_SECOND,
      doc: 'HTTP/2: streams a client may cancel in one second; past it the connection is closed with GOAWAY ENHANCE_YOUR_CALM (rapid reset)',
    },
    answers: { schema: answers, default: {}, doc: 'page bodies replacing the built-in answers, by status' },
    expect_proxy: {
      schema: bool(),
      default: false,
      doc: 'every connection starts with a PROXY header (v1 or v2) naming the client; one without is closed',
    },
    request_head_timeout_ms: {
      schema: ms(3_600_000),
      default: D.REQUEST_HEAD_TIMEOUT_MS,
      doc: 'a request head not complete this long after its first byte gets 408',
    },
    keepalive_timeout_ms: {
      schema: ms(3_600_000),
      default: D.KEEPALIVE_TIMEOUT_MS,
      doc: 'an idle client connection between requests is closed after this; tcp and tls: a connection with no byte either way this long',
    },
    front_timeout_ms: {
      schema: ms(3_600_000),
      default: D.FRONT_TIMEOUT_MS,
      doc: 'a client silent this long while sending a request body is dropped',
    },
    max_header_bytes: {
      schema: int({ min: 1024, max: 1024 * 1024 }),
      default: D.MAX_HEADER_BYTES,
      doc: 'largest request head accepted; larger gets 431',
    },
    max_header_count: {
      schema: int({ min: 8, max: 10_000 }),
      default: D.MAX_HEADER_COUNT,
      doc: 'most header fields in a request head; more gets 431',
    },
    max_connections: {
      schema: int({ min: 1, max: 1_000_000 }),
      doc: 'client connections open at once on this listener, per worker; past it a new one is closed at once, unserved; absent: no limit',
    },
    max_request_body_bytes: {
      schema: int({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      doc: 'http and https: largest request body; larger gets 413 (a frontend may set its own); absent: no limit',
    },
  },
  {
    check: (l, path, issues) => {
      if (l.alpn.length === 0 || new Set(l.alpn).size !== l.alpn.length)
        issues.push({
          path: path === '' ? 'alpn' : `${path}.alpn`,
          reason: 'alpn lists "h2", "http/1.1" or both, each once',
        });
      if (carriesBytes(l.protocol) && l.max_request_body_bytes !== undefined)
        issues.push({
          path: path === '' ? 'max_request_body_bytes' : `${path}.max_request_body_bytes`,
          reason: `a ${l.protocol} listener carries bytes, not requests: max_request_body_bytes is for http and https`,
        });
      const at = path === '' ? 'cluster' : `${path}.cluster`;
      if (l.protocol === 'tls_passthrough') {
        if (l.sni_clusters === undefined && l.cluster === undefined)
          issues.push({
            path: path === '' ? 'sni_clusters' : `${path}.sni_clusters`,
            reason: 'a tls_passthrough listener needs sni_clusters, cluster, or both',
          });
        return;
      }
      if (l.sni_clusters !== undefined)
        issues.push({
          path: path === '' ? 'sni_clusters' : `${path}.sni_clusters`,
          reason: 'sni_clusters is for tls_passthrough listeners',
        });
      if (carriesBytes(l.protocol) && l.cluster === undefined)
        issues.push({ path: at, reason: `a ${l.protocol} listener needs the cluster its connections go to` });
      else if (!carriesBytes(l.protocol) && l.cluster !== undefined)
        issues.push({
          path: at,
          reason: `an ${l.protocol} listener routes by its frontends; cluster is for tcp and tls listeners`,
        });
    },
    renamed: {
      cluster_id: 'cluster',
      idle_timeout: 'keepalive_timeout_ms',
      front_timeout: 'front_timeout_ms',
      request_timeout: 'request_head_timeout_ms',
      buffer_size: 'max_header_bytes',
      maxconn: 'max_connections',
      client_max_body_size: 'max_request_body_bytes',
    },
  },
);
export type Listener = ObjectOf<typeof listenerSchema.fields>;

function tlsVersionProblem(v: string): string | undefined {
  if (v === '1.2' || v === '1.3') return undefined;
  if (/^(1\.[01]|tls ?1(\.[01])?|ssl ?[23]|1)$/i.test(v.trim()))
    return `"${v}" is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996) and SSL is broken; kakehi serves 1.2 and 1.3 only`;
  return `"${v}" is not a TLS version kakehi serves; use "1.2" or "1.3"`;
}

/** A backend's admin state, set by the operator (`kakehi ctl backend drain`), unlike up/down, which traffic decides. */
export const BACKEND_STATES = ['active', 'drain', 'maintenance'] as const;
export type BackendState = (typeof BACKEND_STATES)[number];

const backendFields = {
  id: { schema: str({ check: idCheck }), required: true, doc: 'unique within its cluster' },
  address: { schema: backendAddress, required: true, doc: 'host:port of the backend server' },
  weight: {
    schema: int({ min: 0, max: 10_000 }),
    default: D.BACKEND_WEIGHT,
    doc: 'share of traffic under random balancing; 0 drains it (no new requests) under every algorithm',
  },
  backup: { schema: bool(), default: false, doc: 'used only when no primary backend is available' },
  state: {
    schema: oneOf(BACKEND_STATES),
    default: 'active',
    doc: 'active; drain: no new requests, open ones finish; maintenance: out of rotation, open requests finish',
  },
  max_connections: {
    schema: int({ min: 1, max: 1_000_000 }),
    default: D.BACKEND_MAX_CONNECTIONS,
    doc: "requests (tcp and tls: connections) in flight on it at once, per worker; more wait in its queue (the cluster's queue_size)",
  },
  sticky_id: {
    schema: str({ maxLength: 64, check: stickyIdProblem }),
    doc: 'the value of the sticky cookie naming it; absent: 16 hex digits derived from its cluster and id',
  },
} satisfies Record<string, Field<unknown>>;
const backendRenames = { backend_id: 'id', load_balancing_parameters: 'weight', maxconn: 'max_connections' };

/** A backend as nested under its cluster in the config file. */
export const nestedBackendSchema = object(backendFields, { renamed: backendRenames });
/** A backend on its own, as a change names it: it carries its cluster. */
export const backendSchema = object(
  {
    cluster: { schema: str({ check: idCheck }), required: true, doc: 'the cluster it belongs to' },
    ...backendFields,
  },
  { renamed: { ...backendRenames, cluster_id: 'cluster' } },
);
export type Backend = ObjectOf<typeof backendSchema.fields>;

export const LOAD_BALANCING = [
  'round_robin',
  'random',
  'least_connections',
  'power_of_two',
  'hash_rendezvous',
  'hash_maglev',
] as const;

// RFC 6265 §4.1.1: a cookie name is an RFC 9110 token.
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const stickyCookieSchema = object(
  {
    name: {
      schema: str({
        maxLength: 128,
        check: (s) => (COOKIE_NAME.test(s) ? undefined : `"${s}" is not a cookie name (a token)`),
      }),
      default: 'KKHSRV',
    },
    path: {
      schema: str({
        maxLength: 1024,
        check: (s) =>
          /^\/[\x21-\x3a\x3c-\x7e]*$/.test(s)
            ? undefined
            : 'must start with / and hold no spaces, controls or ";"',
      }),
      default: '/',
    },
    secure: { schema: bool(), default: false, doc: 'sent only over HTTPS' },
    http_only: { schema: bool(), default: true, doc: 'hidden from scripts' },
    same_site: { schema: oneOf(['lax', 'strict', 'none'] as const), default: 'lax' },
    max_age_s: {
      schema: int({ min: 1, max: 400 * 86_400 }),
      doc: 'lifetime in seconds; absent: until the browser closes',
    },
  },
  {
    check: (c, path, issues) => {
      const at = (k: string) => (path === '' ? k : `${path}.${k}`);
      // Browsers drop these cookies otherwise (RFC 6265bis §4.1.3, §5.4.7).
      if (c.same_site === 'none' && !c.secure)
        issues.push({
          path: at('secure'),
          reason: 'same_site "none" needs secure: true (browsers refuse it otherwise)',
        });
      if (c.name.startsWith('__Secure-') && !c.secure)
        issues.push({ path: at('secure'), reason: `a ${c.name} cookie needs secure: true` });
      if (c.name.startsWith('__Host-') && (!c.secure || c.path !== '/'))
        issues.push({ path: at('name'), reason: `a ${c.name} cookie needs secure: true and path "/"` });
    },
  },
);
export type StickyCookie = ObjectOf<typeof stickyCookieSchema.fields>;
/** The cookie of a cluster with sticky_session and no sticky_cookie. */
export const DEFAULT_STICKY_COOKIE: StickyCookie = Object.freeze(stickyCookieSchema.parse({}, '', [])!);

/** Settings that only mean something together with another: named, not silently ignored. */
function clusterProblems(
  c: {
    load_balancing: (typeof LOAD_BALANCING)[number];
    hash_key?: string | undefined;
    sticky_session: boolean;
    sticky_cookie?: unknown;
  },
  path: string,
  issues: FieldIssue[],
): void {
  const at = (k: string) => (path === '' ? k : `${path}.${k}`);
  if (c.hash_key !== undefined && !isHashing(c.load_balancing))
    issues.push({
      path: at('hash_key'),
      reason: `hash_key is read by load_balancing hash_rendezvous and hash_maglev only, not ${c.load_balancing}`,
    });
  if (c.sticky_cookie !== undefined && !c.sticky_session)
    issues.push({ path: at('sticky_cookie'), reason: 'sticky_cookie needs sticky_session: true' });
}

const hstsSchema = object({
  max_age: {
    schema: int({ min: 0, max: 2 * 365 * 86_400 }),
    default: 365 * 86_400,
    doc: 'seconds; 0 tells browsers to forget the policy',
  },
  include_subdomains: { schema: bool(), default: false },
  preload: { schema: bool(), default: false },
});
export type Hsts = ObjectOf<typeof hstsSchema.fields>;

/** `200-399`, `200,204` or `200-299,404`: the statuses a health probe counts as good. */
export function statusRangesProblem(s: string): string | undefined {
  for (const part of s.split(',')) {
    const m = /^\s*([1-5]\d\d)\s*(?:-\s*([1-5]\d\d)\s*)?$/.exec(part);
    if (m === null) return `"${part.trim()}" is not a status or a range like 200-399 (statuses are 100-599)`;
    if (m[2] !== undefined && Number(m[2]) < Number(m[1]))
      return `range "${part.trim()}" ends before it starts`;
  }
  return undefined;
}

const healthCheckSchema = object(
  {
    type: {
      schema: oneOf(['http', 'tcp'] as const),
      default: 'http',
      doc: 'http: a request whose status must be expected; tcp: a connection that opens',
    },
    path: {
      schema: str({
        maxLength: 2048,
        check: (s) =>
          /^\/[\x21-\x7e]*$/.test(s) ? undefined : 'must start with / and hold no spaces or controls',
      }),
      default: '/',
      doc: 'http only: path (with query) requested',
    },
    method: {
      schema: str({ check: (s) => (METHOD.test(s) ? undefined : `"${s}" is not an HTTP method token`) }),
      default: 'GET',
      doc: 'http only: request method',
    },
    host: {
      schema: str({
        maxLength: 253,
        check: (s) => (/^[\x21-\x7e]+$/.test(s) ? undefined : 'no spaces or controls'),
      }),
      doc: "http only: Host header; absent: the backend's address",
    },
    expect_status: {
      schema: str({ maxLength: 256, check: statusRangesProblem }),
      default: '200-399',
      doc: 'http only: good statuses, ranges and single codes separated by commas',
    },
    interval_ms: {
      schema: int({ min: 100, max: 3_600_000 }),
      default: D.HEALTH_CHECK_INTERVAL_MS,
      doc: 'time between probes of one backend, jittered by up to a tenth either way',
    },
    timeout_ms: {
      schema: ms(600_000),
      doc: `a probe with no answer head (tcp: no connection) this long fails; absent: ${D.HEALTH_CHECK_TIMEOUT_MS} or interval_ms if shorter`,
    },
    rise: {
      schema: int({ min: 1, max: 100 }),
      default: 2,
      doc: 'good probes in a row that bring a down backend up',
    },
    fall: {
      schema: int({ min: 1, max: 100 }),
      default: 3,
      doc: 'failed probes in a row that take an up backend down',
    },
  },
  {
    check: (h, path, issues) => {
      if (h.timeout_ms !== undefined && h.timeout_ms > h.interval_ms)
        issues.push({
          path: path === '' ? 'timeout_ms' : `${path}.timeout_ms`,
          reason: `${h.timeout_ms} is longer than interval_ms (${h.interval_ms}): probes of one backend would overlap`,
        });
    },
  },
);
export type HealthCheck = ObjectOf<typeof healthCheckSchema.fields>;

/** A probe's deadline: the one set, or the default cut to the interval so probes never overlap. */
export function probeTimeoutMs(h: HealthCheck): number {
  return h.timeout_ms ?? Math.min(D.HEALTH_CHECK_TIMEOUT_MS, h.interval_ms);
}

const clusterFields = {
  id: { schema: str({ check: idCheck }), required: true, doc: 'stable key' },
  load_balancing: { schema: oneOf(LOAD_BALANCING), default: 'round_robin' },
  hash_key: {
    schema: str({
      maxLength: 140,
      check: (s) => {
        const k = parseHashKey(s);
        return typeof k === 'string' ? k : undefined;
      },
    }),
    doc: 'hash_rendezvous and hash_maglev: client_ip, path, header:<name> or cookie:<name>; absent: client_ip',
  },
  answers: { schema: answers, default: {}, doc: 'page bodies replacing the listener and built-in answers' },
  connect_attempts: {
    schema: int({ min: 1, max: 10 }),
    default: D.CONNECT_ATTEMPTS,
    doc: 'connection attempts per request, each to another backend where there is one',
  },
  connect_timeout_ms: { schema: ms(600_000), default: D.CONNECT_TIMEOUT_MS },
  backend_timeout_ms: {
    schema: ms(3_600_000),
    default: D.BACKEND_TIMEOUT_MS,
    doc: 'a backend silent this long (before or within its response) gets the client a 504 or a close',
  },
  websocket_idle_timeout_ms: { schema: ms(86_400_000), default: D.WEBSOCKET_IDLE_TIMEOUT_MS },
  sticky_session: {
    schema: bool(),
    default: false,
    doc: 'a cookie names the backend that answered; the client returns to it while it is available',
  },
  sticky_cookie: {
    schema: stickyCookieSchema,
    doc: 'the sticky cookie; absent: KKHSRV, path /, HttpOnly, SameSite=Lax',
  },
  https_redirect: {
    schema: bool(),
    default: false,
    doc: 'requests arriving over plain HTTP get a redirect to the same host and path over HTTPS',
  },
  https_redirect_status: { schema: oneOf([301, 308] as const), default: 301 },
  https_redirect_port: {
    schema: int({ min: 1, max: 65535 }),
    doc: 'port in the redirect location; absent: 443, left out of the location',
  },
  hsts: { schema: hstsSchema, doc: 'Strict-Transport-Security sent on HTTPS responses of this cluster' },
  health_check: {
    schema: healthCheckSchema,
    doc: 'active health check of every backend, probed once per instance by main; absent: none',
  },
  fail_open: {
    schema: bool(),
    default: true,
    doc: 'when every backend is down by health check, send traffic to them anyway instead of answering 503',
  },
  send_proxy: {
    schema: bool(),
    default: false,
    doc: 'each backend connection starts with a PROXY v2 header naming the client; it then serves that client only',
  },
  queue_size: {
    schema: int({ min: 0, max: 100_000 }),
    default: D.BACKEND_QUEUE_SIZE,
    doc: 'requests that may wait for a backend at its max_connections, per backend and worker; one more gets 503; 0: no waiting',
  },
  queue_timeout_ms: {
    schema: ms(3_600_000),
    default: D.BACKEND_QUEUE_TIMEOUT_MS,
    doc: 'a request waiting in a backend queue this long gets 503',
  },
  backend_tls: {
    schema: backendTlsSchema,
    doc: 'speak TLS to every backend of the cluster (docs/tls.md, "TLS to backends"); absent: plain TCP',
  },
} satisfies Record<string, Field<unknown>>;
const clusterRenames = {
  cluster_id: 'id',
  maxqueue: 'queue_size',
  timeout_queue: 'queue_timeout_ms',
  retries: 'connect_attempts',
  connect_timeout: 'connect_timeout_ms',
  back_timeout: 'backend_timeout_ms',
};

export const clusterSchema = object(clusterFields, { renamed: clusterRenames, check: clusterProblems });
export type Cluster = ObjectOf<typeof clusterSchema.fields>;

/** A cluster as written in the config file: with its backends inside. */
export const clusterWithBackendsSchema = object(
  { ...clusterFields, backends: { schema: list(nestedBackendSchema, { maxItems: 10_000 }), default: [] } },
  { renamed: clusterRenames, check: clusterProblems },
);

// RFC 9110 §7.8 protocol: a name, optionally "/version". Lowercase, as requests' are compared lowercased.
const UPGRADE_PROTOCOL = /^[!#$%&'*+.^_`|~0-9a-z-]+(?:\/[!#$%&'*+.^_`|~0-9a-z-]+)?$/;
function upgradeProtocolProblem(s: string): string | undefined {
  return UPGRADE_PROTOCOL.test(s)
    ? undefined
    : `"${s}" is not an upgrade protocol name in lowercase (such as "websocket" or "h2c")`;
}
const redirectSchema = object({
  to: {
    schema: str({
      check: (s) =>
        !/^https?:\/\/|^\//.test(s)
          ? 'must start with http://, https:// or /'
          : /^[\x21-\x7e]+$/.test(s)
            ? undefined
            : 'a location is visible ASCII without spaces (percent-encode the rest)',
    }),
    required: true,
    doc: 'location; {host}, {path} (with query) and, with a regex path, captures {1}-{9} are replaced from the request',
  },
  status: { schema: oneOf([301, 302, 303, 307, 308] as const), default: 301 },
});

/** `client_ip`, or `header:<name>` (a header's value; its absence falls back to the client's address). */
function rateLimitKeyProblem(s: string): string | undefined {
  if (s === 'client_ip') return undefined;
  if (/^header:[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(s)) return undefined;
  return `"${s}" is not a rate limit key; use client_ip or header:<name> (such as header:x-api-key)`;
}
const rateLimitSchema = object(
  {
    requests_per_second: {
      schema: int({ min: 1, max: 1_000_000 }),
      required: true,
      doc: 'requests each key may make per second, on average, across the instance (shared out among workers)',
    },
    burst: {
      schema: int({ min: 1, max: 1_000_000 }),
      doc: 'requests a key may make at once after a quiet time (the bucket size); absent: requests_per_second',
    },
    key: {
      schema: str({ maxLength: 72, check: rateLimitKeyProblem }),
      default: 'client_ip',
      doc: "client_ip, or header:<name>: the header's value (absent: the client's address)",
    },
  },
  { renamed: { rate: 'requests_per_second', rps: 'requests_per_second', by: 'key' } },
);
export type RateLimit = ObjectOf<typeof rateLimitSchema.fields>;

export const frontendSchema = object(
  {
    listener: { schema: listenAddress, doc: 'address of the listener it belongs to; absent: every listener' },
    hostname: {
      schema: str({ maxLength: 253, check: (s) => ruleProblem(() => parseHostRule(s)) }),
      required: true,
      doc: 'exact name, *.wildcard (one label), /regex/ labels, or * for any',
    },
    path: { schema: str({ maxLength: 2048 }), default: '/', doc: 'path rule value' },
    path_type: { schema: oneOf(['prefix', 'exact', 'regex'] as const), default: 'prefix' },
    method: {
      schema: str({ check: (s) => (METHOD.test(s) ? undefined : `"${s}" is not an HTTP method token`) }),
      doc: 'only requests with this method match',
    },
    cluster: { schema: str({ check: idCheck }), doc: 'the cluster that serves it' },
    deny: { schema: oneOf([true] as const), doc: 'answer 403 instead of forwarding' },
    redirect: { schema: redirectSchema, doc: 'answer a redirect instead of forwarding' },
    tags: {
      schema: dict(str({ minLength: 0, maxLength: 256 }), { maxEntries: 32 }),
      default: {},
      doc: 'copied into access log lines',
    },
    hsts: { schema: hstsSchema, doc: "Strict-Transport-Security for this route, replacing its cluster's" },
    allowed_upgrades: {
      schema: list(str({ maxLength: 64, check: upgradeProtocolProblem }), { maxItems: 16 }),
      default: ['websocket'],
      doc: 'protocols a request may upgrade to (e.g. "h2c"); any other upgrade goes on as a plain request',
    },
    ...frontendRuleFields,
    rate_limit: {
      schema: rateLimitSchema,
      doc: 'token bucket per client key; a request over it gets 429 with Retry-After; absent: no limit',
    },
    max_request_body_bytes: {
      schema: int({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      doc: "largest request body on this route, replacing the listener's; larger gets 413",
    },
  },
  {
    renamed: { address: 'listener', cluster_id: 'cluster', domain: 'hostname', host: 'hostname' },
    check: (f, path, issues) => {
      const actions = [f.cluster !== undefined, f.deny !== undefined, f.redirect !== undefined].filter(
        Boolean,
      ).length;
      if (actions !== 1) {
        issues.push({ path, reason: 'needs exactly one of cluster, deny or redirect' });
      }
      const problem = ruleProblem(() => parsePathRule(f.path_type, f.path));
      if (problem !== undefined)
        issues.push({ path: path === '' ? 'path' : `${path}.path`, reason: problem });
      else if (f.redirect !== undefined) {
        const captures = redirectCapturesProblem(f.redirect.to, f.path_type, f.path);
        if (captures !== undefined)
          issues.push({ path: path === '' ? 'redirect.to' : `${path}.redirect.to`, reason: captures });
      }
      frontendRulesCheck(f, path, issues);
    },
  },
);
export type Frontend = ObjectOf<typeof frontendSchema.fields>;

const PEM_MAX = 256 * 1024;
const CERT_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * A certificate served by an HTTPS listener: PEM certificate (leaf first,
 * optionally followed by its chain), chain and private key. Its stable key is
 * listener + the leaf's SHA-256 fingerprint, so putting the same certificate
 * twice is one object, and a renewal is a new object put before the old goes.
 * The schema checks what never changes with time (PEM, key match, chain
 * order); dates are checked when a change is admitted (transaction.ts).
 */
export const certificateSchema = object(
  {
    listener: { schema: listenAddress, required: true, doc: 'address of the HTTPS listener serving it' },
    certificate: {
      schema: str({ maxLength: PEM_MAX }),
      required: true,
      doc: 'PEM: the leaf, optionally followed by its chain',
    },
    chain: {
      schema: str({ minLength: 0, maxLength: PEM_MAX }),
      default: '',
      doc: 'PEM: further chain certificates, issuer of the leaf first',
    },
    key: {
      schema: str({ maxLength: PEM_MAX }),
      required: true,
      doc: 'PEM private key; never shown in logs or answers',
    },
    names: {
      schema: list(
        str({
          maxLength: 253,
          check: (s) =>
            CERT_NAME.test(s) ? undefined : `"${s}" is not a DNS name or a one-label *.wildcard`,
        }),
        { maxItems: 1000 },
      ),
      doc: "names it serves, replacing the certificate's own (SAN dNSNames, or CN without SAN)",
    },
    default: {
      schema: bool(),
      default: false,
      doc: 'served when the client sends no SNI name or one no certificate has',
    },
    allow_expired: { schema: bool(), default: false, doc: 'admit it even when it has expired' },
    origin: {
      schema: str({ maxLength: 1024 }),
      doc: "where the putter got it, for the putter's own bookkeeping (the PKI connector: the pair's files); not used for serving",
    },
  },
  {
    renamed: { certificate_chain: 'chain', address: 'listener', versions: 'listener.tls_versions' },
    check: (c, path, issues) => {
      const r = inspectCertificate(c, { dates: false });
      if (r.ok) return;
      for (const i of r.issues)
        issues.push({ path: path === '' ? i.path : `${path}.${i.path}`, reason: i.reason });
    },
  },
);
export type Certificate = ObjectOf<typeof certificateSchema.fields>;

function ruleProblem(parse: () => unknown): string | undefined {
  try {
    parse();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export type ObjectKind = 'listener' | 'cluster' | 'backend' | 'frontend' | 'certificate';

/** What names each kind of object: all its key is made of, and what a delete carries. */
export interface KeyFields {
  listener: Pick<Listener, 'address'>;
  cluster: Pick<Cluster, 'id'>;
  backend: Pick<Backend, 'cluster' | 'id'>;
  frontend: Pick<Frontend, 'listener' | 'hostname' | 'path' | 'path_type' | 'method'>;
  /** A certificate itself, or the fingerprint that names it in a delete. */
  certificate: Pick<Certificate, 'listener'> & ({ certificate: string } | { fingerprint: string });
}

// Stable keys: "put" of an object with an existing key replaces it. ids cannot
// hold "/" or ";", so a backend or frontend key reads back unambiguously.
const KEYS: { [K in ObjectKind]: (o: KeyFields[K]) => string } = {
  listener: (l) => {
    const a = parseAddress(l.address, { allowPortZero: true });
    return typeof a === 'string' ? l.address : formatAddress(a);
  },
  cluster: (c) => c.id,
  backend: (b) => `${b.cluster}/${b.id}`,
  frontend: (f) => {
    const listener = f.listener === undefined ? '*' : KEYS.listener({ address: f.listener });
    return `${listener};${f.hostname.toLowerCase()};${f.path_type}:${f.path};${f.method ?? '*'}`;
  },
  // listener + the leaf's SHA-256. An admitted certificate always parses; a
  // fingerprint that is not one stays as written, so it matches nothing.
  certificate: (c) =>
    `${KEYS.listener({ address: c.listener })} ${
      'fingerprint' in c
        ? (normalizeFingerprint(c.fingerprint) ?? c.fingerprint)
        : (fingerprintOf(c.certificate) ?? 'unparsable')
    }`,
};

/** The stable key of an object of `kind`, the one spelling of it everywhere (maps, sources, logs). */
export function keyOf<K extends ObjectKind>(kind: K, o: KeyFields[K]): string {
  return KEYS[kind](o);
}
