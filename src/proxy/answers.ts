// The responses kakehi writes itself (errors, deny, redirects): a short page
// carrying the request id, replaceable per listener and per cluster. Templates
// use %REQUEST_ID, %STATUS, %REASON and %MESSAGE, as Sōzu's answers do.

export const REASONS: Record<number, string> = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

const BUILT_IN = `<!doctype html>
<html><head><meta charset="utf-8"><title>%STATUS %REASON</title></head>
<body><h1>%STATUS %REASON</h1><p>%MESSAGE</p><p>Request id: %REQUEST_ID</p></body></html>
`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface AnswerOptions {
  status: number;
  requestId: string;
  message: string;
  /** Operator page replacing the built-in one. */
  template?: string | undefined;
  close: boolean;
  location?: string;
  /** A 401's WWW-Authenticate challenge. */
  authenticate?: string;
  /** 429 and 503: RFC 9110 §10.2.3, whole seconds the client should wait. */
  retryAfterS?: number;
  /** HEAD requests get the head only. */
  headOnly?: boolean;
}

export function answer(o: AnswerOptions): Buffer {
  const reason = REASONS[o.status] ?? 'Error';
  const body = Buffer.from(
    (o.template ?? BUILT_IN)
      .replaceAll('%REQUEST_ID', escapeHtml(o.requestId))
      .replaceAll('%STATUS', String(o.status))
      .replaceAll('%REASON', reason)
      .replaceAll('%MESSAGE', escapeHtml(o.message)),
    'utf8',
  );
  let head =
    `HTTP/1.1 ${o.status} ${reason}\r\n` +
    'Content-Type: text/html; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    'Cache-Control: no-store\r\n' +
    `X-Request-Id: ${o.requestId}\r\n`;
  if (o.location !== undefined) head += `Location: ${o.location}\r\n`;
  if (o.authenticate !== undefined) head += `WWW-Authenticate: ${o.authenticate}\r\n`;
  if (o.retryAfterS !== undefined) head += `Retry-After: ${o.retryAfterS}\r\n`;
  if (o.close) head += 'Connection: close\r\n';
  head += '\r\n';
  const headBuf = Buffer.from(head, 'latin1');
  return o.headOnly ? headBuf : Buffer.concat([headBuf, body]);
}
