// The I/O half of discovery: walk a watched directory (following symlinks, as
// certbot's live/ is made of them), list its files, pair them (layouts.ts), and take
// a signature of each pair's files so that a change — an in-place write, an atomic
// rename, a symlink swapped to a new archive file — is seen without reading them.

import { type Stats, stat as statCallback } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { discoverPairs, isSkippedPath, type PairFiles } from './layouts.js';

/** Deeper than certbot's <config>/live/<name>/ needs; a bound against odd trees. */
export const MAX_DEPTH = 6;

export interface ScannedPair extends PairFiles {
  /** The watched root this pair was found under (absolute). */
  root: string;
  /** Absolute id: root + relative id; what everything else keys pairs by. */
  pairKey: string;
  /** Changes whenever any of its files' target, size or mtime changes; '' if a stat failed. */
  signature: string;
  /** The newest mtime of its files (ms), or 0 when a stat failed. */
  modifiedAt: number;
}

export interface RootScan {
  root: string;
  pairs: ScannedPair[];
  unpaired: string[];
  /** Why the root could not be listed (missing, permission), if so. */
  error?: string;
  /** True when maxEntries stopped the walk early. */
  truncated: boolean;
  /** Subdirectories (relative) that could not be listed this time: their pairs are unknown, not gone. */
  unlistable: string[];
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** Lists files under root (relative POSIX paths), following symlinks, skipping cycles. */
export async function listFiles(
  root: string,
  maxEntries: number,
): Promise<{ files: string[]; error?: string; truncated: boolean; unlistable: string[] }> {
  const files: string[] = [];
  const unlistable: string[] = [];
  const seenDirs = new Set<string>();
  const childrenOf = new Map<string, Set<string>>();
  let truncated = false;
  try {
    seenDirs.add(await realpath(root));
  } catch (err) {
    return { files, error: errorText(err), truncated, unlistable };
  }
  const walk = async (rel: string, depth: number): Promise<string | undefined> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(rel === '' ? root : join(root, rel), { withFileTypes: true });
    } catch (err) {
      return errorText(err);
    }
    childrenOf.set(rel, new Set(entries.map((e) => e.name)));
    for (const e of entries) {
      if (files.length >= maxEntries) {
        truncated = true;
        return undefined;
      }
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (isSkippedPath(childRel, (d) => childrenOf.get(d) ?? new Set())) continue;
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        const s = await statOrUndefined(join(root, childRel));
        isDir = s?.isDirectory() ?? false;
        // A dangling link still counts as a file: its pair exists, its contents are
        // unreadable for now (certbot mid-swap), which must not read as "deleted".
        isFile = s ? s.isFile() : true;
      }
      if (isFile) files.push(childRel);
      else if (isDir && depth < MAX_DEPTH) {
        let real: string;
        try {
          real = await realpath(join(root, childRel));
        } catch {
          continue;
        }
        if (seenDirs.has(real)) continue;
        seenDirs.add(real);
        const failed = await walk(childRel, depth + 1);
        if (failed !== undefined && failed !== 'ENOENT') unlistable.push(childRel);
      }
    }
    return undefined;
  };
  const error = await walk('', 0);
  return error === undefined ? { files, truncated, unlistable } : { files, error, truncated, unlistable };
}

/**
 * The signature a scan would give the pair now. Its files are stat'ed at once with
 * the callback API, one promise per pair: the periodic check runs this over every
 * known pair, and a promise per stat cost it three times the CPU (measured with
 * bench/pki-idle.ts).
 */
export function signatureOf(
  root: string,
  pair: PairFiles,
): Promise<{ signature: string; modifiedAt: number }> {
  const paths: string[] = [pair.certificate];
  if (pair.key !== pair.certificate) paths.push(pair.key);
  if (pair.chain !== undefined) paths.push(pair.chain);
  return new Promise((resolve) => {
    const stats: (Stats | undefined)[] = [];
    let left = paths.length;
    paths.forEach((p, i) => {
      statCallback(join(root, p), (err, s) => {
        stats[i] = err ? undefined : s;
        if (--left > 0) return;
        const parts: string[] = [];
        let modifiedAt = 0;
        for (const st of stats) {
          if (!st) return resolve({ signature: '', modifiedAt: 0 });
          parts.push(`${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`);
          modifiedAt = Math.max(modifiedAt, st.mtimeMs, st.ctimeMs);
        }
        resolve({ signature: parts.join('|'), modifiedAt });
      });
    });
  });
}

export async function scanRoot(root: string, maxEntries: number): Promise<RootScan> {
  const listed = await listFiles(root, maxEntries);
  const found = discoverPairs(listed.files);
  const pairs: ScannedPair[] = [];
  // Stat in small parallel batches: fast on a thousand pairs, bounded in open handles.
  const BATCH = 64;
  for (let i = 0; i < found.pairs.length; i += BATCH) {
    const batch = found.pairs.slice(i, i + BATCH);
    const sigs = await Promise.all(batch.map((p) => signatureOf(root, p)));
    batch.forEach((p, j) => {
      const sig = sigs[j] as { signature: string; modifiedAt: number };
      pairs.push({ ...p, root, pairKey: join(root, p.id), ...sig });
    });
  }
  const out: RootScan = {
    root,
    pairs,
    unpaired: found.unpaired,
    truncated: listed.truncated,
    unlistable: listed.unlistable,
  };
  if (listed.error !== undefined) out.error = listed.error;
  return out;
}

export function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(err);
}
