// The route topic's message format, version 1 (docs/pulsar.md): one message is
// one change of the change vocabulary, keyed by the object's kind and stable key
// so that topic compaction keeps the latest word on each object; a transaction is
// one message of several changes under a `transaction:` key; an empty payload is
// a tombstone. Decoding is pure and total: every message is either usable or
// rejected with a reason a metric label can carry and a detail a human can act on.

import type { FieldIssue } from '../../src/errors.js';
import { type Change, changeTarget, parseChange } from '../../src/state/change.js';

export const FORMAT_PROPERTY = 'kakehi-format';
export const FORMAT_VERSION = '1';
export const TRANSACTION_PREFIX = 'transaction:';
/** Changes in one transaction message; a whole state belongs in many messages, not one. */
export const MAX_TRANSACTION_CHANGES = 10_000;

/** Why a message was skipped; a fixed set, so it can label a metric. */
export type RejectReason =
  | 'no_key'
  | 'format_version'
  | 'not_json'
  | 'invalid_change'
  | 'key_mismatch'
  | 'certificates_refused'
  | 'too_many_objects'
  | 'refused_by_proxy';
export const REJECT_REASONS: readonly RejectReason[] = [
  'no_key',
  'format_version',
  'not_json',
  'invalid_change',
  'key_mismatch',
  'certificates_refused',
  'too_many_objects',
  'refused_by_proxy',
];

export type Decoded =
  | { type: 'changes'; key: string; changes: Change[]; transaction: boolean }
  | { type: 'tombstone'; key: string }
  | { type: 'rejected'; reason: RejectReason; detail: string };

/** What the decoder needs of a Pulsar message (the client's Message has more). */
export interface RawMessage {
  key: string | undefined;
  properties: Readonly<Record<string, string>>;
  payload: Uint8Array;
  isTombstone: boolean;
}

/** The message key of the object a change puts or deletes: `backend:app/b1`. */
export function objectKey(c: Change): string {
  const t = changeTarget(c);
  return `${t.kind}:${t.key}`;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function decodeMessage(m: RawMessage, opts: { certificates: boolean }): Decoded {
  if (m.key === undefined || m.key === '') {
    return {
      type: 'rejected',
      reason: 'no_key',
      detail:
        'the message has no key; compaction keeps unkeyed messages forever, so every message needs its object key',
    };
  }
  const version = m.properties[FORMAT_PROPERTY];
  // A tombstone has no payload to misread, and compaction tools send them bare.
  if (m.isTombstone) {
    if (version !== undefined && version !== FORMAT_VERSION) return wrongVersion(version);
    return { type: 'tombstone', key: m.key };
  }
  if (version === undefined) {
    return {
      type: 'rejected',
      reason: 'format_version',
      detail: `the message has no ${FORMAT_PROPERTY} property; set ${FORMAT_PROPERTY}: ${FORMAT_VERSION}`,
    };
  }
  if (version !== FORMAT_VERSION) return wrongVersion(version);
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(m.payload));
  } catch (err) {
    return {
      type: 'rejected',
      reason: 'not_json',
      detail: `the payload is not UTF-8 JSON: ${(err as Error).message}`,
    };
  }
  const issues: FieldIssue[] = [];
  const isTransaction = typeof body === 'object' && body !== null && 'changes' in body && !('op' in body);
  if (isTransaction) return decodeTransaction(m.key, body as { changes: unknown }, opts, issues);
  if (m.key.startsWith(TRANSACTION_PREFIX)) {
    return {
      type: 'rejected',
      reason: 'key_mismatch',
      detail: `key ${m.key} is a transaction key, but the payload is not {"changes": [...]}`,
    };
  }
  const change = parseChange(body, 'change', issues);
  if (change === undefined) return invalid(issues);
  const refused = certificateRefusal([change], opts);
  if (refused !== undefined) return refused;
  const want = objectKey(change);
  if (m.key !== want) {
    return {
      type: 'rejected',
      reason: 'key_mismatch',
      detail: `key ${m.key} does not name the object the change touches; its key is ${want}`,
    };
  }
  return { type: 'changes', key: m.key, changes: [change], transaction: false };
}

function decodeTransaction(
  key: string,
  body: { changes: unknown },
  opts: { certificates: boolean },
  issues: FieldIssue[],
): Decoded {
  if (!key.startsWith(TRANSACTION_PREFIX)) {
    return {
      type: 'rejected',
      reason: 'key_mismatch',
      detail: `a transaction's key must start with "${TRANSACTION_PREFIX}" (got ${key}), so it never shadows an object's own key`,
    };
  }
  const extra = Object.keys(body).filter((k) => k !== 'changes');
  if (extra.length > 0)
    issues.push({ path: extra[0]!, reason: 'unknown field; a transaction has only "changes"' });
  const raw = body.changes;
  if (!Array.isArray(raw) || raw.length === 0) {
    issues.push({ path: 'changes', reason: 'expected a non-empty list of changes' });
    return invalid(issues);
  }
  if (raw.length > MAX_TRANSACTION_CHANGES) {
    issues.push({
      path: 'changes',
      reason: `at most ${MAX_TRANSACTION_CHANGES} changes (got ${raw.length})`,
    });
    return invalid(issues);
  }
  const changes: Change[] = [];
  raw.forEach((item, i) => {
    const c = parseChange(item, `changes[${i}]`, issues);
    if (c !== undefined) changes.push(c);
  });
  if (issues.length > 0) return invalid(issues);
  return certificateRefusal(changes, opts) ?? { type: 'changes', key, changes, transaction: true };
}

function certificateRefusal(changes: Change[], opts: { certificates: boolean }): Decoded | undefined {
  if (opts.certificates || !changes.some((c) => c.op === 'put_certificate')) return undefined;
  return {
    type: 'rejected',
    reason: 'certificates_refused',
    detail: 'the message puts a certificate, and this connector runs with --no-certificates',
  };
}

function wrongVersion(version: string): Decoded {
  return {
    type: 'rejected',
    reason: 'format_version',
    detail: `${FORMAT_PROPERTY} is ${JSON.stringify(version)}; this connector reads version ${FORMAT_VERSION} only`,
  };
}

function invalid(issues: FieldIssue[]): Decoded {
  const detail = issues
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.reason}`)
    .join('; ');
  return { type: 'rejected', reason: 'invalid_change', detail: issues.length > 5 ? `${detail}; …` : detail };
}

/** The message that publishes one change: its key, JSON payload and format property. */
export function changeMessage(c: Change): {
  key: string;
  payload: string;
  properties: Record<string, string>;
} {
  return { key: objectKey(c), payload: JSON.stringify(c), properties: { [FORMAT_PROPERTY]: FORMAT_VERSION } };
}

/** The message that publishes several changes as one transaction under `transaction:<name>`. */
export function transactionMessage(
  name: string,
  changes: Change[],
): { key: string; payload: string; properties: Record<string, string> } {
  const key = name.startsWith(TRANSACTION_PREFIX) ? name : `${TRANSACTION_PREFIX}${name}`;
  return { key, payload: JSON.stringify({ changes }), properties: { [FORMAT_PROPERTY]: FORMAT_VERSION } };
}
