// Node peer for the load benchmark: node-http-proxy (`http-proxy`) on a node:http server,
// with a keep-alive agent to the backend. Usage: node peer-http-proxy.js PORT BACKEND_PORT
// [CERT_FILE KEY_FILE]; with the PEM files it listens on node:https (TLS termination).
import { readFileSync } from 'node:fs';
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import httpProxy from 'http-proxy';
import { parsePorts } from './ports.js';

const { port, backendPort } = parsePorts(process.argv.slice(2, 4));
const [certFile, keyFile] = process.argv.slice(4);
const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${backendPort}`, agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res) {
    const response = res as ServerResponse;
    if (!response.headersSent) response.writeHead(502);
    response.end();
  } else {
    res.destroy();
  }
});
const handle = (req: IncomingMessage, res: ServerResponse) => proxy.web(req, res);
const server =
  certFile && keyFile
    ? createTlsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, handle)
    : createServer(handle);
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
