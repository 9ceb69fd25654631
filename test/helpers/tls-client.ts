// TLS clients for the HTTPS tests: a bare handshake that reports what the
// server presented, and one HTTPS request over a fresh connection.

import { request } from 'node:https';
import { connect, type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
import { type HttpResult, readWhole } from './http.js';

export interface Handshake {
  protocol: string | null;
  cipher: string;
  alpn: string | false | null;
  cert: PeerCertificate;
  /** Serial of the leaf the server presented (uppercase hex). */
  serial: string;
  /** SHA-256 fingerprint of that leaf, lowercase hex without colons. */
  fingerprint: string;
  reused: boolean;
  session: Buffer | undefined;
  authorized: boolean;
  authorizationError: string | undefined;
}

export interface HandshakeOptions {
  servername?: string;
  ca?: string | string[];
  sigalgs?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  session?: Buffer;
}

/** Opens a TLS connection, completes the handshake, reports it, and closes. */
export function handshake(port: number, opts: HandshakeOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const s: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      ...(opts.servername === undefined ? {} : { servername: opts.servername }),
      ...(opts.ca === undefined ? { rejectUnauthorized: false } : { ca: opts.ca, rejectUnauthorized: false }),
      ...(opts.sigalgs === undefined ? {} : { sigalgs: opts.sigalgs }),
      ...(opts.minVersion === undefined ? {} : { minVersion: opts.minVersion }),
      ...(opts.maxVersion === undefined ? {} : { maxVersion: opts.maxVersion }),
      ...(opts.session === undefined ? {} : { session: opts.session }),
      ALPNProtocols: ['http/1.1'],
    });
    // TLS 1.3 tickets arrive after the handshake; wait for one before closing.
    s.on('session', (buf: Buffer) => {
      session = buf;
      if (done) finish();
    });
    let done = false;
    let result: Omit<Handshake, 'session'> | undefined;
    const finish = () => {
      if (result === undefined) return;
      s.destroy();
      resolve({ ...result, session });
    };
    s.once('secureConnect', () => {
      const cert = s.getPeerCertificate(true) as DetailedPeerCertificate;
      result = {
        protocol: s.getProtocol(),
        cipher: s.getCipher().standardName,
        alpn: s.alpnProtocol,
        cert,
        // A resumed session may carry no certificate: then both are ''.
        serial: (cert.serialNumber ?? '').toUpperCase(),
        fingerprint: (cert.fingerprint256 ?? '').replaceAll(':', '').toLowerCase(),
        reused: s.isSessionReused(),
        authorized: s.authorized,
        authorizationError: s.authorizationError === null ? undefined : String(s.authorizationError),
      };
      done = true;
      // TLS 1.2 sessions are known at once; 1.3 tickets follow the first read.
      if (s.getProtocol() === 'TLSv1.2') {
        session = s.getSession();
        finish();
      } else if (session !== undefined) finish();
      else s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    s.on('data', () => {});
    s.on('end', finish);
    s.on('close', finish);
    s.once('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('TLS handshake timed out')));
  });
}

export type HttpsResult = HttpResult;

/** One HTTPS GET on a fresh connection, read whole. */
export function httpsGet(
  port: number,
  path: string,
  opts: { servername?: string; host?: string; ca?: string | string[] } = {},
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        servername: opts.servername ?? opts.host,
        headers: opts.host === undefined ? {} : { host: opts.host },
        ...(opts.ca === undefined ? { rejectUnauthorized: false } : { ca: opts.ca }),
      },
      (res) => readWhole(res, resolve, reject),
    );
    r.on('error', reject);
    r.end();
  });
}
