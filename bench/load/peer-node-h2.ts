// Node peer for the HTTP/2 load benchmark (SCHEME=h2): the smallest proxy node:http2 makes,
// a TLS HTTP/2 server whose every stream becomes a node:http request to the backend over a
// keep-alive agent. It shows what node:http2 itself costs on the proxy's core, the engine
// kakehi's HTTP/2 side runs on. Usage: node peer-node-h2.js PORT BACKEND_PORT CERT_FILE KEY_FILE
import { readFileSync } from 'node:fs';
import { Agent, type OutgoingHttpHeaders, request } from 'node:http';
import { constants, createSecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { parsePorts } from './ports.js';

const { port, backendPort } = parsePorts(process.argv.slice(2, 4));
const [certFile, keyFile] = process.argv.slice(4);
if (!certFile || !keyFile) {
  console.error('usage: node peer-node-h2.js PORT BACKEND_PORT CERT_FILE KEY_FILE');
  process.exit(2);
}
const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
/** Response fields HTTP/2 has no place for. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function forward(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const out: OutgoingHttpHeaders = { host: headers[':authority'] ?? 'localhost' };
  for (const [name, value] of Object.entries(headers)) if (name[0] !== ':') out[name] = value;
  out['x-forwarded-for'] = stream.session?.socket.remoteAddress ?? '';
  const req = request(
    {
      host: '127.0.0.1',
      port: backendPort,
      method: headers[':method'],
      path: headers[':path'],
      headers: out,
      agent,
    },
    (res) => {
      const answer: OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
      for (const [name, value] of Object.entries(res.headers)) if (!hopByHop.has(name)) answer[name] = value;
      if (stream.destroyed) {
        res.resume();
        return;
      }
      stream.respond(answer);
      res.pipe(stream);
    },
  );
  req.on('error', () => {
    if (!stream.headersSent && !stream.destroyed) stream.respond({ ':status': 502 }, { endStream: true });
    else stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  });
  stream.pipe(req);
}

const server = createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
server.on('stream', forward);
server.listen(port, '127.0.0.1');
// The benchmark stops each peer when its run is done: nothing is in flight by then.
process.on('SIGTERM', () => process.exit(0));
