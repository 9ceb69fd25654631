// The worker's warn line for connections refused for want of a valid PROXY
// header. A misconfigured balancer (or a scanner) can send thousands a second,
// so per listener one line a minute at most, saying how many were refused
// since the last one; the metric counts every one.

import type { Logger } from '../log/logger.js';
import { type ProxyProtocolError, proxyProtocolError } from '../proxy/proxy-accept.js';

const WINDOW_MS = 60_000;
/** Listeners remembered: one entry each, and there are few; a bound all the same. */
const MAX_LISTENERS = 1024;

/** Subscribes; the returned function unsubscribes. */
export function logProxyProtocolErrors(log: Logger): () => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  const onError = (m: unknown) => {
    const e = m as ProxyProtocolError;
    const now = Date.now();
    const seen = last.get(e.listener);
    if (seen !== undefined && now - seen.at < WINDOW_MS) {
      seen.suppressed++;
      return;
    }
    if (seen === undefined && last.size >= MAX_LISTENERS) last.clear();
    log.warn(
      { listener: e.listener, reason: e.reason, detail: e.message, suppressed: seen?.suppressed ?? 0 },
      'connection without a valid PROXY header closed (expect_proxy)',
    );
    last.set(e.listener, { at: now, suppressed: 0 });
  };
  proxyProtocolError.subscribe(onError);
  return () => proxyProtocolError.unsubscribe(onError);
}
