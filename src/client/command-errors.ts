// The two ways a command request fails, as a caller needs to tell them apart: the
// proxy answered no (CommandError, with its stable code and field issues), or the
// socket failed (CommandTransportError, with a reason and whether a retry can help).

import type { RequestId, WireError } from '../command/frames.js';
import type { FieldIssue } from '../errors.js';

/** The proxy answered the request with an error. */
export class CommandError extends Error {
  readonly code: string;
  readonly issues: readonly FieldIssue[];
  readonly requestType: string;
  readonly requestId: RequestId;

  constructor(error: WireError, requestType: string, requestId: RequestId) {
    super(error.message);
    this.name = 'CommandError';
    this.code = error.code;
    this.issues = error.issues ?? [];
    this.requestType = requestType;
    this.requestId = requestId;
  }
}

export type TransportFailure =
  | 'unreachable' // no socket, refused, permission denied
  | 'timeout' // connect or request deadline passed
  | 'disconnected' // the connection was lost (or is being re-established)
  | 'closed' // close() was called
  | 'overloaded' // too many requests in flight, or a request over the frame limit
  | 'protocol'; // the proxy sent something that is not the protocol

/** The request never got an answer: the socket, not the proxy's judgement, failed. */
export class CommandTransportError extends Error {
  readonly reason: TransportFailure;
  /** Worth retrying the same request later (on a new or re-established connection). */
  readonly recoverable: boolean;
  readonly socketPath: string;

  constructor(reason: TransportFailure, message: string, socketPath: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CommandTransportError';
    this.reason = reason;
    this.recoverable = reason !== 'closed' && reason !== 'protocol';
    this.socketPath = socketPath;
  }
}
