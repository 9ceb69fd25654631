// What `kakehi run` needs from the machine beyond a well-formed file: the
// directories of the command socket, access log and state file, and the
// socket's group. `kakehi validate` and `kakehi run` both ask here, so a file
// that validates does not then fail at start on a path. Nothing is created.

import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { FieldIssue } from '../errors.js';
import type { Settings } from './load-config.js';

const ACCESS_LOG_STREAMS = new Set(['stdout', 'stderr', 'off']);

/** Every problem found, each named by its key; empty when `run` can open them all. */
export function checkRunPaths(s: Settings): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const add = (path: string, reason: string | undefined) => {
    if (reason !== undefined) issues.push({ path, reason });
  };
  add('command_socket', directoryProblem(s.commandSocket));
  if (s.commandSocketGroup !== undefined && groupId(s.commandSocketGroup) === undefined) {
    add(
      'command_socket_group',
      `no group named "${s.commandSocketGroup}" on this machine; give an existing group name or a numeric gid`,
    );
  }
  if (!ACCESS_LOG_STREAMS.has(s.accessLog)) add('access_log', fileProblem(s.accessLog, 'append to'));
  if (s.stateFile !== undefined) add('state_file', fileProblem(s.stateFile, 'read and replace'));
  return issues;
}

/** A gid for a group name or number, or undefined when no such group exists. */
export function groupId(group: string): number | undefined {
  if (/^\d+$/.test(group)) return Number(group);
  // getent asks NSS (LDAP, sssd…) as well as /etc/group; /etc/group alone where getent is missing.
  try {
    const line = execFileSync('getent', ['group', group], { encoding: 'utf8', timeout: 5_000 });
    return gidOf(line, group);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined; // exit 2: no such group
  }
  try {
    return gidOf(readFileSync('/etc/group', 'utf8'), group);
  } catch {
    return undefined;
  }
}

function gidOf(groupLines: string, name: string): number | undefined {
  for (const line of groupLines.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** Why a new file cannot be made at `path`, or undefined when it can. */
function directoryProblem(path: string): string | undefined {
  const dir = dirname(resolve(path));
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return `the directory ${dir} does not exist; create it (kakehi does not) or choose another path`;
  }
  if (!isDir) return `${dir} is not a directory; choose another path`;
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    return `the directory ${dir} is not writable by ${whoAmI()}; grant it or choose another path`;
  }
  return undefined;
}

/** An existing file must be usable as is; a new one needs its directory. */
function fileProblem(path: string, use: 'append to' | 'read and replace'): string | undefined {
  let exists: boolean;
  try {
    const st = statSync(path);
    if (st.isDirectory()) return `${path} is a directory; name a file`;
    exists = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return `cannot use ${path} (${code}); choose another path`;
    exists = false;
  }
  if (!exists) return directoryProblem(path);
  const mode = use === 'append to' ? constants.W_OK : constants.R_OK | constants.W_OK;
  try {
    accessSync(path, mode);
  } catch {
    return `${whoAmI()} cannot ${use} ${path}; fix its owner or mode, or choose another path`;
  }
  // The state file is saved by writing a temporary file beside it and renaming it.
  return use === 'read and replace' ? directoryProblem(path) : undefined;
}

function whoAmI(): string {
  return `uid ${process.getuid?.() ?? '?'}`;
}
