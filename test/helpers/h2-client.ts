// HTTP/2 clients for the integration tests: Node's own (node:http2, nghttp2
// inside) on one session the test keeps, and curl spawned with its own HTTP/2
// stack, reporting the version it spoke, the status, the headers and the body.

import { spawn } from 'node:child_process';
import {
  type ClientHttp2Session,
  type ClientSessionOptions,
  connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import { connect as tlsConnect } from 'node:tls';

/** Connects and resolves once the session is up (for TLS, after ALPN chose h2). */
export function h2Connect(
  authority: string,
  opts: ClientSessionOptions | SecureClientSessionOptions = {},
): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(authority, { rejectUnauthorized: false, ...opts });
    session.once('error', reject);
    session.once('connect', () => {
      session.off('error', reject);
      // A GOAWAY or reset later is each test's business; an unhandled 'error' must not end the run.
      session.on('error', () => {});
      resolve(session);
    });
  });
}

/** The protocol ALPN chose when a client offers `protocols`; false when none was agreed. */
export function alpnOf(port: number, servername: string, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      servername,
      ALPNProtocols: protocols,
      rejectUnauthorized: false,
    });
    s.once('secureConnect', () => {
      resolve(s.alpnProtocol ?? false);
      s.destroy();
    });
    s.once('error', reject);
  });
}

export interface H2Result {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  trailers: IncomingHttpHeaders | undefined;
}

export interface H2RequestOptions {
  /** Request body; a Buffer is written in 64 KiB pieces so flow control is exercised. */
  body?: Buffer;
  /** Trailers sent after the body (the stream then ends with a HEADERS frame). */
  trailers?: OutgoingHttpHeaders;
}

/** One request on `session`, read whole; rejects on a stream reset. */
export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  opts: H2RequestOptions = {},
): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const hasBody = opts.body !== undefined || opts.trailers !== undefined;
    const stream = session.request(headers, {
      endStream: !hasBody,
      waitForTrailers: opts.trailers !== undefined,
    });
    if (opts.trailers !== undefined) {
      const trailers = opts.trailers;
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    }
    let status = 0;
    let got: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      got = h;
      status = Number(h[':status']);
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    let ended = false;
    stream.on('end', () => {
      ended = true;
      const body = Buffer.concat(chunks);
      resolve({ status, headers: got, body, text: body.toString('utf8'), trailers });
    });
    stream.on('error', reject);
    // A stream closed without its end (even by RST_STREAM NO_ERROR) must fail the test, not leave it waiting.
    stream.on('close', () => {
      if (!ended) reject(new Error(`stream closed before its end (RST_STREAM code ${stream.rstCode})`));
    });
    if (hasBody) writeBody(stream, opts.body ?? Buffer.alloc(0));
  });
}

function writeBody(stream: NodeJS.WritableStream, body: Buffer): void {
  const PIECE = 64 * 1024;
  let at = 0;
  const more = () => {
    while (at < body.length) {
      const piece = body.subarray(at, at + PIECE);
      at += piece.length;
      if (!stream.write(piece)) {
        stream.once('drain', more);
        return;
      }
    }
    stream.end();
  };
  more();
}

export interface CurlResult {
  /** curl's exit code: 0 when the transfer completed. */
  code: number | null;
  /** The version spoken, as curl reports it: "1.1", "2". */
  httpVersion: string;
  status: number;
  /** Response fields, lowercase names, each with its values. */
  headers: Record<string, string[]>;
  body: Buffer;
  stderr: string;
}

const WRITE_OUT = '@@kakehi-json@@';
const WRITE_HEADERS = '@@kakehi-headers@@';

/** Spawns curl with `args` (the URL among them); its write-out goes to stderr so the body stays binary. */
export function curl(args: string[], input?: Buffer): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      'curl',
      ['-sS', '-k', '-w', `%{stderr}${WRITE_OUT}%{json}${WRITE_HEADERS}%{header_json}`, ...args],
      { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] },
    );
    const out: Buffer[] = [];
    let err = '';
    p.stdout?.on('data', (c: Buffer) => out.push(c));
    p.stderr?.on('data', (c: Buffer) => {
      err += c.toString('utf8');
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const at = err.indexOf(WRITE_OUT);
      const hat = err.indexOf(WRITE_HEADERS);
      if (at < 0 || hat < 0) {
        reject(new Error(`curl ${args.join(' ')} wrote no report (exit ${code}): ${err}`));
        return;
      }
      const info = JSON.parse(err.slice(at + WRITE_OUT.length, hat)) as {
        http_version?: string;
        response_code?: number;
      };
      const headers = JSON.parse(err.slice(hat + WRITE_HEADERS.length) || '{}') as Record<string, string[]>;
      resolve({
        code,
        httpVersion: info.http_version ?? '',
        status: info.response_code ?? 0,
        headers,
        body: Buffer.concat(out),
        stderr: err.slice(0, at),
      });
    });
    if (input !== undefined && p.stdin !== null) p.stdin.end(input);
  });
}
