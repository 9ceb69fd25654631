// The page application's files, read once at start from the package
// (connectors/console/static, shipped as is: no build step on the operator's
// machine) and served from memory, with the headers every answer carries.

import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';

/** No inline script or style, nothing from elsewhere, never framed. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface StaticFile {
  body: Buffer;
  type: string;
}

// From dist/connectors/console (compiled) or connectors/console (ts source): the
// static folder sits beside the sources, not in dist.
export function staticDir(here: string): string {
  const fromDist = resolve(here, '..', '..', '..', 'connectors', 'console', 'static');
  return here.split(/[\\/]/).includes('dist') ? fromDist : join(here, 'static');
}

/** Every file of the folder by URL path (`/app.js`); `/` is index.html. */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    files.set(`/${name}`, { body: readFileSync(join(dir, name)), type });
  }
  const index = files.get('/index.html');
  if (index === undefined)
    throw new Error(`${dir}: index.html is missing; the console cannot serve its page`);
  files.set('/', index);
  return files;
}
