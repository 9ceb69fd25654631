// The console's JSON API as the page calls it: the session's CSRF token rides on
// every change; an answer that is not ok throws ApiError with the proxy's code
// and issue paths.

let csrf;

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? 'KKH_UNKNOWN';
    this.issues = error?.issues ?? [];
  }
}

export function setCsrf(token) {
  csrf = token;
}

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf !== undefined) headers['x-kakehi-csrf'] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.error);
  return data;
}

export const api = {
  session: () => call('GET', '/api/session'),
  login: (token) => call('POST', '/api/login', { token }),
  logout: () => call('POST', '/api/logout', {}),
  /** One query of the command protocol by its request type. */
  query: (type, params = {}) => {
    const q = new URLSearchParams(params).toString();
    return call('GET', `/api/q/${type}${q ? `?${q}` : ''}`);
  },
  transaction: (body) => call('POST', '/api/transaction', body),
  backendState: (cluster, backend, state) => call('POST', '/api/backend-state', { cluster, backend, state }),
  exportChanges: () => call('GET', '/api/export'),
};
