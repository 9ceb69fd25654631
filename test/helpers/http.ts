// One HTTP/1.1 request on a fresh connection (no agent, so no reuse between
// calls), read whole: the plain client the integration tests share.

import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function httpGet(port: number, path = '/', headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) =>
      readWhole(res, resolve, reject),
    );
    r.on('error', reject);
    r.end();
  });
}

/** Reads a response to its end as text (also for node:https responses). */
export function readWhole(
  res: IncomingMessage,
  resolve: (r: HttpResult) => void,
  reject: (err: Error) => void,
): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    body += c;
  });
  res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
  res.on('error', reject);
}
