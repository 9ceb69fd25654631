// Every default in one place, with its unit in its name. Configuration
// documentation (docs/configuration.md) is checked against these by a test.

export const DEFAULT_LISTEN_ADDRESS = '127.0.0.1:8080';

export const REQUEST_HEAD_TIMEOUT_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 60_000;
export const FRONT_TIMEOUT_MS = 60_000;
export const CONNECT_TIMEOUT_MS = 3_000;
export const BACKEND_TIMEOUT_MS = 30_000;
export const WEBSOCKET_IDLE_TIMEOUT_MS = 300_000;
export const DRAIN_TIMEOUT_MS = 30_000;
/**
 * A listener removed or replaced by a change (not a shutdown) finishes what it
 * carries for this long, then cuts what is left. Not drain_timeout_ms: that bounds
 * a stop the operator asked for, while this runs inside a live worker, and is as
 * long as an idle keep-alive (KEEPALIVE_TIMEOUT_MS) so an idle connection ends by
 * itself before it would be cut.
 */
export const RETIRED_LISTENER_DRAIN_MS = 60_000;
/** A worker that has not acknowledged a change by then is reported and replaced. */
export const WORKER_TIMEOUT_MS = 10_000;
/**
 * ctl upgrade --main: how long the new main may take to load, start its workers
 * and answer each step of the hand-over before it is stopped (workers alone may
 * take 3 × worker_timeout_ms to start).
 */
export const SUCCESSOR_TIMEOUT_MS = 60_000;
/** query_metrics leaves out a worker that has not sent its metrics by then. */
export const METRICS_QUERY_TIMEOUT_MS = 2_000;

/** Request or response head (start line and headers) bigger than this is refused (431 / 502). */
export const MAX_HEADER_BYTES = 32 * 1024;
/**
 * Header fields in one request head; more is refused with 431. HAProxy's default is
 * 101 (tune.http.maxhdr); a backend that keeps only the first N fields must not
 * lose the ones kakehi adds (it puts Host first for that reason).
 */
export const MAX_HEADER_COUNT = 128;

/** HTTP/2 streams open at once per connection: HAProxy's and nginx's order (100, 128). */
export const H2_MAX_CONCURRENT_STREAMS = 100;
/** HTTP/2 streams a client may cancel per second before its connection goes (rapid reset, CVE-2023-44487). */
export const H2_MAX_RESETS_PER_SECOND = 100;

export const BACKEND_WEIGHT = 100;
/** Connection attempts per request, each to a different backend where one exists. */
export const CONNECT_ATTEMPTS = 3;
/** Idle keep-alive connections kept per backend. */
export const BACKEND_MAX_IDLE = 64;
/** Requests (and tcp connections) in flight on one backend at once, per worker: a backend's max_connections. */
export const BACKEND_MAX_CONNECTIONS = 1024;
/** Requests that may wait for a full backend, per backend and worker: a cluster's queue_size. */
export const BACKEND_QUEUE_SIZE = 128;
/** How long a request waits for a full backend before it is answered 503: a cluster's queue_timeout_ms. */
export const BACKEND_QUEUE_TIMEOUT_MS = 5_000;
/** Client keys a frontend's rate limit tracks per worker; past it, the least recently seen key is forgotten. */
export const RATE_LIMIT_MAX_KEYS = 100_000;
/** Kept-alive backend connections are dropped after this, or one second before the backend's own Keep-Alive timeout. */
export const BACKEND_IDLE_TIMEOUT_MS = 4_000;
/** A failing backend is skipped for 2^n × this (capped), then tried again. */
export const BACKEND_BACKOFF_BASE_MS = 500;
export const BACKEND_BACKOFF_MAX_MS = 30_000;
/** Consecutive connection failures after which a backend is reported down. */
export const BACKEND_DOWN_AFTER_FAILURES = 3;

/**
 * Body bytes small enough to go out in one string with the head before them: one
 * plain write instead of a corked writev (the copy costs less than the writev's setup).
 */
export const JOINED_BODY_BYTES = 8 * 1024;

/** Bytes read ahead from a client while a request is in flight (pipelining) before reads pause. */
export const PIPELINE_BUFFER_BYTES = 64 * 1024;

/** Active health checks (src/main/health-checks.ts): time between probes of one backend. */
export const HEALTH_CHECK_INTERVAL_MS = 5_000;
export const HEALTH_CHECK_TIMEOUT_MS = 2_000;
/** Probes in flight at once across the instance; a probe due while all are busy waits its next turn. */
export const HEALTH_CHECK_MAX_CONCURRENT = 64;
/** Bytes of a probe's answer read before giving up on finding its status line. */
export const HEALTH_CHECK_MAX_HEAD_BYTES = 16 * 1024;
