// Node peer for the load benchmark: fastify with @fastify/reply-from (undici pool, keep-alive).
// Usage: node peer-reply-from.js PORT BACKEND_PORT
import replyFrom from '@fastify/reply-from';
import Fastify from 'fastify';
import { parsePorts } from './ports.js';

const { port, backendPort } = parsePorts(process.argv.slice(2));
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
await app.register(replyFrom, {
  base: `http://127.0.0.1:${backendPort}/`,
  undici: { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 },
});
app.all('/*', (request, reply) => {
  // Same minimum as the other peers: append X-Forwarded-For.
  const forwardedFor = (prior: string | string[] | undefined): string =>
    prior === undefined ? request.ip : `${[prior].flat().join(', ')}, ${request.ip}`;
  return reply.from(request.url, {
    rewriteRequestHeaders: (_req, headers) => ({
      ...headers,
      'x-forwarded-for': forwardedFor(headers['x-forwarded-for']),
    }),
  });
});
await app.listen({ host: '127.0.0.1', port });
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0));
});
