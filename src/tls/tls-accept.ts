// Turns an accepted TCP connection into a TLS one: reads the ClientHello (bounded
// in size and time), asks the store which certificate fits its SNI name and
// signature algorithms, then hands the bytes already read to a server TLSSocket
// with that one context. Every failure ends with the socket destroyed and a
// reason for the metrics; nothing waits unbounded. A hello kakehi refuses
// itself gets the alert OpenSSL would send (RFC 8446 §6) before the close.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { CertificateStore, Served } from './certificate-store.js';
import { ClientHelloReader, type HelloRefusal } from './client-hello.js';
import { ALPN } from './policy.js';
import { failureReason, fatalReason, type TlsErrorReason } from './tls-events.js';

export interface TlsAcceptOptions {
  store: CertificateStore;
  /** From the first byte to the end of the handshake: a slow client gets no more (slowloris). */
  timeoutMs: number;
  /**
   * A tls listener's connection, whose bytes go to a backend as they are: no ALPN
   * offered (what runs inside is the backend's business, not http/1.1), and
   * half-open allowed, so the client's end can be passed on while the backend answers.
   */
  passBytes?: boolean;
  /** Protocols offered by ALPN, the preferred first (the listener's alpn); default http/1.1 alone. */
  alpn?: string[];
  onSecure(socket: TLSSocket, served: Served): void;
  onFailure(reason: string): void;
  /**
   * A fatal TLS error that ended the connection with an alert: a refused hello,
   * or one OpenSSL raised after the handshake. `detail` is OpenSSL's message.
   */
  onFatal(reason: TlsErrorReason, detail: string): void;
  /** Either way, once: the listener stops tracking the connection. */
  onDone(): void;
}

/** RFC 8446 §6: the alert each refusal of the hello reader gets; not_tls gets none (as with OpenSSL). */
const HELLO_ALERTS: Record<Exclude<HelloRefusal, 'not_tls'>, { alert: number; reason: TlsErrorReason }> = {
  malformed: { alert: 50, reason: 'malformed_hello' }, // decode_error
  unexpected_message: { alert: 10, reason: 'unexpected_message' },
  record_overflow: { alert: 22, reason: 'record_overflow' },
  // Kakehi's own bound, not a protocol violation: the handshake cannot go on.
  too_large: { alert: 40, reason: 'oversized_hello' }, // handshake_failure
};
const DECODE_ERROR = 50;

/** A plaintext fatal alert record: the handshake has no keys yet (RFC 8446 §5.1, §6). */
export function alertRecord(description: number): Buffer {
  return Buffer.from([21, 3, 3, 0, 2, 2, description]);
}

/** Starts the handshake; the returned function abandons it (drain), a no-op once it is done. */
export function acceptTls(raw: Socket, opts: TlsAcceptOptions): () => void {
  const reader = new ClientHelloReader();
  const read: Buffer[] = [];
  let done = false;
  let current: Socket = raw;
  const fail = (reason: string, socket: Socket = current) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.destroy();
    opts.onDone();
    opts.onFailure(reason);
  };
  /** The alert, then the close once it is written; the socket's error handler covers a peer gone meanwhile. */
  const refuse = (reason: string, alert: number, fatal: TlsErrorReason) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    raw.off('data', onData);
    raw.end(alertRecord(alert), () => raw.destroy());
    opts.onDone();
    opts.onFailure(reason);
    opts.onFatal(fatal, `refused ClientHello: ${reason}`);
  };
  const timer = setTimeout(() => fail('timeout'), opts.timeoutMs);
  const gone = () => fail('client_reset');
  raw.on('error', gone);
  raw.on('close', gone);
  // Half-open is for requests; a client that ends before its handshake is gone,
  // and one that ends in the middle of its hello sent a truncated message.
  const ended = () => {
    if (read.length === 0) gone();
    else refuse('truncated', DECODE_ERROR, 'truncated_hello');
  };
  raw.on('end', ended);
  const onData = (chunk: Buffer) => {
    read.push(chunk);
    const r = reader.push(chunk);
    if (r.kind === 'incomplete') return;
    raw.off('data', onData);
    if (r.kind === 'invalid') {
      if (r.reason === 'not_tls') fail(r.reason);
      else refuse(r.reason, HELLO_ALERTS[r.reason].alert, HELLO_ALERTS[r.reason].reason);
      return;
    }
    raw.pause();
    raw.off('error', gone);
    raw.off('close', gone);
    raw.off('end', ended);
    // Node's TLSSocket reads what the socket already holds before its handle.
    raw.unshift(read.length === 1 ? (read[0] as Buffer) : Buffer.concat(read));
    read.length = 0;
    const served = opts.store.resolve(r.hello.servername, r.hello);
    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext: served.context,
      ...(opts.passBytes === true ? { allowHalfOpen: true } : { ALPNProtocols: opts.alpn ?? ALPN }),
      requestCert: false,
    });
    current = tls;
    const failed = (err: Error) => fail(failureReason(err), tls);
    const closed = () => fail('client_reset', tls);
    tls.on('error', failed);
    tls.on('close', closed);
    tls.on('end', closed);
    tls.once('secure', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      tls.off('error', failed);
      tls.off('close', closed);
      tls.off('end', closed);
      // Outside a tls.Server, Node reports an OpenSSL error after the handshake
      // (bad record MAC, record overflow, a ChangeCipherSpec after Finished)
      // only as the internal '_tlsError' event, never 'error': the alert went
      // out but the socket would stay open until the keep-alive timeout.
      tls.on('_tlsError', (err: Error) => {
        tls.destroy();
        opts.onFatal(fatalReason(err), err.message);
      });
      opts.onDone();
      opts.onSecure(tls, served);
    });
  };
  raw.on('data', onData);
  return () => fail('draining');
}
