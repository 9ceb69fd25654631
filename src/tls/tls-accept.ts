// Turns an accepted TCP connection into a TLS one: reads the ClientHello (bounded
// in size and time), asks the store which certificate fits its SNI name and
// signature algorithms, then hands the bytes already read to a server TLSSocket
// with that one context. Every failure ends with the socket destroyed and a
// reason for the metrics; nothing waits unbounded.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { CertificateStore, Served } from './certificate-store.js';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './client-hello.js';
import { ALPN } from './policy.js';
import { failureReason } from './tls-events.js';

export interface TlsAcceptOptions {
  store: CertificateStore;
  /** From the first byte to the end of the handshake: a slow client gets no more (slowloris). */
  timeoutMs: number;
  onSecure(socket: TLSSocket, served: Served): void;
  onFailure(reason: string): void;
  /** Either way, once: the listener stops tracking the connection. */
  onDone(): void;
}

/** Starts the handshake; the returned function abandons it (drain), a no-op once it is done. */
export function acceptTls(raw: Socket, opts: TlsAcceptOptions): () => void {
  let buffered: Buffer | undefined;
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
  const timer = setTimeout(() => fail('timeout'), opts.timeoutMs);
  const gone = () => fail('client_reset');
  raw.on('error', gone);
  raw.on('close', gone);
  // Half-open is for requests; a client that ends before its handshake is gone.
  raw.on('end', gone);
  const onData = (chunk: Buffer) => {
    buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
    const r = parseClientHello(buffered);
    if (r.kind === 'incomplete') {
      if (buffered.length > MAX_CLIENT_HELLO_BYTES + 64) fail('too_large');
      return;
    }
    raw.off('data', onData);
    if (r.kind === 'invalid') {
      fail(r.reason);
      return;
    }
    raw.pause();
    raw.off('error', gone);
    raw.off('close', gone);
    raw.off('end', gone);
    // Node's TLSSocket reads what the socket already holds before its handle.
    raw.unshift(buffered);
    buffered = undefined;
    const served = opts.store.resolve(r.hello.servername, r.hello);
    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext: served.context,
      ALPNProtocols: ALPN,
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
      opts.onDone();
      opts.onSecure(tls, served);
    });
  };
  raw.on('data', onData);
  return () => fail('draining');
}
