// Reading one pair's files into a certificate the proxy can take, or a reason it
// can't yet. The distinction that matters is between "not finished" (a file being
// written, briefly missing or unreadable: wait, keep serving the old one) and
// "finished but wrong" (key does not match, expired: report, keep serving the old one).

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { type CertificateFacts, inspectCertificate } from '../../src/certificate/inspect.js';
import { splitPem } from '../../src/certificate/pem.js';
import type { PairFiles } from './layouts.js';
import { errorText } from './scan.js';

/** Larger than any real certificate bundle; a bound on what one pair can make us hold. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** What src/tls says of a certificate: the connector keeps the same facts. */
export type CertFacts = CertificateFacts;

export interface GoodCert {
  facts: CertFacts;
  /** What goes into put_certificate (leaf, chain, key: normalized PEM blocks). */
  certificate: string;
  chain: string;
  key: string;
  /** sha256 over certificate, chain and key: a chain or key change with the same leaf shows here. */
  materialHash: string;
}

export type Reading =
  | { kind: 'ok'; cert: GoodCert }
  /** Not finished: retry later, never remove. */
  | { kind: 'incomplete'; reason: string }
  | { kind: 'unreadable'; reason: string }
  /** Finished and wrong: report; the previous good certificate keeps serving. */
  | { kind: 'invalid'; reason: string; issues: { path: string; reason: string }[] }
  /** Not a pair after all: a lone .pem without a private key (a CA bundle, a chain). */
  | { kind: 'ignored'; reason: string };

async function readBounded(path: string): Promise<{ text: string } | { error: string; tooLarge?: boolean }> {
  let fh: import('node:fs/promises').FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) return { error: 'not a regular file' };
    if (st.size > MAX_FILE_BYTES) return { error: `larger than ${MAX_FILE_BYTES} bytes`, tooLarge: true };
    const buf = Buffer.alloc(Math.min(st.size + 1, MAX_FILE_BYTES + 1));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_FILE_BYTES) return { error: `larger than ${MAX_FILE_BYTES} bytes`, tooLarge: true };
    return { text: buf.subarray(0, bytesRead).toString('utf8') };
  } catch (err) {
    return { error: errorText(err) };
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Whether a file's text is finished: at least one block, and no block cut short. */
function completeness(text: string, file: string): string | undefined {
  const { blocks, incomplete } = splitPem(text);
  if (incomplete) return `${file}: a PEM block is cut short (still being written?)`;
  if (blocks.length === 0) return `${file}: no PEM block yet (empty or still being written?)`;
  return undefined;
}

export async function readPair(root: string, pair: PairFiles): Promise<Reading> {
  const files = [pair.certificate, ...(pair.key !== pair.certificate ? [pair.key] : []), pair.chain].filter(
    (f): f is string => f !== undefined,
  );
  const texts = new Map<string, string>();
  for (const f of files) {
    const r = await readBounded(join(root, f));
    if ('error' in r) {
      if (r.tooLarge) return { kind: 'invalid', reason: `${f}: ${r.error}`, issues: [] };
      return { kind: 'unreadable', reason: `${f}: ${r.error}` };
    }
    const notDone = completeness(r.text, f);
    if (notDone) return { kind: 'incomplete', reason: notDone };
    texts.set(f, r.text);
  }
  const certText = texts.get(pair.certificate) as string;
  const keyText = texts.get(pair.key) as string;
  let certificate = certText;
  if (pair.layout === 'combined') {
    // One file: certificates in order, the key wherever it is.
    const blocks = splitPem(certText).blocks;
    if (!blocks.some((b) => b.type.endsWith('PRIVATE KEY'))) {
      return {
        kind: 'ignored',
        reason: `${pair.certificate}: no private key in this PEM, so not a pair (a combined file needs certificate and key; or add ${pair.label}.key)`,
      };
    }
    certificate = blocks
      .filter((b) => b.type === 'CERTIFICATE')
      .map((b) => b.pem)
      .join('');
  }
  const input: { certificate: string; key: string; chain?: string } = { certificate, key: keyText };
  if (pair.chain !== undefined) input.chain = texts.get(pair.chain) as string;
  // Judged at the current time (the default), so an expired or not-yet-valid leaf is invalid.
  const res = inspectCertificate(input);
  if (!res.ok) {
    return {
      kind: 'invalid',
      reason: res.issues.map((i) => `${i.path}: ${i.reason}`).join('; '),
      issues: res.issues.map((i) => ({ path: i.path, reason: i.reason })),
    };
  }
  const { facts, leafPem, chainPems, keyPem } = res.cert;
  const chain = chainPems.join('');
  const materialHash = createHash('sha256')
    .update(leafPem)
    .update('\0')
    .update(chain)
    .update('\0')
    .update(keyPem)
    .digest('hex');
  return {
    kind: 'ok',
    cert: {
      facts,
      certificate: leafPem,
      chain,
      key: keyPem,
      materialHash,
    },
  };
}
