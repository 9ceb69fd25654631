// Where the command socket is when nothing names it. One rule for `kakehi run`,
// `kakehi ctl` and every connector, so that each finds the socket the proxy
// opened without being told (docs/operations.md, "Command socket").

import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const SOCKET_NAME = 'kakehi.sock';
/** The system-wide place, used when it exists and is ours to write (packaged installs). */
export const SYSTEM_SOCKET_DIR = '/run/kakehi';

/**
 * `listen`: the proxy, which must create the file. `connect`: a client, which
 * only needs to reach it: a connector running as another user may be in the
 * socket's group without write access to the directory, so an existing socket
 * there counts as well.
 */
export type SocketRole = 'listen' | 'connect';

export function defaultCommandSocket(
  role: SocketRole,
  env: NodeJS.ProcessEnv = process.env,
  systemDir: string = SYSTEM_SOCKET_DIR,
): string {
  // systemd's RuntimeDirectory= sets it (colon-separated when it names several).
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  if (runtime) return join(runtime, SOCKET_NAME);
  if (writableDir(systemDir)) return join(systemDir, SOCKET_NAME);
  if (role === 'connect' && isSocket(join(systemDir, SOCKET_NAME))) return join(systemDir, SOCKET_NAME);
  return `./${SOCKET_NAME}`; // the quick start, in the working directory
}

/** Where a client (ctl, a connector) dials when no flag or key names the socket. */
export function clientSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KAKEHI_SOCKET || defaultCommandSocket('connect', env);
}

/** The default in words, for help texts and docs. */
export const DEFAULT_SOCKET_TEXT = `$RUNTIME_DIRECTORY/${SOCKET_NAME}, else ${SYSTEM_SOCKET_DIR}/${SOCKET_NAME} when that directory is writable, else ./${SOCKET_NAME}`;

function writableDir(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory()) return false;
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isSocket(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isSocket();
  } catch {
    return false;
  }
}
