// The state file: the whole running state saved as puts in the change
// vocabulary, so a restart resumes what connectors and ctl added. Written to a
// temporary file, synced and renamed, so a crash leaves the old file or the new.
// A saved state comes back through one function, mergeSavedState, whether a
// restart resumes it or `load_state` replaces the running state with it.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type FieldIssue, formatIssue, KakehiError } from '../errors.js';
import { type Change, changeTarget, parseChanges } from './change.js';
import { diffStatesWithSources, stateAsChanges } from './diff.js';
import { type ProxyState, sourceKey } from './proxy-state.js';
import { applyChanges, buildState, type SourcedChange, sourceProblem } from './transaction.js';

export const STATE_FILE_VERSION = 1;
const MAX_STATE_FILE_BYTES = 512 * 1024 * 1024;

/** Every object of a state as a put, parents first, with the source that put it (if recorded). */
export function sourcedPuts(state: ProxyState): { change: Change; source: string | undefined }[] {
  return stateAsChanges(state).map((change) => {
    const { kind, key } = changeTarget(change);
    return { change, source: state.sources.get(sourceKey(kind, key)) };
  });
}

/** What mergeSavedState gives: the merged state, the sourced changes from base to it, and what did not fit. */
export interface MergedState {
  state: ProxyState;
  changes: SourcedChange[];
  dropped: { change: Change; issues: FieldIssue[] }[];
}

/**
 * The one way a saved state comes back onto a running one.
 * - `replace` (`load_state`): the result is exactly the saved state, every object
 *   with the source the file recorded; `changes` are the one transaction to get there.
 * - `resume` (a restart): objects the configuration owns stay as `base` (the config
 *   just read) has them; every other saved object is put over it with its own source,
 *   one at a time so that one which no longer fits the configuration is dropped
 *   (and reported) instead of losing the rest.
 */
export function mergeSavedState(
  base: ProxyState,
  saved: ProxyState,
  mode: 'replace' | 'resume',
): MergedState {
  if (mode === 'replace') return { state: saved, changes: diffStatesWithSources(base, saved), dropped: [] };
  let state = base;
  const changes: SourcedChange[] = [];
  const dropped: MergedState['dropped'] = [];
  for (const { change, source = 'runtime' } of sourcedPuts(saved)) {
    if (source === 'config') continue;
    const r = applyChanges(state, [change], source);
    if (!r.ok) {
      dropped.push({ change, issues: r.issues });
      continue;
    }
    state = r.state;
    changes.push({ change, source });
  }
  return { state, changes, dropped };
}

export function saveStateFile(path: string, state: ProxyState, generation: number): void {
  const changes = sourcedPuts(state).map(({ change, source }) => ({ ...change, source }));
  // One change per line: a diff between two saves shows what changed.
  const body = `{"kakehi_state":${STATE_FILE_VERSION},"generation":${generation},"changes":[\n${changes
    .map((c) => JSON.stringify(c))
    .join(',\n')}\n]}\n`;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    writeSync(fd, body);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    syncDir(dirname(path));
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new KakehiError('KKH_STATE_FILE_UNREADABLE', `cannot write ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

// The rename is durable only once the directory entry is synced.
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function loadStateFile(path: string): { state: ProxyState; generation: number } {
  let raw: unknown;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_STATE_FILE_BYTES) {
      throw new Error(`it is ${buf.length} bytes; the limit is ${MAX_STATE_FILE_BYTES}`);
    }
    raw = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new KakehiError('KKH_STATE_FILE_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const file = raw as { kakehi_state?: unknown; generation?: unknown; changes?: unknown };
  if (typeof raw !== 'object' || raw === null || file.kakehi_state !== STATE_FILE_VERSION) {
    throw new KakehiError(
      'KKH_STATE_FILE_UNREADABLE',
      `${path} is not a kakehi state file of version ${STATE_FILE_VERSION} (no "kakehi_state": ${STATE_FILE_VERSION})`,
    );
  }
  const issues: FieldIssue[] = [];
  for (const k of Object.keys(file)) {
    if (!['kakehi_state', 'generation', 'changes'].includes(k)) {
      issues.push({ path: k, reason: 'unknown key; expected one of kakehi_state, generation, changes' });
    }
  }
  const generation = file.generation;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) {
    issues.push({ path: 'generation', reason: 'expected a whole number of at least 0' });
  }
  const entries = sourcedEntries(file.changes, issues);
  if (issues.length === 0) {
    const result = buildState(entries);
    if (result.ok) return { state: result.state, generation: generation as number };
    issues.push(...result.issues);
  }
  throw new KakehiError(
    'KKH_STATE_FILE_INVALID',
    `${path} has ${issues.length} error${issues.length === 1 ? '' : 's'}; nothing was loaded:\n${issues.map(formatIssue).join('\n')}`,
    { issues },
  );
}

/** Splits each entry's source from its change and validates both. */
function sourcedEntries(raw: unknown, issues: FieldIssue[]): SourcedChange[] {
  if (!Array.isArray(raw)) {
    issues.push({ path: 'changes', reason: 'expected a list of changes' });
    return [];
  }
  const sources: unknown[] = [];
  const bare = raw.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return entry;
    const { source, ...change } = entry as Record<string, unknown>;
    const problem = sourceProblem(source);
    if (problem !== undefined) issues.push({ path: `changes[${i}].source`, reason: problem });
    sources[i] = source;
    return change;
  });
  const parsed = parseChanges(bare, 'changes');
  if ('issues' in parsed) {
    issues.push(...parsed.issues);
    return [];
  }
  return parsed.changes.map((change: Change, i) => ({ change, source: sources[i] as string }));
}
