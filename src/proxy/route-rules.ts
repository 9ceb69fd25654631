// A frontend's rules in the form requests use them, built once when the
// frontend is put (route-decision's frontendRoute) and swapped with it: a
// change of rules takes effect at the next request, and requests in flight
// keep the rules they started with. A frontend without rules has none, so
// plain routes pay one undefined check per request.

import type { Frontend } from '../model/objects.js';
import { type IpList, ipList } from '../router/ip-list.js';
import type { PathRule } from '../router/path-rule.js';
import { BasicAuth } from './basic-auth.js';
import { compileHeaderRules, type HeaderRules } from './header-rules.js';
import type { RequestHead } from './http1-head.js';
import { compilePathRewrite, type PathRewrite } from './path-rewrite.js';
import { compileRedirect, type RedirectLocation } from './redirect.js';

export interface RouteRules {
  readonly requestHeaders: HeaderRules | undefined;
  readonly responseHeaders: HeaderRules | undefined;
  readonly rewritePath: PathRewrite | undefined;
  /** Host sent to the backend instead of the client's. */
  readonly host: string | undefined;
  readonly redirect: RedirectLocation | undefined;
  readonly auth: BasicAuth | undefined;
  readonly allow: IpList | undefined;
  readonly deny: IpList | undefined;
}

export function compileRouteRules(f: Frontend, path: PathRule): RouteRules | undefined {
  if (
    f.request_headers === undefined &&
    f.response_headers === undefined &&
    f.strip_prefix === undefined &&
    f.replace_prefix === undefined &&
    f.host_rewrite === undefined &&
    f.redirect === undefined &&
    f.basic_auth === undefined &&
    f.ip_allow === undefined &&
    f.ip_deny === undefined
  )
    return undefined;
  return {
    requestHeaders: f.request_headers === undefined ? undefined : compileHeaderRules(f.request_headers),
    responseHeaders: f.response_headers === undefined ? undefined : compileHeaderRules(f.response_headers),
    rewritePath: compilePathRewrite(f),
    host: f.host_rewrite,
    redirect: f.redirect === undefined ? undefined : compileRedirect(f.redirect.to, path),
    auth: f.basic_auth === undefined ? undefined : new BasicAuth(f.basic_auth),
    allow: f.ip_allow === undefined ? undefined : ipList(f.ip_allow),
    deny: f.ip_deny === undefined ? undefined : ipList(f.ip_deny),
  };
}

/** The client's address is refused by the route's lists: deny wins, and a set allow list admits only its own. */
export function addressRefused(rules: RouteRules, address: string): boolean {
  if (rules.deny?.matches(address) === true) return true;
  return rules.allow !== undefined && !rules.allow.matches(address);
}

/** The one Authorization value of a request; undefined when absent or sent more than once. */
export function authorizationOf(req: RequestHead): string | undefined {
  const i = req.lower.indexOf('authorization');
  if (i < 0 || req.lower.indexOf('authorization', i + 1) >= 0) return undefined;
  return req.values[i];
}
