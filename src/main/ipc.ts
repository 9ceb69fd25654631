// Messages between the main process and its workers (node:cluster IPC, JSON).
// Main sends a full snapshot first, then ordered transactions; a worker answers
// each with an ack once it serves the new generation.

import type { Family } from '../metrics/registry.js';
import type { HealthEvent } from '../proxy/backend-runtime.js';
import type { Change } from '../state/change.js';
import { stateAsChanges } from '../state/diff.js';
import type { ProxyState } from '../state/proxy-state.js';
import { buildState } from '../state/transaction.js';
import type { BoundListener } from './proxy-runtime.js';

/** What every worker's HTTPS listeners share; buffers travel as base64 in JSON IPC. */
export interface TlsSetupMessage {
  /** Made when the first https listener appears (RSA keygen is slow); sent ahead of that change. */
  selfSigned?: { certificate: string; key: string };
  ticketKeys: string;
}

/**
 * The whole state as puts, parents first: a worker builds its state from it with
 * the same function as every other process (stateOfSnapshot), and then applies
 * each transaction to it in the same vocabulary.
 */
export type Snapshot = Change[];

/** The source of every object a worker holds. */
export const WORKER_SOURCE = 'main';

export function snapshotOf(state: ProxyState): Snapshot {
  return stateAsChanges(state);
}

/**
 * A worker's state from main's snapshot. Sources stay in main (they decide what
 * a reload may touch); in a worker every object is from 'main', the same
 * source its later transactions record.
 */
export function stateOfSnapshot(snapshot: Snapshot): ProxyState {
  const r = buildState(snapshot.map((change) => ({ change, source: WORKER_SOURCE })));
  if (!r.ok) {
    // Main admitted every one of these changes; a refusal here is a bug in kakehi.
    throw new Error(`snapshot refused: ${r.issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`);
  }
  return r.state;
}

export type ToWorker =
  | {
      t: 'init';
      generation: number;
      snapshot: Snapshot;
      accessLog: string;
      tls: TlsSetupMessage;
    }
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
  | { t: 'metrics'; seq: number };

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
  /** Answers a numbered ticket_keys once new handshakes use the new keys. */
  | { t: 'ticket_keys_set'; seq: number };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
