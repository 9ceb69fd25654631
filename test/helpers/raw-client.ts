// A raw TCP client for tests that must send exact bytes (smuggling, malformed
// requests) and read exactly what comes back, including whether the proxy closed.

import { connect, type Socket } from 'node:net';

export interface RawResult {
  text: string;
  /** The proxy closed the connection (as opposed to our deadline ending the read). */
  closed: boolean;
}

/** Sends `data`, then reads until the server closes or `doneWhen` says the answer is whole. */
export function rawExchange(
  port: number,
  data: string | Buffer | (string | Buffer)[],
  opts: { doneWhen?: (text: string) => boolean; timeoutMs?: number; endAfterWrite?: boolean } = {},
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 5_000);
    socket.on('error', (err) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (opts.doneWhen?.(text)) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      for (const part of Array.isArray(data) ? data : [data]) socket.write(part);
      if (opts.endAfterWrite) socket.end();
    });
  });
}

/** Count of complete responses (by status line) in a raw capture. */
export function statusCodes(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}
