// Real backend servers on 127.0.0.1 for integration tests: an echo server that
// reports what it received, and raw TCP servers scripted to misbehave.

import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';

export interface Backend {
  port: number;
  address: string;
  /** Requests seen, in order. */
  seen: Seen[];
  close(): Promise<void>;
  server: Server | TcpServer;
}

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  bodyBytes: number;
}

function listen(server: Server | TcpServer, port = 0): Promise<number> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      res(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

function closer(server: Server | TcpServer, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise((res) => {
      for (const s of sockets) s.destroy();
      server.close(() => res());
    });
}

/** Answers every request with JSON describing it, after reading the whole body. `name` tells backends apart. */
export async function echoBackend(
  name: string,
  handle?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean | undefined,
): Promise<Backend> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes <= 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyBytes: bytes,
      });
      if (handle?.(req, res, body) === true) return;
      const out = JSON.stringify({
        backend: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyBytes: bytes,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return { port, address: `127.0.0.1:${port}`, seen, server, close: closer(server, sockets) };
}

/** A TCP server whose every connection is handed to `onConnection` (to misbehave on purpose). */
export async function rawBackend(
  onConnection: (socket: Socket, received: () => string) => void,
  port = 0,
): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
    });
    onConnection(s, () => got);
  });
  const bound = await listen(server, port);
  return { port: bound, address: `127.0.0.1:${bound}`, seen: [], server, close: closer(server, sockets) };
}

/** A port with nothing listening on it. */
/** Ports closedPort() handed out in this process: never the same one twice. */
const handedOut = new Set<number>();

/**
 * Where closedPort() picks from: below the kernel's ephemeral range, so an
 * outgoing connection of any process (or a `listen(0)`) never takes the port
 * between this check and the test's own bind, and two calls never get the same
 * port back from the kernel's rotation.
 */
function pickRange(): [number, number] {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return [10_000, low - 1];
  } catch {
    // not Linux: the kernel's own choice below
  }
  return [0, 0];
}
const PICK = pickRange();

/** A port on 127.0.0.1 nothing listens on now, for a test to bind later or to find closed. */
export async function closedPort(): Promise<number> {
  const [lo, hi] = PICK;
  for (let tries = 0; tries < 200; tries++) {
    const want = hi === 0 ? 0 : lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOut.has(want)) continue;
    const s = createTcpServer();
    const port = await listen(s, want).catch(() => undefined);
    if (port === undefined) continue; // taken: another one
    await new Promise<void>((r) => s.close(() => r()));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('closedPort: no free port found in 200 tries');
}

export interface GatedBackend extends Backend {
  /** Lets every held request (and any later one) get its answer. */
  release(): void;
  /** Resolves when the first held request has arrived. */
  holding: Promise<void>;
}

/**
 * An echo backend that holds the requests `holds` picks (default: all) until the
 * test calls release(), then answers them with `answer` (default: 200 "finished").
 * Requests it does not hold get the usual echo.
 */
export async function gatedBackend(
  name: string,
  options: {
    holds?: (req: IncomingMessage) => boolean;
    answer?: (res: ServerResponse) => void;
  } = {},
): Promise<GatedBackend> {
  const { holds = () => true, answer = (res) => res.end('finished') } = options;
  let release: () => void = () => {};
  const released = new Promise<void>((r) => {
    release = r;
  });
  let arrived: () => void = () => {};
  const holding = new Promise<void>((r) => {
    arrived = r;
  });
  const backend = await echoBackend(name, (req, res) => {
    if (!holds(req)) return undefined;
    arrived();
    void released.then(() => answer(res));
    return true;
  });
  return Object.assign(backend, { release: () => release(), holding });
}
