// Why `kakehi run` could not start, as one line naming the configuration key at
// fault and what to do about it: the CLI prints it and exits 1, no stack. The
// failures come from different places (a path check, a worker's bind, the
// command socket) and are turned into this one type where they surface.

import { type ErrorCode, type FieldIssue, KakehiError } from '../errors.js';
import type { ProxyState } from '../state/proxy-state.js';

export class StartUpError extends KakehiError {
  /** The configuration key at fault (`command_socket`, `listeners[0].address`…). */
  readonly key: string;

  constructor(issues: FieldIssue[], options: { code?: ErrorCode; cause?: unknown } = {}) {
    // A reason may quote a system message; the line stays one line whatever it holds.
    const text = issues.map((i) => `${i.path}: ${i.reason.replace(/\s*\n\s*/g, ' ')}`).join('; ');
    super(options.code ?? 'KKH_START_FAILED', `cannot start: ${text}`, { issues, cause: options.cause });
    this.name = 'StartUpError';
    this.key = issues.map((i) => i.path).join(', ');
  }
}

/** The command socket could not be opened: missing directory, permission, a live kakehi. */
export function commandSocketError(path: string, err: unknown): StartUpError {
  if (err instanceof KakehiError) {
    return new StartUpError([{ path: 'command_socket', reason: err.message }], {
      code: err.code,
      cause: err,
    });
  }
  const e = err as NodeJS.ErrnoException;
  const fix =
    e.code === 'EACCES' || e.code === 'EPERM'
      ? 'make its directory writable by this user or set command_socket elsewhere'
      : e.code === 'ENOENT'
        ? 'create its directory or set command_socket elsewhere'
        : 'set command_socket elsewhere';
  return new StartUpError(
    [{ path: 'command_socket', reason: `cannot listen on ${path} (${e.code ?? e.message}); ${fix}` }],
    {
      cause: err,
    },
  );
}

/**
 * A worker could not serve the initial state. A listener that cannot bind is
 * named by its place among the configuration's listeners.
 */
export function workerStartError(err: unknown, configState: ProxyState, accessLog: string): StartUpError {
  const e = err as Error & { code?: string };
  if (e instanceof KakehiError && e.code === 'KKH_LISTEN_FAILED') {
    const listeners = [...configState.listeners.values()];
    const i = listeners.findIndex((l) => e.message.startsWith(`cannot listen on ${l.address}:`));
    const key = i < 0 ? 'listeners' : `listeners[${i}].address`;
    const fix = /EADDRINUSE/.test(e.message)
      ? 'stop what listens there or choose another address'
      : /EACCES/.test(e.message)
        ? 'use a port from 1024, or grant CAP_NET_BIND_SERVICE'
        : 'choose an address this machine has';
    return new StartUpError([{ path: key, reason: `${e.message}; ${fix}` }], { code: e.code, cause: err });
  }
  // The directory passed checkRunPaths, then changed (or a limit was hit) before the worker opened it.
  if (e.message.includes(`'${accessLog}'`)) {
    return new StartUpError([{ path: 'access_log', reason: `a worker cannot open it: ${e.message}` }], {
      cause: err,
    });
  }
  return new StartUpError(
    [{ path: 'workers', reason: `${e.message}; the log lines above say why the worker stopped` }],
    { cause: err },
  );
}
