// A frontend's redirect location, compiled once: literal parts, {host}, {path}
// (the request-target, with its query) and captures {1}-{9} of the frontend's
// path regex. The captures come from the router's own anchored regex, run once
// more on a path the router just matched, so no new pattern meets requests.

import type { PathRule } from '../router/path-rule.js';

type Part = string | { readonly v: 'host' | 'path' | number };

export interface RedirectRequest {
  readonly host: string;
  readonly path: string;
  readonly target: string;
}

export type RedirectLocation = (req: RedirectRequest) => string;

export function compileRedirect(to: string, rule: PathRule): RedirectLocation {
  const parts: Part[] = [];
  let last = 0;
  let captures = false;
  for (const m of to.matchAll(/\{(host|path|[1-9])\}/g)) {
    if (m.index > last) parts.push(to.slice(last, m.index));
    const name = m[1]!;
    if (name === 'host' || name === 'path') parts.push({ v: name });
    else {
      parts.push({ v: Number(name) });
      captures = true;
    }
    last = m.index + m[0].length;
  }
  if (last < to.length) parts.push(to.slice(last));
  const re = captures && rule.kind === 'regex' ? rule.re : undefined;
  return (req) => {
    const groups = re?.exec(req.path);
    let out = '';
    for (const p of parts) {
      if (typeof p === 'string') out += p;
      else if (p.v === 'host') out += req.host;
      else if (p.v === 'path') out += req.target;
      else out += groups?.[p.v] ?? '';
    }
    return out;
  };
}
