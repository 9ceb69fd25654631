// Header rules of a frontend, compiled once when the frontend is put: the
// lowercased names whose fields are dropped, and the lines written after the
// rest, each a list of literal parts and variables. Per request that is one set
// lookup per field and string concatenation, nothing parsed.
//
// Every variable expands to a value kakehi already checked (the request parser
// refuses controls in Host and the target, request ids are tokens), so no
// expansion can carry a CR or LF into a head.

import { HEADER_VARIABLES, type HeaderVariable } from '../model/frontend-rules.js';
import type { ClientInfo } from './connection-peer.js';
import type { RequestHead } from './http1-head.js';

/** A header rules object as the frontend holds it (remove, set, add). */
export interface HeaderRuleSpec {
  remove: string[];
  set: Record<string, string>;
  add: Record<string, string>;
}

/** What a variable reads: the exchange the head belongs to. */
export interface HeaderContext {
  readonly client: ClientInfo;
  readonly req: RequestHead;
  readonly requestId: string;
}

type Part = string | { readonly variable: HeaderVariable };

export interface HeaderRules {
  /** Lowercased names of fields not passed on (removed or replaced). */
  readonly drops: ReadonlySet<string>;
  readonly lines: readonly { readonly name: string; readonly parts: readonly Part[] }[];
}

export function compileHeaderRules(spec: HeaderRuleSpec): HeaderRules {
  const drops = new Set<string>();
  for (const n of spec.remove) drops.add(n.toLowerCase());
  for (const n of Object.keys(spec.set)) drops.add(n.toLowerCase());
  const lines = [...Object.entries(spec.set), ...Object.entries(spec.add)].map(([name, value]) => ({
    name,
    parts: templateParts(value),
  }));
  return { drops, lines };
}

function templateParts(value: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of value.matchAll(/\{([a-z_0-9]+)\}/g)) {
    const v = m[1] as HeaderVariable;
    // The schema refused unknown names; anything else left here stays literal.
    if (!HEADER_VARIABLES.includes(v)) continue;
    if (m.index > last) parts.push(value.slice(last, m.index));
    parts.push({ variable: v });
    last = m.index + m[0].length;
  }
  if (last < value.length) parts.push(value.slice(last));
  return parts;
}

function variableValue(v: HeaderVariable, ctx: HeaderContext): string {
  switch (v) {
    case 'client_ip':
      return ctx.client.address;
    case 'request_id':
      return ctx.requestId;
    case 'host':
      return ctx.req.host;
    case 'method':
      return ctx.req.method;
    case 'path':
      return ctx.req.path;
    case 'proto':
      return ctx.client.proto;
  }
}

/** The rule's lines as head text, each ending in CRLF. */
export function headerLines(rules: HeaderRules, ctx: HeaderContext): string {
  let out = '';
  for (const l of rules.lines) {
    out += `${l.name}: `;
    for (const p of l.parts) out += typeof p === 'string' ? p : variableValue(p.variable, ctx);
    out += '\r\n';
  }
  return out;
}
