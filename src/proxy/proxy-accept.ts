// The first step of a connection on a listener with expect_proxy: read the
// PROXY header the load balancer in front writes (bounded in size by the reader,
// in time by the listener's head timeout), then hand the socket on, paused, with
// the bytes that came after the header put back in front of it. A connection
// without a valid header is closed with no answer: the peer is a balancer, and
// an HTTP error page would reach no one who can act on it.

import diagnostics_channel from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { type ConnectionPeer, headerPeer, socketPeer } from './connection-peer.js';
import { type ProxyRefusal, readProxyHeader } from './proxy-protocol.js';

export type ProxyAcceptFailure = ProxyRefusal | 'timeout' | 'truncated';

export interface ProxyProtocolError {
  listener: string;
  reason: ProxyAcceptFailure;
  /** What was wrong, for the log; never the connection's bytes. */
  message: string;
}
/** A connection closed for want of a valid PROXY header. */
export const proxyProtocolError = diagnostics_channel.channel('kakehi:proxy-protocol:error');

export interface ProxyAcceptOptions {
  listener: string;
  timeoutMs: number;
  /** The header was read; the socket is paused with what followed it unshifted. */
  onPeer(peer: ConnectionPeer): void;
  /** Either way, once: the listener stops tracking the connection. */
  onDone(): void;
}

/** Starts reading; the returned function abandons it (drain), a no-op once it is done. */
export function acceptProxyHeader(socket: Socket, opts: ProxyAcceptOptions): () => void {
  let buf: Buffer | undefined;
  let done = false;
  const finish = () => {
    done = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', gone);
    socket.off('error', gone);
    socket.off('close', gone);
    opts.onDone();
  };
  const refuse = (reason: ProxyAcceptFailure, message: string) => {
    if (done) return;
    finish();
    socket.destroy();
    if (proxyProtocolError.hasSubscribers)
      proxyProtocolError.publish({ listener: opts.listener, reason, message } satisfies ProxyProtocolError);
  };
  // A balancer's own probe may connect and go without a byte: not an error.
  const gone = () => {
    if (done) return;
    if (buf !== undefined) {
      refuse('truncated', 'the connection ended inside its PROXY header');
      return;
    }
    finish();
    socket.destroy();
  };
  const timer = setTimeout(
    () => refuse('timeout', `no complete PROXY header within ${opts.timeoutMs} ms`),
    opts.timeoutMs,
  );
  const onData = (chunk: Buffer) => {
    buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
    const r = readProxyHeader(buf);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'invalid') {
      refuse(r.reason, r.message);
      return;
    }
    socket.pause();
    finish();
    // Readable streams give unshifted bytes before the handle's: the next reader sees them first.
    if (r.length < buf.length) socket.unshift(buf.subarray(r.length));
    buf = undefined;
    opts.onPeer(headerPeer(r.header, socket));
  };
  socket.on('data', onData);
  socket.on('end', gone);
  socket.on('error', gone);
  socket.on('close', gone);
  return () => {
    if (done) return;
    finish();
    socket.destroy();
  };
}

/** What withPeer needs of a listener. */
export interface PeerSource {
  readonly listenerKey: string;
  readonly spec: { expect_proxy: boolean; request_head_timeout_ms: number };
}

/**
 * Who the client of an accepted socket is, then `next`: at once from the socket,
 * or, with expect_proxy, once the PROXY header is read within the head timeout
 * (the header is part of the head: the same bound against slow peers). Then the
 * socket is `paused`, what followed the header unshifted: `next` resumes it
 * when it reads. Kept in `pending` meanwhile, so that a drain can end it.
 */
export function withPeer(
  socket: Socket,
  from: PeerSource,
  pending: Set<() => void>,
  next: (peer: ConnectionPeer, paused: boolean) => void,
): void {
  if (!from.spec.expect_proxy) {
    next(socketPeer(socket), false);
    return;
  }
  const abandon = acceptProxyHeader(socket, {
    listener: from.listenerKey,
    timeoutMs: from.spec.request_head_timeout_ms,
    onPeer: (peer) => next(peer, true),
    onDone: () => pending.delete(abandon),
  });
  pending.add(abandon);
}
