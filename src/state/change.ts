// The one vocabulary of changes: put and delete of listeners, clusters,
// backends, frontends and certificates by stable key. The config reload, the command socket,
// Pulsar and the state file all describe what they want as a list of these,
// validated here with the model schemas.

import { normalizeFingerprint } from '../certificate/inspect.js';
import type { FieldIssue } from '../errors.js';
import {
  type Backend,
  backendSchema,
  type Certificate,
  type Cluster,
  certificateSchema,
  clusterSchema,
  type Frontend,
  frontendSchema,
  keyOf,
  type Listener,
  listenerSchema,
  type ObjectKind,
} from '../model/objects.js';
import { bool, object, oneOf, type Schema, str } from '../model/schema.js';

/** The fields that name a frontend; path and path_type default as in frontendSchema. */
export interface FrontendRef {
  listener?: string;
  hostname: string;
  path?: string;
  path_type?: 'prefix' | 'exact' | 'regex';
  method?: string;
}

/**
 * Where a change enters the proxy, deleting an object that is not there is
 * refused (KKH_OBJECT_NOT_FOUND) unless the delete says `if_exists: true`: a
 * typo in a remove would otherwise answer success and change nothing.
 */
interface Deletion {
  if_exists?: boolean | undefined;
}

export type Change =
  | { op: 'put_listener'; listener: Listener }
  | ({ op: 'delete_listener'; address: string } & Deletion)
  | { op: 'put_cluster'; cluster: Cluster }
  | ({ op: 'delete_cluster'; id: string } & Deletion)
  | { op: 'put_backend'; backend: Backend }
  | ({ op: 'delete_backend'; cluster: string; id: string } & Deletion)
  | { op: 'put_frontend'; frontend: Frontend }
  | ({ op: 'delete_frontend'; frontend: FrontendRef } & Deletion)
  | { op: 'put_certificate'; certificate: Certificate }
  | ({ op: 'delete_certificate'; listener: string; fingerprint: string } & Deletion);

export type ChangeOp = Change['op'];

/** Upper bound on one transaction; a full state file of 10,000 frontends is far below it. */
export const MAX_CHANGES = 1_000_000;

const required = <T>(schema: Schema<T>) => ({ schema, required: true as const });
const opField = <const O extends ChangeOp>(op: O) => required(oneOf([op] as const));
const ifExists = { schema: bool(), doc: 'deleting an absent object is no error' };

const frontendRefSchema = object({
  listener: { schema: frontendSchema.fields.listener.schema },
  hostname: required(frontendSchema.fields.hostname.schema),
  path: frontendSchema.fields.path,
  path_type: frontendSchema.fields.path_type,
  method: { schema: frontendSchema.fields.method.schema },
});

// One schema per op, so each change is checked field by field like any object
// (unknown keys refused, every issue named by its path).
const changeSchemas: { [O in ChangeOp]: Schema<Extract<Change, { op: O }>> } = {
  put_listener: object({ op: opField('put_listener'), listener: required(listenerSchema) }),
  delete_listener: object({
    op: opField('delete_listener'),
    address: required(listenerSchema.fields.address.schema),
    if_exists: ifExists,
  }),
  put_cluster: object({ op: opField('put_cluster'), cluster: required(clusterSchema) }),
  delete_cluster: object({
    op: opField('delete_cluster'),
    id: required(clusterSchema.fields.id.schema),
    if_exists: ifExists,
  }),
  put_backend: object({ op: opField('put_backend'), backend: required(backendSchema) }),
  delete_backend: object({
    op: opField('delete_backend'),
    cluster: required(backendSchema.fields.cluster.schema),
    id: required(backendSchema.fields.id.schema),
    if_exists: ifExists,
  }),
  put_frontend: object({ op: opField('put_frontend'), frontend: required(frontendSchema) }),
  delete_frontend: object({
    op: opField('delete_frontend'),
    frontend: required(frontendRefSchema),
    if_exists: ifExists,
  }),
  put_certificate: object({ op: opField('put_certificate'), certificate: required(certificateSchema) }),
  delete_certificate: object({
    op: opField('delete_certificate'),
    listener: required(certificateSchema.fields.listener.schema),
    fingerprint: required(
      str({
        check: (s) =>
          normalizeFingerprint(s) === undefined
            ? `"${s}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`
            : undefined,
      }),
    ),
    if_exists: ifExists,
  }),
};

export const CHANGE_OPS = Object.keys(changeSchemas) as ChangeOp[];

type FieldsOf<O extends ChangeOp> = Exclude<keyof Extract<Change, { op: O }>, 'op'>;
/** One change a request makes: its op, and for each of the op's fields the body field (dotted) that fills it. */
type AliasedChange = { [O in ChangeOp]: { op: O; from: Record<FieldsOf<O>, string> } }[ChangeOp];

/**
 * Sōzu's request names over the ops: the change requests of the command socket,
 * each the changes it makes, in order, filled from its body. The request types
 * (src/command/frames.ts), their translation and the hint for a Sōzu user's
 * first guess at an op all come from this table. `id` names the request itself
 * on the wire, so removals name their object by kind (`cluster`, `backend`).
 */
export const CHANGE_REQUESTS = {
  add_http_listener: [{ op: 'put_listener', from: { listener: 'listener' } }],
  remove_listener: [{ op: 'delete_listener', from: { address: 'address', if_exists: 'if_exists' } }],
  add_cluster: [{ op: 'put_cluster', from: { cluster: 'cluster' } }],
  remove_cluster: [{ op: 'delete_cluster', from: { id: 'cluster', if_exists: 'if_exists' } }],
  add_backend: [{ op: 'put_backend', from: { backend: 'backend' } }],
  remove_backend: [
    { op: 'delete_backend', from: { cluster: 'cluster', id: 'backend', if_exists: 'if_exists' } },
  ],
  add_http_frontend: [{ op: 'put_frontend', from: { frontend: 'frontend' } }],
  remove_http_frontend: [{ op: 'delete_frontend', from: { frontend: 'frontend', if_exists: 'if_exists' } }],
  add_certificate: [{ op: 'put_certificate', from: { certificate: 'certificate' } }],
  // One transaction: the new certificate is in before the old one goes.
  replace_certificate: [
    { op: 'put_certificate', from: { certificate: 'certificate' } },
    {
      op: 'delete_certificate',
      from: { listener: 'certificate.listener', fingerprint: 'old_fingerprint', if_exists: 'if_exists' },
    },
  ],
  remove_certificate: [
    {
      op: 'delete_certificate',
      from: { listener: 'listener', fingerprint: 'fingerprint', if_exists: 'if_exists' },
    },
  ],
} as const satisfies Record<string, readonly AliasedChange[]>;
export type ChangeRequestType = keyof typeof CHANGE_REQUESTS;

/** The changes a Sōzu-style request names, before validation. */
export function requestChanges(type: ChangeRequestType, body: Readonly<Record<string, unknown>>): unknown[] {
  return CHANGE_REQUESTS[type].map(({ op, from }) => {
    const change: Record<string, unknown> = { op };
    for (const [field, path] of Object.entries(from)) {
      let v: unknown = body;
      for (const k of path.split('.'))
        v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
      change[field] = v;
    }
    return change;
  });
}

const squash = (name: string) => name.toLowerCase().replace(/[^a-z]/g, '');
// A Sōzu user's first guess at an op (`AddCluster`, `remove_backend`) gets the op
// to use: every request name above, and spellings that are no request here.
const SOZU_OPS = new Map<string, ChangeOp>([
  ...Object.entries(CHANGE_REQUESTS).map(([name, changes]): [string, ChangeOp] => [
    squash(name),
    (changes[0] as AliasedChange).op,
  ]),
  ['addlistener', 'put_listener'],
  ['addfrontend', 'put_frontend'],
  ['removefrontend', 'delete_frontend'],
]);

/** Validates one change; undefined after pushing at least one issue. */
export function parseChange(raw: unknown, path: string, issues: FieldIssue[]): Change | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    issues.push({ path, reason: 'expected a map with an op' });
    return undefined;
  }
  const op = (raw as { op?: unknown }).op;
  if (typeof op !== 'string' || !(op in changeSchemas)) {
    const hint = typeof op === 'string' ? SOZU_OPS.get(squash(op)) : undefined;
    issues.push({
      path: `${path}.op`,
      reason:
        op === undefined
          ? `is required; one of ${CHANGE_OPS.join(', ')}`
          : hint !== undefined
            ? `unknown op ${JSON.stringify(op)}; use ${hint}`
            : `unknown op ${JSON.stringify(op)}; expected one of ${CHANGE_OPS.join(', ')}`,
    });
    return undefined;
  }
  return changeSchemas[op as ChangeOp].parse(raw, path, issues);
}

/** Validates a JSON list of changes; every issue is named by its path, e.g. `changes[2].backend.address`. */
export function parseChanges(raw: unknown, path: string): { changes: Change[] } | { issues: FieldIssue[] } {
  const issues: FieldIssue[] = [];
  if (!Array.isArray(raw)) {
    issues.push({ path, reason: 'expected a list of changes' });
    return { issues };
  }
  if (raw.length > MAX_CHANGES) {
    issues.push({ path, reason: `at most ${MAX_CHANGES} changes are allowed (got ${raw.length})` });
    return { issues };
  }
  const changes: Change[] = [];
  raw.forEach((item, i) => {
    const c = parseChange(item, `${path}[${i}]`, issues);
    if (c !== undefined) changes.push(c);
  });
  return issues.length > 0 ? { issues } : { changes };
}

/** The kind and stable key of the object a change puts or deletes. */
export function changeTarget(c: Change): { kind: ObjectKind; key: string } {
  switch (c.op) {
    case 'put_listener':
      return { kind: 'listener', key: keyOf('listener', c.listener) };
    case 'delete_listener':
      return { kind: 'listener', key: keyOf('listener', { address: c.address }) };
    case 'put_cluster':
      return { kind: 'cluster', key: c.cluster.id };
    case 'delete_cluster':
      return { kind: 'cluster', key: c.id };
    case 'put_backend':
      return { kind: 'backend', key: keyOf('backend', c.backend) };
    case 'delete_backend':
      return { kind: 'backend', key: keyOf('backend', c) };
    case 'put_frontend':
      return { kind: 'frontend', key: keyOf('frontend', c.frontend) };
    case 'delete_frontend':
      return { kind: 'frontend', key: frontendRefKey(c.frontend) };
    case 'put_certificate':
      return { kind: 'certificate', key: keyOf('certificate', c.certificate) };
    case 'delete_certificate':
      return { kind: 'certificate', key: keyOf('certificate', c) };
  }
}

export function frontendRefKey(f: FrontendRef): string {
  return keyOf('frontend', {
    listener: f.listener,
    hostname: f.hostname,
    path: f.path ?? '/',
    path_type: f.path_type ?? 'prefix',
    method: f.method,
  });
}

/** A readable name of the object a change touches, e.g. "backend app/b1". */
export function changeKey(c: Change): string {
  const t = changeTarget(c);
  return `${t.kind} ${t.key}`;
}
