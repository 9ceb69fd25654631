// One JSON line per request on its own stream (stdout, stderr or a file),
// written from the data plane's request events rather than from the hot path.

import { pino } from 'pino';
import { type RequestEnd, requestEnd } from '../proxy/request-events.js';

export interface AccessLog {
  /** Flushes and detaches. */
  close(): void;
}

export function startAccessLog(target: string): AccessLog {
  if (target === 'off') return { close() {} };
  const dest =
    target === 'stdout'
      ? pino.destination({ dest: 1, sync: false, minLength: 4096 })
      : target === 'stderr'
        ? pino.destination({ dest: 2, sync: false, minLength: 4096 })
        : pino.destination({ dest: target, sync: false, minLength: 4096, mkdir: true });
  const onEnd = (message: unknown) => {
    const e = message as RequestEnd;
    // One request per line; no level or pino time: `time` is when it ended.
    const line = JSON.stringify({
      time: new Date(e.time).toISOString(),
      client: e.client,
      method: e.method,
      host: e.host,
      path: e.path,
      status: e.status,
      cluster: e.cluster,
      backend: e.backend,
      bytes_in: e.bytesIn,
      bytes_out: e.bytesOut,
      duration_ms: Math.round(e.durationMs * 1000) / 1000,
      backend_ms: e.backendMs < 0 ? undefined : Math.round(e.backendMs * 1000) / 1000,
      request_id: e.requestId,
      listener: e.listener,
      tags: e.tags && Object.keys(e.tags).length > 0 ? e.tags : undefined,
      error: e.error,
    });
    dest.write(`${line}\n`);
  };
  requestEnd.subscribe(onEnd);
  // Flush buffered lines regularly so a quiet proxy's log is never far behind.
  const flusher = setInterval(() => dest.flush(), 1000);
  flusher.unref();
  return {
    close() {
      clearInterval(flusher);
      requestEnd.unsubscribe(onEnd);
      dest.flushSync();
    },
  };
}
