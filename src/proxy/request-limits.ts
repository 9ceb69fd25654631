// What a routed request must pass before a backend is asked: its frontend's
// rate limit (429 with Retry-After) and the request body size limit of its
// frontend or listener (413 on a Content-Length over it; a chunked body is
// counted as it comes, by RequestBody). Pure but for the rate limit's buckets.

import type { Frontend, Listener } from '../model/objects.js';
import type { RequestHead } from './http1-head.js';
import type { RateLimits } from './rate-limit.js';

export interface LimitAnswer {
  status: 413 | 429;
  message: string;
  /** 429: seconds until the key has a token again. */
  retryAfterS?: number;
}

/** The body size limit of a request on this route: the frontend's, else the listener's, else none. */
export function bodyLimitOf(listener: Listener, frontend: Frontend): number {
  return frontend.max_request_body_bytes ?? listener.max_request_body_bytes ?? Number.POSITIVE_INFINITY;
}

/** The answer refusing this request, or undefined when it may go on. */
export function checkRequestLimits(
  rateLimits: RateLimits,
  listener: Listener,
  frontend: Frontend,
  clientIp: string,
  req: RequestHead,
): LimitAnswer | undefined {
  const refused = rateLimits.admit(frontend, clientIp, req);
  if (refused !== undefined)
    return {
      status: 429,
      message: `over the rate limit of ${frontend.rate_limit?.requests_per_second} requests per second`,
      retryAfterS: refused.retryAfterS,
    };
  const max = bodyLimitOf(listener, frontend);
  if (!req.chunked && req.contentLength > max)
    return {
      status: 413,
      message: `the request body (${req.contentLength} bytes) is larger than the ${max} bytes accepted`,
    };
  return undefined;
}
