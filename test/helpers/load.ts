// A bounded load generator for "zero failed requests" tests: a few keep-alive
// loops of GETs against the proxy until stopped, counting every outcome.

import { Agent, request } from 'node:http';

export interface LoadResult {
  ok: number;
  failed: { status: number; error: string | undefined }[];
}

export function startLoad(
  port: number,
  opts: { concurrency?: number; path?: string; host?: string; maxRequests?: number } = {},
) {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 4 });
  const result: LoadResult = { ok: 0, failed: [] };
  let running = true;
  let sent = 0;
  const max = opts.maxRequests ?? 200_000;
  const one = () =>
    new Promise<void>((resolve) => {
      sent++;
      const r = request(
        {
          host: '127.0.0.1',
          port,
          path: opts.path ?? '/',
          agent,
          headers: { host: opts.host ?? 'load.test' },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) result.ok++;
            else result.failed.push({ status: res.statusCode ?? 0, error: undefined });
            resolve();
          });
        },
      );
      r.on('error', (err) => {
        result.failed.push({ status: 0, error: err.message });
        resolve();
      });
      r.end();
    });
  const loops = Array.from({ length: opts.concurrency ?? 4 }, async () => {
    while (running && sent < max) await one();
  });
  return {
    result,
    /** Resolves when maxRequests have been sent and answered. */
    async done(): Promise<LoadResult> {
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
    /** Stops the loops after their current request; resolves with the counts. */
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}
