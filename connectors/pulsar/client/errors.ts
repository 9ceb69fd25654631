// PulsarClientError: one error class with a stable `code` for every failure the
// client reports (broker ServerError names arrive in `serverError`).

export type PulsarErrorCode =
  | 'PULSAR_CONNECT_FAILED'
  | 'PULSAR_CONNECTION_CLOSED'
  | 'PULSAR_TIMEOUT'
  | 'PULSAR_AUTH_FAILED'
  | 'PULSAR_SERVER_ERROR'
  | 'PULSAR_LOOKUP_FAILED'
  | 'PULSAR_TOO_MANY_REDIRECTS'
  | 'PULSAR_PROTOCOL_ERROR'
  | 'PULSAR_QUEUE_FULL'
  | 'PULSAR_SEND_TIMEOUT'
  | 'PULSAR_MESSAGE_TOO_LARGE'
  | 'PULSAR_CLOSED'
  | 'PULSAR_UNSUPPORTED'
  | 'PULSAR_INVALID_ARGUMENT';

export class PulsarClientError extends Error {
  readonly code: PulsarErrorCode;
  readonly serverError: string | undefined;

  constructor(code: PulsarErrorCode, message: string, opts: { serverError?: string; cause?: unknown } = {}) {
    super(`${code}: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PulsarClientError';
    this.code = code;
    this.serverError = opts.serverError;
  }
}
