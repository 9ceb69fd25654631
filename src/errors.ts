// Every error kakehi reports to an operator or a client. Codes are stable
// (scripts match on them), never reused, and listed in docs/errors.md; a test
// keeps that list and this one in step.

export const ERROR_CODES = {
  KKH_CONFIG_INVALID: 'the configuration has one or more invalid fields',
  KKH_CONFIG_UNREADABLE: 'the configuration file could not be read or parsed',
  KKH_LISTEN_FAILED: 'a listener could not bind its address',
  KKH_ROUTER_RULE_INVALID: 'a hostname, path or method rule cannot be built (src/router)',
  KKH_STATE_FILE_UNREADABLE: 'the state file could not be read, parsed or written',
  KKH_STATE_FILE_INVALID: 'the state file has invalid or dangling changes',
  KKH_FRAME_TOO_LARGE: 'a command-socket frame is over the size limit (4 MiB); the connection closes',
  KKH_REQUEST_INVALID_JSON: 'a command-socket line is not valid JSON (or not a JSON object)',
  KKH_REQUEST_INVALID: 'a command request lacks a usable id or type, or its body is not an object',
  KKH_REQUEST_UNKNOWN_TYPE: 'a command request names a type the proxy does not know',
  KKH_SOCKET_IN_USE: 'the command socket path is held by a live kakehi (or is not a socket)',
  KKH_CHANGE_INVALID: 'a change or transaction was refused as a whole; nothing changed',
  KKH_CHANGE_FAILED:
    'a worker could not apply a change (e.g. a listener cannot bind); it was rolled back everywhere',
  KKH_GENERATION_MISMATCH: 'expect_generation does not match the current generation; nothing changed',
  KKH_UPGRADE_FAILED:
    'ctl upgrade --main: the new main did not start or take over in time; it was stopped and the old main serves on',
  KKH_OBJECT_NOT_FOUND: 'a remove names an object that does not exist (and no if_exists); nothing changed',
  KKH_INTERNAL: 'an unexpected failure inside kakehi while answering a command (a bug: please report it)',
  KKH_START_FAILED:
    'kakehi run could not start: a path, group or worker it needs is unusable; the key at fault is named',
  KKH_CONSOLE_UNAUTHORIZED:
    'the web console was called without a live session, or a login gave an unknown token',
  KKH_CONSOLE_FORBIDDEN:
    'the web console refused a request: read-only session, missing CSRF token, other origin or host',
  KKH_CONSOLE_RATE_LIMITED: 'too many web console logins from one address; wait and try again',
  KKH_CONSOLE_NOT_FOUND: 'the web console has no page or API at that path',
  KKH_CONSOLE_BUSY: 'the web console has too many open event streams',
  KKH_CONSOLE_PROXY_UNREACHABLE: 'the web console could not reach the proxy over the command socket',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem found in input, named by where it is. */
export interface FieldIssue {
  /** Where, as an operator would write it: `frontends[3].hostname`. */
  path: string;
  reason: string;
}

export class KakehiError extends Error {
  readonly code: ErrorCode;
  readonly issues: readonly FieldIssue[];

  constructor(code: ErrorCode, message: string, options: { issues?: FieldIssue[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KakehiError';
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

export function formatIssue(issue: FieldIssue): string {
  return issue.path === '' ? issue.reason : `${issue.path}: ${issue.reason}`;
}
