// Which echo backend (backends.ts) answered a request through kakehi: the
// balancing and health tests read where traffic went this way.

import { httpGet } from './http.js';

/** Which backend answered, from the echo backend's JSON; the status otherwise. */
export async function servedBy(port: number): Promise<string> {
  const r = await httpGet(port, '/');
  return r.status === 200 ? (JSON.parse(r.body) as { backend: string }).backend : `status ${r.status}`;
}

export async function servedByEach(port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await servedBy(port));
  return out;
}
