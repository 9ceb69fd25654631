// The route decision, pure: from a request's Host, path and method to the route
// it is forwarded on, or to the answer kakehi gives itself (400, 421, 404, 403,
// redirects, 503). The data plane and `query_route` call this same function, so
// `kakehi ctl route` reports exactly what a request would get.

import type { Cluster, Frontend } from '../model/objects.js';
import { normalizeHost, parseHostRule } from '../router/host-rule.js';
import { parsePathRule } from '../router/path-rule.js';
import type { Route, Router } from '../router/router.js';
import { hostMatchesServed, type Served } from '../tls/certificate-store.js';
import { compileRouteRules, type RouteRules } from './route-rules.js';

/**
 * What a router holds per frontend. It is also the decision to forward on it, so
 * a forwarded request allocates nothing here. `C` is the data plane's cluster
 * runtime, or just `{ spec }` where main answers `query_route`.
 */
export interface RouteTarget<C extends { readonly spec: Cluster } = { readonly spec: Cluster }> {
  readonly kind: 'forward';
  readonly frontend: Frontend;
  readonly cluster: C | undefined;
  /** Its rewrites, redirect and access rules, compiled; undefined when it has none. */
  readonly rules: RouteRules | undefined;
}

/** kakehi answers the request itself. */
export interface RouteAnswer<C extends { readonly spec: Cluster } = { readonly spec: Cluster }> {
  readonly kind: 'answer';
  readonly status: number;
  readonly message: string;
  readonly location: string | undefined;
  /** The matched route, when one matched (its HSTS and tags still apply). */
  readonly target: RouteTarget<C> | undefined;
  /** Set when the cluster itself answers (HTTPS redirect): its answer templates apply. */
  readonly cluster: C | undefined;
}

export type RouteDecision<C extends { readonly spec: Cluster } = { readonly spec: Cluster }> =
  | RouteTarget<C>
  | RouteAnswer<C>;

/** What the decision reads of a request; a parsed RequestHead is one. */
export interface RouteRequest {
  /** The Host header as sent. */
  readonly host: string;
  /** The path without its query. */
  readonly path: string;
  readonly method: string;
  /** The request-target as sent: redirects keep its query. */
  readonly target: string;
}

const INVALID_HOST: RouteAnswer<never> = answerOf(400, 'invalid Host', undefined);
const NO_ROUTE: RouteAnswer<never> = answerOf(404, 'no route matches this host and path', undefined);

/**
 * The decision for one request. `served` is what the TLS handshake served (https
 * only; undefined where there is no connection); with `strictSni` the Host must
 * be one of its names. Plain arguments, not an options object: called per request.
 */
export function decideRoute<C extends { readonly spec: Cluster }>(
  router: Router<RouteTarget<C>>,
  req: RouteRequest,
  proto: string,
  strictSni: boolean,
  served: Served | undefined,
): RouteDecision<C> {
  const host = normalizeHost(req.host);
  if (host === undefined) return INVALID_HOST;
  if (served !== undefined && strictSni && !hostMatchesServed(served, host)) {
    return answerOf(
      421,
      `${host} is not a name of the certificate this connection was opened for`,
      undefined,
    );
  }
  const target = router.lookup(host, req.path, req.method);
  if (target === undefined) return NO_ROUTE;
  const f = target.frontend;
  if (f.deny) return answerOf(403, 'this route is closed', target);
  if (f.redirect !== undefined && target.rules?.redirect !== undefined) {
    const location = target.rules.redirect(req);
    return answerOf(f.redirect.status, `moved to ${location}`, target, location);
  }
  const cluster = target.cluster;
  if (cluster === undefined) return answerOf(503, 'the cluster of this route is not configured', target);
  if (cluster.spec.https_redirect && proto === 'http') {
    const port = cluster.spec.https_redirect_port;
    const location = `https://${hostForUrl(host)}${port === undefined || port === 443 ? '' : `:${port}`}${req.target}`;
    return {
      kind: 'answer',
      status: cluster.spec.https_redirect_status,
      message: `moved to ${location}`,
      location,
      target,
      cluster,
    };
  }
  return target;
}

function answerOf<C extends { readonly spec: Cluster }>(
  status: number,
  message: string,
  target: RouteTarget<C> | undefined,
  location?: string,
): RouteAnswer<C> {
  return { kind: 'answer', status, message, location, target, cluster: undefined };
}

/** A frontend as a router entry; its rules are parsed here, once per call. */
export function frontendRoute<C extends { readonly spec: Cluster }>(
  f: Frontend,
  cluster: C | undefined,
): Route<RouteTarget<C>> {
  const path = parsePathRule(f.path_type, f.path);
  return {
    key: `${f.hostname};${f.path_type}:${f.path};${f.method ?? '*'}`,
    host: parseHostRule(f.hostname),
    path,
    ...(f.method === undefined ? {} : { method: f.method }),
    target: { kind: 'forward', frontend: f, cluster, rules: compileRouteRules(f, path) },
  };
}

/** A normalized host as it goes in a URL: IPv6 literals keep their brackets. */
function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
