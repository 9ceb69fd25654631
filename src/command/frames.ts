// The command protocol's frames as values: the request types, parsing a request
// line into {id, type, body} (or the error answer that names what is wrong, so the
// connection stays usable), and encoding every frame either side sends.

import type { FieldIssue } from '../errors.js';
import { CHANGE_REQUESTS, type ChangeRequestType } from '../state/change.js';

/** Requests that read the state or the process and change nothing. */
export const QUERY_TYPES = [
  'status',
  'list_workers',
  'list_listeners',
  'list_clusters',
  'list_backends',
  'list_frontends',
  'list_certificates',
  'list_connectors',
  'query_route',
  'get_state',
  'query_metrics',
  'query_backends',
] as const;

/** Change requests built from the running state in their turn, not from the body alone. */
const STATE_CHANGE_TYPES = ['set_backend_state'] as const;

/** Requests that drive the process: its state as a whole, its workers, its life. */
const PROCESS_TYPES = [
  'save_state',
  'load_state',
  'reload',
  'soft_stop',
  'hard_stop',
  'upgrade',
  'rotate_ticket_keys',
  'subscribe_events',
  'report_connector_status',
] as const;

/**
 * Every request type, in Sōzu's vocabulary where Sōzu has one (docs/protocol.md).
 * The change requests are the names in CHANGE_REQUESTS plus `transaction`; they
 * all take `dry_run` and `expect_generation`.
 */
export type RequestType =
  | (typeof QUERY_TYPES)[number]
  | ChangeRequestType
  | 'transaction'
  | (typeof STATE_CHANGE_TYPES)[number]
  | (typeof PROCESS_TYPES)[number];
export const REQUEST_TYPES: readonly RequestType[] = [
  ...QUERY_TYPES,
  ...(Object.keys(CHANGE_REQUESTS) as ChangeRequestType[]),
  'transaction',
  ...STATE_CHANGE_TYPES,
  ...PROCESS_TYPES,
];

export type RequestId = string | number;
const MAX_ID_LENGTH = 256;

export interface CommandRequest {
  id: RequestId;
  type: RequestType;
  /** Every field but id and type. */
  body: Record<string, unknown>;
}

export interface WireError {
  code: string;
  message: string;
  issues?: FieldIssue[];
}

export type ResponseFrame =
  | { id: RequestId | null; status: 'processing'; message: string }
  | { id: RequestId | null; status: 'ok'; result: unknown }
  | { id: RequestId | null; status: 'error'; error: WireError }
  | { id: RequestId; status: 'event'; event: { type: string; [field: string]: unknown } };

export type ParsedRequest = { ok: true; request: CommandRequest } | { ok: false; response: ResponseFrame };

const TYPE_SET: ReadonlySet<string> = new Set(REQUEST_TYPES);

export function isRequestType(s: unknown): s is RequestType {
  return typeof s === 'string' && TYPE_SET.has(s);
}

function isId(v: unknown): v is RequestId {
  return (
    (typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH) ||
    (typeof v === 'number' && Number.isFinite(v))
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function refuse(
  id: RequestId | null,
  code: string,
  message: string,
  issues: FieldIssue[] = [],
): ParsedRequest {
  return { ok: false, response: { id, status: 'error', error: { code, message, issues } } };
}

/** Parses one request line (without its line ending). Never throws. */
export function parseRequest(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return refuse(null, 'KKH_REQUEST_INVALID_JSON', `the line is not valid JSON: ${why}`);
  }
  if (!isObject(value)) {
    return refuse(null, 'KKH_REQUEST_INVALID_JSON', 'a request must be a JSON object, one per line');
  }
  const { id, type, ...body } = value;
  if (!isId(id)) {
    const reason =
      id === undefined
        ? 'missing: every request needs an id (a string or number) to match its responses'
        : `must be a non-empty string of at most ${MAX_ID_LENGTH} characters or a finite number`;
    return refuse(null, 'KKH_REQUEST_INVALID', `invalid request: id ${reason}`, [{ path: 'id', reason }]);
  }
  if (type === undefined) {
    const reason = `missing; one of ${REQUEST_TYPES.join(', ')}`;
    return refuse(id, 'KKH_REQUEST_INVALID', `invalid request: type ${reason}`, [{ path: 'type', reason }]);
  }
  if (!isRequestType(type)) {
    const reason = `unknown type ${JSON.stringify(type)}`;
    return refuse(id, 'KKH_REQUEST_UNKNOWN_TYPE', `${reason}; one of ${REQUEST_TYPES.join(', ')}`, [
      { path: 'type', reason },
    ]);
  }
  return { ok: true, request: { id, type, body } };
}

/** One response frame as a line, newline included. */
export function encodeResponse(frame: ResponseFrame): string {
  return `${JSON.stringify(frame)}\n`;
}

/** One request as a line, newline included; body fields can't override id or type. */
export function encodeRequest(id: RequestId, type: string, body: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ ...body, id, type })}\n`;
}

/** The answer to a frame over the size limit, sent just before the connection closes. */
export function tooLargeResponse(limit: number): ResponseFrame {
  return {
    id: null,
    status: 'error',
    error: {
      code: 'KKH_FRAME_TOO_LARGE',
      message: `a frame is over the ${limit}-byte limit; closing the connection`,
      issues: [],
    },
  };
}

/** Reads a response line as a client sees it; a string says what is wrong with it. */
export function parseResponse(line: string): ResponseFrame | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'a response line is not valid JSON';
  }
  if (!isObject(v)) return 'a response is not a JSON object';
  const id = v.id;
  if (id !== null && !isId(id)) return 'a response has no usable id';
  switch (v.status) {
    case 'processing':
      return { id, status: 'processing', message: typeof v.message === 'string' ? v.message : '' };
    case 'ok':
      return { id, status: 'ok', result: v.result ?? null };
    case 'error': {
      const e = isObject(v.error) ? v.error : {};
      const issues = Array.isArray(e.issues)
        ? e.issues
            .filter(isObject)
            .map((i) => ({ path: String(i.path ?? ''), reason: String(i.reason ?? '') }))
        : [];
      return {
        id,
        status: 'error',
        error: {
          code: typeof e.code === 'string' ? e.code : 'KKH_UNKNOWN',
          message:
            typeof e.message === 'string' ? e.message : 'the proxy answered an error without a message',
          issues,
        },
      };
    }
    case 'event':
      if (id === null) return 'an event frame has no id';
      if (!isObject(v.event) || typeof v.event.type !== 'string') return 'an event frame has no event.type';
      return { id, status: 'event', event: v.event as { type: string } };
    default:
      return `a response has an unknown status ${JSON.stringify(v.status)}`;
  }
}
