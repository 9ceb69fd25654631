// The console's HTTP(S) server: the page's static files, then the API behind a
// login. Every API call needs a session cookie; every change also its session's
// CSRF token in a header and a same-origin Origin; edits need the editor role.
// The Host header must name a loopback host when the console listens there, so
// a DNS-rebinding page cannot pose as it.

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { CommandClient } from '../../src/client/command-client.js';
import type { Logger } from '../../src/log/logger.js';
import { boundConnections, listenOn } from '../shared/http-face.js';
import type { EventRelay } from './event-relay.js';
import { isLoopback } from './options.js';
import {
  type ApiReply,
  backendState,
  errorReply,
  exportChanges,
  exportConfig,
  query,
  transaction,
} from './proxy-api.js';
import { csrfMatches, LoginLimiter, SESSION_TTL_MS, type Session, Sessions } from './sessions.js';
import { SECURITY_HEADERS, type StaticFile } from './static-files.js';
import type { TokenFile } from './token-file.js';

export const COOKIE_NAME = 'kakehi_console';
export const CSRF_HEADER = 'x-kakehi-csrf';
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 256;
const MAX_LOGIN_BODY_BYTES = 4 * 1024;
// A transaction may carry certificates with their chains.
const MAX_CHANGE_BODY_BYTES = 8 * 1024 * 1024;

export interface ServerParts {
  client: CommandClient;
  relay: EventRelay;
  tokens: TokenFile;
  files: Map<string, StaticFile>;
  log: Logger;
  source: string;
  host: string;
  tls: { cert: string; key: string } | undefined;
}

class BodyTooLarge extends Error {}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new SyntaxError('the body is not JSON'));
      }
    });
  });
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hostName(hostHeader: string | undefined): string {
  const h = hostHeader ?? '';
  return h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.replace(/:\d+$/, '');
}

export class ConsoleServer {
  readonly sessions = new Sessions();
  readonly limiter = new LoginLimiter();
  readonly #p: ServerParts;
  #server: Server | undefined;

  constructor(parts: ServerParts) {
    this.#p = parts;
  }

  async listen(port: number): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      res.on('error', () => {});
      this.#handle(req, res).catch((err: unknown) => {
        this.#p.log.error({ err }, 'console request failed');
        if (!res.headersSent)
          this.#json(res, errorReply(500, 'KKH_INTERNAL', 'the console failed; see its log'));
        else res.destroy();
      });
    };
    const opts = { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS };
    const tls = this.#p.tls;
    const server = tls
      ? createHttpsServer({ ...opts, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler)
      : createHttpServer(opts, handler);
    boundConnections(server, REQUEST_TIMEOUT_MS, MAX_CONNECTIONS);
    this.#server = server;
    return listenOn(server, port, this.#p.host, this.#p.log);
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  #json(res: ServerResponse, r: ApiReply, extra: Record<string, string> = {}): void {
    const body = r.text?.content ?? JSON.stringify(r.body);
    res.writeHead(r.status, {
      ...SECURITY_HEADERS,
      'content-type': r.text?.type ?? 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...extra,
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // A page served under a name that only resolves to us by rebinding gets nothing.
    if (isLoopback(this.#p.host) && !isLoopback(hostName(req.headers.host))) {
      return this.#json(
        res,
        errorReply(421, 'KKH_CONSOLE_FORBIDDEN', 'this console answers only to a loopback host name'),
      );
    }
    if (!path.startsWith('/api/')) {
      const file = this.#p.files.get(path);
      if (file === undefined || (method !== 'GET' && method !== 'HEAD')) {
        return this.#json(res, errorReply(404, 'KKH_CONSOLE_NOT_FOUND', `no page ${path}`));
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': file.type,
        'content-length': file.body.length,
        'cache-control': 'no-cache',
      });
      res.end(method === 'HEAD' ? undefined : file.body);
      return;
    }
    const changing = method !== 'GET' && method !== 'HEAD';
    if (changing && !this.#sameOrigin(req)) {
      return this.#json(res, errorReply(403, 'KKH_CONSOLE_FORBIDDEN', 'cross-origin request refused'));
    }
    if (path === '/api/login' && method === 'POST') return this.#login(req, res);
    const session = this.sessions.get(cookieOf(req, COOKIE_NAME));
    if (session === undefined) {
      return this.#json(res, errorReply(401, 'KKH_CONSOLE_UNAUTHORIZED', 'log in first'));
    }
    if (changing && !csrfMatches(session, headerOf(req, CSRF_HEADER))) {
      this.#p.log.warn(
        { ip: req.socket.remoteAddress, path },
        'console change without its CSRF token refused',
      );
      return this.#json(
        res,
        errorReply(403, 'KKH_CONSOLE_FORBIDDEN', `missing or wrong ${CSRF_HEADER} header`),
      );
    }
    return this.#api(req, res, session, url);
  }

  // Fetch sends Origin on every POST; a form from another site would carry its own.
  #sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return req.headers['sec-fetch-site'] !== 'cross-site';
    const scheme = this.#p.tls ? 'https' : 'http';
    return origin === `${scheme}://${req.headers.host}`;
  }

  async #login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (!this.limiter.take(ip)) {
      this.#p.log.warn({ ip }, 'console login refused: too many attempts');
      return this.#json(
        res,
        errorReply(429, 'KKH_CONSOLE_RATE_LIMITED', 'too many login attempts; wait and try again'),
        {
          'retry-after': '10',
        },
      );
    }
    let body: unknown;
    try {
      body = await readJson(req, MAX_LOGIN_BODY_BYTES);
    } catch {
      return this.#json(res, errorReply(400, 'KKH_REQUEST_INVALID', 'expected {"token": "…"}'));
    }
    const token = (body as { token?: unknown } | null)?.token;
    const role = typeof token === 'string' ? await this.#p.tokens.roleOf(token) : undefined;
    if (role === undefined) {
      // Never the token: a typo of the real one would be half a secret in the log.
      this.#p.log.warn({ ip }, 'console login failed');
      return this.#json(res, errorReply(401, 'KKH_CONSOLE_UNAUTHORIZED', 'unknown token'));
    }
    this.limiter.refund(ip);
    const s = this.sessions.create(role);
    this.#p.log.info({ ip, role }, 'console login');
    const cookie = `${COOKIE_NAME}=${s.id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`;
    return this.#json(
      res,
      { status: 200, body: { role, csrf: s.csrf, source: this.#p.source } },
      { 'set-cookie': cookie },
    );
  }

  async #api(req: IncomingMessage, res: ServerResponse, session: Session, url: URL): Promise<void> {
    const { client, source } = this.#p;
    const method = req.method ?? 'GET';
    const route = `${method} ${url.pathname}`;
    if (route === 'GET /api/session') {
      return this.#json(res, { status: 200, body: { role: session.role, csrf: session.csrf, source } });
    }
    if (route === 'POST /api/logout') {
      this.sessions.delete(session.id);
      return this.#json(
        res,
        { status: 200, body: {} },
        { 'set-cookie': `${COOKIE_NAME}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0` },
      );
    }
    if (route === 'GET /api/events') {
      if (!this.#p.relay.attach(res)) {
        return this.#json(res, errorReply(503, 'KKH_CONSOLE_BUSY', 'too many open event streams'));
      }
      return;
    }
    if (route === 'GET /api/export') {
      const config = url.searchParams.get('format') === 'config';
      return this.#json(res, config ? await exportConfig(client) : await exportChanges(client), {
        'content-disposition': `attachment; filename="${config ? 'kakehi.yaml' : 'kakehi-changes.json'}"`,
      });
    }
    if (method === 'GET' && url.pathname.startsWith('/api/q/')) {
      return this.#json(res, await query(client, url.pathname.slice('/api/q/'.length), url.searchParams));
    }
    const edits: Record<string, typeof transaction> = {
      'POST /api/transaction': transaction,
      'POST /api/backend-state': backendState,
    };
    const edit = edits[route];
    if (edit === undefined)
      return this.#json(res, errorReply(404, 'KKH_CONSOLE_NOT_FOUND', `no API ${route}`));
    if (session.role !== 'editor') {
      this.#p.log.warn(
        { ip: req.socket.remoteAddress, route },
        'console change by a read-only session refused',
      );
      return this.#json(res, errorReply(403, 'KKH_CONSOLE_FORBIDDEN', 'this session is read-only'));
    }
    let body: unknown;
    try {
      body = await readJson(req, MAX_CHANGE_BODY_BYTES);
    } catch (err) {
      return this.#json(
        res,
        err instanceof BodyTooLarge
          ? errorReply(413, 'KKH_REQUEST_INVALID', `the body is over ${MAX_CHANGE_BODY_BYTES} bytes`)
          : errorReply(400, 'KKH_REQUEST_INVALID', 'the body is not JSON'),
      );
    }
    const reply = await edit(client, source, body);
    if (reply.status === 200 && (body as { dry_run?: unknown } | null)?.dry_run !== true) {
      this.#p.log.info(
        { route, generation: (reply.body as { generation?: number }).generation },
        'console change applied',
      );
    }
    return this.#json(res, reply);
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
