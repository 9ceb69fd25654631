// Raw TLS records for tests that must send what a normal client never does: a
// real ClientHello captured from Node's client and re-framed, and a relay that
// sits between a real TLS client and kakehi to re-frame its hello or inject
// bytes into the server-bound stream after the handshake.

import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';
import { type ConnectionOptions, connect } from 'node:tls';

/** The first flight a real Node (OpenSSL) client sends, captured on a plain TCP server. */
export async function captureHello(opts: ConnectionOptions = {}): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      });
    }),
  );
  const client = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  client.on('error', () => {});
  const bytes = await got;
  client.destroy();
  server.close();
  return bytes;
}

/** The handshake message of the first record, re-framed into TLS records of at most `size` bytes. */
export function reframe(first: Buffer, size: number): Buffer {
  const msg = first.subarray(5, 5 + first.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const part = msg.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

export interface RelayedConnection {
  /** The relay's socket to kakehi: write to inject bytes, watch it to see kakehi close. */
  upstream: Socket;
  /** Everything kakehi sent on it so far. */
  received(): Buffer;
}

export interface TlsRelay {
  port: number;
  /** The next connection through the relay, once its upstream is open. */
  next(): Promise<RelayedConnection>;
  close(): void;
}

/**
 * A TCP relay to `port` on 127.0.0.1. The client's first record (its hello)
 * goes through `rewriteHello`, the rest unchanged. The client closing does not
 * close the upstream: a test sees kakehi's own close.
 */
export async function tlsRelay(
  port: number,
  rewriteHello: (first: Buffer) => Buffer = (b) => b,
): Promise<TlsRelay> {
  const sockets = new Set<Socket>();
  const waiting: ((c: RelayedConnection) => void)[] = [];
  const server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
    }
    const got: Buffer[] = [];
    upstream.on('data', (d: Buffer) => {
      got.push(d);
      if (!client.destroyed) client.write(d);
    });
    let first: Buffer | undefined = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      if (first === undefined) {
        upstream.write(d);
        return;
      }
      first = Buffer.concat([first, d]);
      if (first.length < 5 || first.length < 5 + first.readUInt16BE(3)) return;
      const end = 5 + first.readUInt16BE(3);
      upstream.write(Buffer.concat([rewriteHello(first.subarray(0, end)), first.subarray(end)]));
      first = undefined;
    });
    upstream.once('connect', () => waiting.shift()?.({ upstream, received: () => Buffer.concat(got) }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
