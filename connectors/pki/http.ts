// The connector's small HTTP face: /metrics (prom-client text), /healthz (200 when
// connected and the last reconcile succeeded, 503 with the reason otherwise) and
// /status (JSON: directories, pairs, their state and last error). Bounded: request
// timeouts and a connection cap, as scrapers are trusted but may be stuck.

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../../src/log/logger.js';
import type { PkiConnector } from './connector.js';

const REQUEST_TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 64;

function send(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export async function serveHttp(
  connector: PkiConnector,
  host: string,
  port: number,
  log: Logger,
): Promise<{ server: Server; port: number }> {
  const server = createServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      res.on('error', () => {});
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8');
      }
      switch (path) {
        case '/metrics':
          connector.metrics.registry.metrics().then(
            (text) => send(res, 200, text, connector.metrics.registry.contentType),
            (err: unknown) => {
              log.error({ err }, 'metrics failed');
              send(res, 500, 'internal error\n', 'text/plain; charset=utf-8');
            },
          );
          return;
        case '/healthz': {
          const h = connector.healthy;
          return send(res, h.ok ? 200 : 503, `${h.reason}\n`, 'text/plain; charset=utf-8');
        }
        case '/status':
          return send(res, 200, `${JSON.stringify(connector.status(), null, 2)}\n`, 'application/json');
        default:
          return send(
            res,
            404,
            'not found; try /status, /metrics or /healthz\n',
            'text/plain; charset=utf-8',
          );
      }
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('connection', (socket) => {
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'http server error'));
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return { server, port: bound };
}
