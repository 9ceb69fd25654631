// A bare command-socket client for tests: one request, its final frame, over a
// fresh connection (independent of src/client, so a bug there can't hide one in the server).

import { connect } from 'node:net';

export interface Frame {
  id: unknown;
  status: 'ok' | 'error' | 'processing' | 'event';
  result?: Record<string, unknown>;
  error?: { code: string; message: string; issues?: { path: string; reason: string }[] };
  event?: { type: string; [k: string]: unknown };
}

let nextId = 1;

export function command(
  socketPath: string,
  type: string,
  body: Record<string, unknown> = {},
  timeoutMs = 30_000,
): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    const s = connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to ${type} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const frame = JSON.parse(buf.slice(0, nl)) as Frame;
        buf = buf.slice(nl + 1);
        if (frame.id === id && (frame.status === 'ok' || frame.status === 'error')) {
          clearTimeout(timer);
          s.end();
          resolve(frame);
        }
      }
    });
    s.write(`${JSON.stringify({ ...body, id, type })}\n`);
  });
}

/** Like command, but fails the test unless the answer is ok; returns the result. */
export async function ok(
  socketPath: string,
  type: string,
  body: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const f = await command(socketPath, type, body);
  if (f.status !== 'ok') throw new Error(`${type} failed: ${JSON.stringify(f.error)}`);
  return f.result ?? {};
}
