// Which files in a watched directory make a certificate/key pair. Pure: it looks
// at a listing of relative paths, never at file contents. Four layouts, checked in
// this order per directory, each file used by at most one pair:
//   certbot   <dir>/fullchain.pem + privkey.pem (or cert.pem [+ chain.pem] + privkey.pem)
//   sozu      <name>/<name>.crt + <name>.key
//   flat      <x>.crt + <x>.key, or <x>.pem + <x>.key
//   combined  a lone <x>.pem holding certificate(s) and key; only its contents can tell
// certbot's own bookkeeping next to live/ (archive/, keys/, accounts/, …) is skipped:
// archive/ is reached through live/'s symlinks, and keys/ holds keys without
// certificates.

import { posix } from 'node:path';

export type Layout = 'certbot' | 'sozu' | 'flat' | 'combined';

export interface PairFiles {
  /** Stable identity: the certificate file's path relative to the watched root. */
  id: string;
  layout: Layout;
  /** Relative paths; for `combined`, key === certificate. */
  certificate: string;
  key: string;
  /** certbot's chain.pem, when the leaf comes from cert.pem instead of fullchain.pem. */
  chain?: string;
  /** A short human label: the directory or base name. */
  label: string;
}

export interface Discovery {
  pairs: PairFiles[];
  /** Files that look like certificate material but found no partner (shown in status). */
  unpaired: string[];
}

/** certbot's working directories that sit next to live/ and never hold a served pair. */
export const CERTBOT_INTERNAL = new Set(['archive', 'keys', 'csr', 'accounts', 'renewal', 'renewal-hooks']);

const CERTBOT_FILES = new Set(['fullchain.pem', 'privkey.pem', 'cert.pem', 'chain.pem']);

/** True for a path that the walker should not descend into or list. */
export function isSkippedPath(rel: string, siblingsOf: (dir: string) => ReadonlySet<string>): boolean {
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part.startsWith('.')) return true;
    if (CERTBOT_INTERNAL.has(part)) {
      const parent = parts.slice(0, i).join('/');
      if (siblingsOf(parent).has('live')) return true;
    }
  }
  return false;
}

/**
 * Pairs from a listing of files (relative POSIX paths, symlinks already resolved to
 * "is a file"). The result is sorted by id so that equal listings give equal output.
 */
export function discoverPairs(files: readonly string[]): Discovery {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = posix.dirname(f);
    const key = dir === '.' ? '' : dir;
    let set = byDir.get(key);
    if (!set) {
      set = new Set();
      byDir.set(key, set);
    }
    set.add(posix.basename(f));
  }
  const siblings = (dir: string): ReadonlySet<string> => {
    const out = new Set<string>();
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const d of byDir.keys()) {
      if (d.startsWith(prefix) && d.length > prefix.length) {
        const child = d.slice(prefix.length).split('/')[0];
        if (child) out.add(child);
      }
    }
    return out;
  };

  const pairs: PairFiles[] = [];
  const unpaired: string[] = [];
  for (const [dir, names] of byDir) {
    if (dir !== '' && isSkippedPath(dir, siblings)) continue;
    const join = (n: string) => (dir === '' ? n : `${dir}/${n}`);
    const used = new Set<string>();
    const label = dir === '' ? '' : posix.basename(dir);

    if (names.has('privkey.pem') && (names.has('fullchain.pem') || names.has('cert.pem'))) {
      const full = names.has('fullchain.pem');
      const pair: PairFiles = {
        id: join(full ? 'fullchain.pem' : 'cert.pem'),
        layout: 'certbot',
        certificate: join(full ? 'fullchain.pem' : 'cert.pem'),
        key: join('privkey.pem'),
        label: label || 'certbot',
      };
      if (!full && names.has('chain.pem')) pair.chain = join('chain.pem');
      pairs.push(pair);
      for (const n of CERTBOT_FILES) if (names.has(n)) used.add(n);
    }

    for (const n of [...names].sort()) {
      if (!n.endsWith('.key') || used.has(n) || n.startsWith('.')) continue;
      const stem = n.slice(0, -'.key'.length);
      const cert = names.has(`${stem}.crt`) ? `${stem}.crt` : names.has(`${stem}.pem`) ? `${stem}.pem` : '';
      if (cert === '' || used.has(cert)) continue;
      pairs.push({
        id: join(cert),
        layout: stem === label && cert.endsWith('.crt') ? 'sozu' : 'flat',
        certificate: join(cert),
        key: join(n),
        label: stem,
      });
      used.add(n);
      used.add(cert);
    }

    for (const n of [...names].sort()) {
      if (used.has(n) || n.startsWith('.')) continue;
      if (n.endsWith('.pem') && !CERTBOT_FILES.has(n)) {
        pairs.push({
          id: join(n),
          layout: 'combined',
          certificate: join(n),
          key: join(n),
          label: n.slice(0, -'.pem'.length),
        });
      } else if (n.endsWith('.crt') || n.endsWith('.key') || CERTBOT_FILES.has(n)) {
        unpaired.push(join(n));
      }
    }
  }
  pairs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  unpaired.sort();
  return { pairs, unpaired };
}
