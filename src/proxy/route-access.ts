// Who may use a route: the client address lists first (every matched route,
// a redirect or deny one too), then, for a route that forwards, its basic
// authentication. A redirect (https_redirect among them) is answered before
// credentials are asked for, so a browser never sends a password over plain
// HTTP only to be told to go to HTTPS.

import type { Cluster } from '../model/objects.js';
import type { RequestHead } from './http1-head.js';
import type { RouteDecision } from './route-decision.js';
import { addressRefused, authorizationOf } from './route-rules.js';

/** The answer kakehi gives instead of forwarding. */
export interface AccessRefusal {
  readonly status: 401 | 403 | 503;
  readonly message: string;
  /** A 401's WWW-Authenticate challenge. */
  readonly authenticate?: string;
}

const ADDRESS_REFUSED: AccessRefusal = { status: 403, message: 'your address may not use this route' };
const BUSY: AccessRefusal = { status: 503, message: 'too many password checks are running; try again' };

/**
 * Undefined: go on with the decision. A refusal: answer it. A promise: the
 * credentials are being checked off the event loop; it settles to either.
 */
export function accessDecision<C extends { readonly spec: Cluster }>(
  d: RouteDecision<C>,
  req: RequestHead,
  address: string,
): AccessRefusal | Promise<AccessRefusal | undefined> | undefined {
  const target = d.kind === 'forward' ? d : d.target;
  const rules = target?.rules;
  if (rules === undefined) return undefined;
  if (addressRefused(rules, address)) return ADDRESS_REFUSED;
  const auth = rules.auth;
  if (d.kind !== 'forward' || auth === undefined) return undefined;
  const unauthorized: AccessRefusal = {
    status: 401,
    message: 'this route needs a valid user name and password',
    authenticate: auth.challenge,
  };
  const outcome = auth.check(authorizationOf(req));
  if (outcome === 'ok') return undefined;
  if (outcome === 'refused') return unauthorized;
  if (outcome === 'busy') return BUSY;
  return outcome.then((ok) => (ok ? undefined : unauthorized));
}
