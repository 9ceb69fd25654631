// Messages between the main process and its workers (node:cluster IPC, JSON).
// Main sends a full snapshot first, then ordered transactions; a worker answers
// each with an ack once it serves the new generation. This is the contract both
// sides import, so it holds shapes only and imports types alone, none from main,
// the worker or the data plane's implementation: neither side loads the other's
// code to speak it.

import type { AccessLogField } from '../log/access-log-fields.js';
import type { Family } from '../metrics/registry.js';
import type { BackendLive } from '../proxy/backend-runtime.js';
import type { HealthEvent } from '../proxy/request-events.js';
import type { Change } from '../state/change.js';
import type { Snapshot } from '../state/snapshot.js';

/** A listener as a worker reports it bound. */
export interface BoundListener {
  key: string;
  address: string;
  port: number;
}

// Where listening sockets are made and handed over (ctl upgrade --main).
export type { ListeningHandle } from '../proxy/listening-server.js';

/** What every worker's HTTPS listeners share; buffers travel as base64 in JSON IPC. */
export interface TlsSetupMessage {
  /** Made when the first https listener appears (RSA keygen is slow); sent ahead of that change. */
  selfSigned?: { certificate: string; key: string };
  ticketKeys: string;
}

export type ToWorker =
  | {
      t: 'init';
      generation: number;
      snapshot: Snapshot;
      accessLog: string;
      accessLogFields: readonly AccessLogField[];
      tls: TlsSetupMessage;
      /** Backend keys main's health checks hold down now (a worker started later learns them here). */
      healthDown: string[];
      /** The worker's overall max_connections (top-level setting); absent: no limit. */
      maxConnections?: number | undefined;
    }
  /** The top-level max_connections changed (a reload): connections from now on see it. */
  | { t: 'max_connections'; max?: number | undefined }
  /**
   * Every backend key main's health checks hold down, whole each time (so order
   * and a lost message cannot leave a worker wrong for long); not a change: no generation.
   */
  | { t: 'health_checks'; down: string[] }
  /**
   * New session ticket keys (base64 of 48 bytes), the same for every worker.
   * With a seq, main waits for the worker to say it uses them (ticket_keys_set).
   */
  | { t: 'ticket_keys'; keys: string; seq?: number }
  /** The self-signed default certificate, before the first change that needs it. */
  | { t: 'self_signed'; certificate: string; key: string }
  | { t: 'apply'; seq: number; generation: number; changes: Change[] }
  | { t: 'drain'; timeoutMs: number }
  /** Answered at once, outside the transaction queue: a scrape never waits for a change. */
  | { t: 'metrics'; seq: number }
  /** Like metrics, answered at once: each backend as this worker sees it (query_backends). */
  | { t: 'backends'; seq: number }
  /**
   * Carries a listening socket (the IPC handle) that a previous main handed over
   * (ctl upgrade --main); sent before init, the listener with this key listens on
   * it instead of binding, so the port is never closed.
   */
  | { t: 'listener_handle'; key: string }
  /** Main is handing over: send each listening socket back as a listener_handle, then listener_handles_sent. */
  | { t: 'send_listener_handles'; seq: number };

export type FromWorker =
  /** Sent once the worker listens for messages: anything sent before would be lost. */
  | { t: 'hello' }
  /** The worker could not start serving its initial state (e.g. a port is taken); it exits next. */
  | { t: 'failed'; code: string; message: string }
  | { t: 'ready'; generation: number; listeners: BoundListener[] }
  | { t: 'ack'; seq: number; generation: number; listeners: BoundListener[] }
  | { t: 'nack'; seq: number; message: string }
  | { t: 'health'; event: HealthEvent }
  /** The worker stopped accepting (its listening handles are closed); draining follows. */
  | { t: 'closed' }
  /** Drained and about to exit; `families` are its final metrics, for main to keep its counters. */
  | { t: 'drained'; cut: number; families: Family[] }
  | { t: 'metrics'; seq: number; families: Family[] }
  | { t: 'backends'; seq: number; backends: BackendLive[] }
  /** Answers a numbered ticket_keys once new handshakes use the new keys. */
  | { t: 'ticket_keys_set'; seq: number }
  /** One listening socket, as the IPC handle of this message (answering send_listener_handles). */
  | { t: 'listener_handle'; key: string }
  /** Every listener_handle for that round was sent before this. */
  | { t: 'listener_handles_sent'; seq: number; keys: string[] };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
