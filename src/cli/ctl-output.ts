// How `kakehi ctl` shows answers to a human: aligned tables for lists, `key: value`
// lines for single objects, and errors with every issue's path. Pure functions
// returning strings, so the formats are testable without a socket.

import type { FieldIssue } from '../errors.js';

type Row = Record<string, unknown>;

function isRow(v: unknown): v is Row {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isRow(v) && Object.keys(v).length === 0) return '-';
  return JSON.stringify(v);
}

/**
 * An aligned table. `preferred` columns come first, in that order, when any row
 * has them; other keys follow unless `only` is set, so a field a newer proxy
 * adds still shows.
 */
export function table(rows: readonly unknown[], preferred: readonly string[] = [], only = false): string {
  const objects = rows.filter(isRow);
  if (objects.length === 0) return '(none)\n';
  const present = new Set(objects.flatMap((r) => Object.keys(r)));
  const columns = preferred.filter((c) => present.has(c));
  if (!only || columns.length === 0) for (const k of present) if (!columns.includes(k)) columns.push(k);
  const cells = objects.map((r) => columns.map((c) => cell(r[c])));
  const header = columns.map((c) => c.toUpperCase());
  const widths = columns.map((_, i) => Math.max(header[i]!.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...cells.map(line)].join('\n') + '\n';
}

/** `key: value` lines, aligned; nested lists become tables under their key. */
export function keyValues(obj: Row): string {
  const scalars = Object.entries(obj).filter(([, v]) => !Array.isArray(v));
  const width = Math.max(0, ...scalars.map(([k]) => k.length));
  let out = scalars.map(([k, v]) => `${(k + ':').padEnd(width + 2)}${cell(v)}`).join('\n');
  if (out !== '') out += '\n';
  for (const [k, v] of Object.entries(obj)) {
    if (Array.isArray(v)) out += `\n${k}:\n${table(v)}`;
  }
  return out;
}

/** A change's answer: what was applied at which generation, or a dry run's diff. */
export function changeResult(result: unknown): string {
  if (!isRow(result)) return `${cell(result)}\n`;
  if (result.dry_run === true) {
    const diff = Array.isArray(result.diff) ? result.diff : [];
    const head = `dry run at generation ${cell(result.generation)}: ${diff.length} change(s) would apply, nothing changed\n`;
    return diff.length === 0 ? head : head + table(diff, ['op', 'key', 'effect']);
  }
  const applied = Array.isArray(result.applied) ? result.applied : [];
  const live = result.live_ms === undefined ? '' : `, live in every worker after ${cell(result.live_ms)} ms`;
  const head = `generation ${cell(result.generation)}${live}\n`;
  return (
    (applied.length === 0 ? head : head + table(applied, ['op', 'key', 'effect'])) + shadowedLines(result)
  );
}

/** A reload's file objects held by another source: the reload left them alone, so say which. */
function shadowedLines(result: Row): string {
  const shadowed = Array.isArray(result.shadowed) ? result.shadowed.filter(isRow) : [];
  if (shadowed.length === 0) return '';
  const rows = shadowed.map((s) => ({
    kind: s.kind,
    key: s.key,
    held_by: s.held_by,
    file_wants: s.differs === true ? (s.file_wants ?? 'another version') : 'the same',
  }));
  return (
    `\n${shadowed.length} object(s) of the file are held by another source and did not follow it` +
    ` (remove them there to give them back to the file):\n${table(rows, ['kind', 'key', 'held_by', 'file_wants'])}`
  );
}

/** Whether an answer looks like a change's answer (reload and load_state give one too). */
export function isChangeResult(result: unknown): boolean {
  return isRow(result) && (result.dry_run === true || Array.isArray(result.applied));
}

export function issueLines(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `  ${i.path === '' ? '' : `${i.path}: `}${i.reason}\n`).join('');
}

/** One event as a line: time, type, then its fields as key=value. */
export function eventLine(ev: Row, now = new Date()): string {
  const fields = Object.entries(ev)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k}=${cell(v)}`);
  return [now.toISOString(), String(ev.type), ...fields].join(' ') + '\n';
}

/**
 * `ctl listeners`: where each listener's connections go comes first (a tcp or
 * tls listener's cluster, a passthrough listener's server names as
 * name=cluster pairs), then the rest of its settings.
 */
export function listenersTable(result: unknown): string {
  const rows = isRow(result) && Array.isArray(result.listeners) ? result.listeners.filter(isRow) : [];
  const shown = rows.map((l) =>
    isRow(l.sni_clusters)
      ? {
          ...l,
          sni_clusters: Object.entries(l.sni_clusters)
            .map(([name, cluster]) => `${name}=${cell(cluster)}`)
            .join(','),
        }
      : l,
  );
  return table(shown, ['address', 'port', 'protocol', 'cluster', 'sni_clusters', 'source', 'expect_proxy']);
}
