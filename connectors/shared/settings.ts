// What every connector's settings share: the error that names the flag or key at
// fault (and whether it was a usage or a settings-file mistake, for the exit
// code), the checks of common values, and the reading of a YAML settings file.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { clientSocketPath, DEFAULT_SOCKET_TEXT } from '../../src/command/default-socket.js';
import { sourceProblem } from '../../src/state/transaction.js';

export type MistakeKind = 'usage' | 'config';

export class OptionsError extends Error {
  constructor(
    message: string,
    readonly kind: MistakeKind,
  ) {
    super(message);
  }
}

export const LOG_LEVELS: ReadonlySet<string> = new Set([
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
]);

export function int(what: string, v: unknown, min: number, max: number, kind: MistakeKind): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new OptionsError(`${what} ${JSON.stringify(v)}: expected an integer from ${min} to ${max}`, kind);
  }
  return n;
}

export function sourceName(what: string, v: unknown, kind: MistakeKind): string {
  const problem = sourceProblem(v);
  if (problem !== undefined) throw new OptionsError(`${what}: ${problem}`, kind);
  return v as string;
}

/** The proxy's command socket when no flag or settings key names it: the proxy's own default. */
export const defaultSocketPath = clientSocketPath;

export const SOCKET_DEFAULT_HELP = `$KAKEHI_SOCKET, else ${DEFAULT_SOCKET_TEXT}`;

export type ListenAddress = { host: string; port: number } | undefined;

export function listenAddr(what: string, v: unknown, kind: MistakeKind): ListenAddress {
  if (v === 'off' || v === false || v === null) return undefined;
  const m = typeof v === 'string' ? /^(.+):(\d+)$/.exec(v) : null;
  if (!m) throw new OptionsError(`${what} ${JSON.stringify(v)}: expected HOST:PORT or off`, kind);
  return {
    host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'),
    port: int(`${what} port`, m[2], 0, 65_535, kind),
  };
}

export function logLevel(what: string, v: unknown, kind: MistakeKind): string {
  if (typeof v !== 'string' || !LOG_LEVELS.has(v)) {
    throw new OptionsError(`${what} ${JSON.stringify(v)}: one of ${[...LOG_LEVELS].join(', ')}`, kind);
  }
  return v;
}

/** A YAML settings file as a map, refusing keys not in `known` by name. */
export function readSettingsFile(file: string, known: ReadonlySet<string>): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OptionsError(`${file}: ${(err as Error).message}`, 'config');
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new OptionsError(`${file}: expected a mapping of settings`, 'config');
  }
  for (const k of Object.keys(doc)) {
    if (!known.has(k)) {
      throw new OptionsError(`${file}: unknown key "${k}"; known: ${[...known].join(', ')}`, 'config');
    }
  }
  return doc as Record<string, unknown>;
}
