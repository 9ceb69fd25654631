// A connector's small HTTP face (/metrics, /healthz, /status, …): GET and HEAD
// only, each path answered by a function. Bounded: request timeouts and a
// connection cap, as scrapers are trusted but may be stuck.

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from '../../src/log/logger.js';

const REQUEST_TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 64;
const TEXT = 'text/plain; charset=utf-8';

export interface Reply {
  status: number;
  body: string;
  type?: string;
}

export type Routes = Record<string, () => Reply | Promise<Reply>>;

/** A one-line text answer, newline added. */
export const text = (status: number, line: string): Reply => ({ status, body: `${line}\n`, type: TEXT });
/** A JSON answer, pretty for humans with curl. */
export const json = (status: number, value: unknown): Reply => ({
  status,
  body: `${JSON.stringify(value, null, 2)}\n`,
  type: 'application/json',
});

function send(res: ServerResponse, r: Reply): void {
  res.writeHead(r.status, { 'content-type': r.type ?? TEXT, 'content-length': Buffer.byteLength(r.body) });
  res.end(res.req.method === 'HEAD' ? undefined : r.body);
}

export async function serveHttp(
  routes: Routes,
  host: string,
  port: number,
  log: Logger,
): Promise<{ server: Server; port: number }> {
  const known = Object.keys(routes).join(', ');
  const server = createServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      res.on('error', () => {});
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, text(405, 'method not allowed'));
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (route === undefined) return send(res, text(404, `not found; try ${known}`));
      Promise.resolve()
        .then(route)
        .then(
          (r) => send(res, r),
          (err: unknown) => {
            log.error({ err, path }, 'http handler failed');
            send(res, text(500, 'internal error'));
          },
        );
    },
  );
  boundConnections(server, REQUEST_TIMEOUT_MS, MAX_CONNECTIONS);
  return { server, port: await listenOn(server, port, host, log) };
}

/** Bounds a server's connections: a cap, an idle timeout, and a client's socket error ends only that socket. */
export function boundConnections(
  server: Server | HttpsServer,
  timeoutMs: number,
  maxConnections: number,
): void {
  server.maxConnections = maxConnections;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('connection', (socket) => {
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('error', () => {});
  });
}

/** Listens and resolves with the bound port; an error then (port in use) rejects, later ones are logged. */
export async function listenOn(
  server: Server | HttpsServer,
  port: number,
  host: string,
  log: Logger,
): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'http server error'));
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/** The /metrics route of a prom-client registry. */
export function metricsRoute(registry: {
  metrics(): Promise<string>;
  contentType: string;
}): () => Promise<Reply> {
  return async () => ({ status: 200, body: await registry.metrics(), type: registry.contentType });
}

/**
 * The face on `listen` when one is asked for: `{server}` (undefined server when
 * the face is off), or null when the address cannot be used (logged).
 */
export async function serveFace(
  routes: Routes,
  listen: { host: string; port: number } | undefined,
  log: Logger,
): Promise<{ server: Server | undefined } | null> {
  if (listen === undefined) return { server: undefined };
  try {
    const s = await serveHttp(routes, listen.host, listen.port, log);
    log.info({ host: listen.host, port: s.port }, 'listening');
    return { server: s.server };
  } catch (err) {
    log.error({ err: (err as Error).message, listen }, 'cannot listen');
    return null;
  }
}
