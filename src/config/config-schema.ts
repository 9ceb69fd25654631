// The YAML configuration file: global settings plus the routing objects, with
// backends nested in their clusters for readability. Validation here adds what
// the objects alone cannot check: duplicate keys and dangling references,
// each named by its place in the file.

import * as D from '../defaults.js';
import type { FieldIssue } from '../errors.js';
import { ACCESS_LOG_FIELD_NAMES } from '../log/access-log-fields.js';
import {
  certificateSchema,
  clusterWithBackendsSchema,
  type Frontend,
  frontendSchema,
  keyOf,
  type Listener,
  listenerClusters,
  listenerSchema,
} from '../model/objects.js';
import { bool, type Field, int, list, type ObjectOf, object, oneOf, str } from '../model/schema.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const filePath = str({ maxLength: 4096 });

/** A certificate in the config file names its PEM files; they are read when the file is loaded. */
export const configCertificateSchema = object(
  {
    listener: certificateSchema.fields.listener,
    certificate_file: {
      schema: filePath,
      required: true,
      doc: 'PEM file: the leaf, optionally followed by its chain (fullchain.pem); relative to the config file',
    },
    chain_file: { schema: filePath, doc: 'PEM file of further chain certificates' },
    key_file: { schema: filePath, required: true, doc: 'PEM private key file' },
    names: certificateSchema.fields.names,
    default: certificateSchema.fields.default,
    allow_expired: { schema: bool(), default: false, doc: 'load it even when it has expired' },
  },
  { renamed: { certificate: 'certificate_file', key: 'key_file', chain: 'chain_file' } },
);
export type ConfigCertificate = ObjectOf<typeof configCertificateSchema.fields>;

const configFields = {
  listeners: { schema: list(listenerSchema, { maxItems: 1000 }), default: [] },
  clusters: { schema: list(clusterWithBackendsSchema), default: [] },
  frontends: { schema: list(frontendSchema), default: [] },
  certificates: { schema: list(configCertificateSchema, { maxItems: 100_000 }), default: [] },
  log_level: { schema: oneOf(LOG_LEVELS), default: 'info' },
  access_log: {
    schema: str({ maxLength: 4096 }),
    default: 'stdout',
    doc: 'where access log lines go: stdout, stderr, off, or a file path',
  },
  access_log_fields: {
    schema: list(oneOf(ACCESS_LOG_FIELD_NAMES), { maxItems: ACCESS_LOG_FIELD_NAMES.length }),
    default: ACCESS_LOG_FIELD_NAMES,
    doc: 'the keys of each access log line, in this order (docs/operations.md lists them); default all',
  },
  workers: {
    schema: int({ min: 0, max: 256 }),
    default: 0,
    doc: 'worker processes sharing the listeners; 0 = one per CPU',
  },
  max_connections: {
    schema: int({ min: 1, max: 10_000_000 }),
    doc: 'client connections one worker holds open at once over all its listeners; past it new ones are closed unserved; unset: no limit',
  },
  worker_timeout_ms: {
    schema: int({ min: 100, max: 600_000 }),
    default: D.WORKER_TIMEOUT_MS,
    doc: 'a worker that has not applied a change by then is reported and replaced',
  },
  command_socket: {
    schema: str({ maxLength: 100 }),
    doc: 'path of the Unix command socket; unset: $RUNTIME_DIRECTORY/kakehi.sock, else /run/kakehi/kakehi.sock when writable, else ./kakehi.sock',
  },
  command_socket_mode: {
    schema: oneOf(['0600', '0660'] as const),
    default: '0600',
    doc: 'file mode of the command socket: owner only, or owner and group',
  },
  command_socket_group: {
    schema: str({ maxLength: 64 }),
    doc: 'group (name or gid) the command socket is given, for connectors running as another user (with mode 0660)',
  },
  state_file: {
    schema: str({ maxLength: 4096 }),
    doc: 'where the state is saved after each change (atomically, mode 0600) and resumed from at start',
  },
  drain_timeout_ms: {
    schema: int({ min: 0, max: 3_600_000 }),
    default: D.DRAIN_TIMEOUT_MS,
    doc: 'on SIGTERM, in-flight requests get this long to finish',
  },
} satisfies Record<string, Field<unknown>>;

export type ConfigFile = ObjectOf<typeof configFields>;
type ClusterWithBackends = ConfigFile['clusters'][number];

/** Field by field; the cross-checks between objects are crossCheck's (load-config.ts runs both). */
export const configSchema = object(configFields, {
  renamed: {
    worker_count: 'workers',
    saved_state: 'state_file',
    worker_timeout: 'worker_timeout_ms',
    log_target: 'access_log / log output on stderr',
    access_logs_target: 'access_log',
  },
});

/**
 * The routing lists of a file, each item parsed on its own: `undefined` for an
 * item that failed its own checks (its own issues are reported by the schema),
 * and the whole list undefined when it is not a list at all.
 */
export interface ConfigItems {
  listeners?: readonly (Listener | undefined)[] | undefined;
  clusters?: readonly (ClusterWithBackends | undefined)[] | undefined;
  frontends?: readonly (Frontend | undefined)[] | undefined;
  /** Keys of items that failed but name one: a reference to them is not judged (no false error). */
  unsure?: { listeners: ReadonlySet<string>; clusters: ReadonlySet<string> };
}

/**
 * Each routing list of a file that did not parse whole, item by item, so the
 * cross-checks of the items that did parse are reported in the same pass as the
 * syntax errors of the others.
 */
export function configItems(raw: unknown): ConfigItems {
  const src = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const listenerKeys = new Set<string>();
  const clusterIds = new Set<string>();
  const each = <T>(
    value: unknown,
    schema: { parse(v: unknown, path: string, issues: FieldIssue[]): T | undefined },
    unsure: (item: Record<string, unknown>) => void,
  ): (T | undefined)[] | undefined => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) return undefined;
    return value.map((item: unknown) => {
      const parsed = schema.parse(item, '', []); // its issues come from the whole-file parse
      if (parsed === undefined && typeof item === 'object' && item !== null)
        unsure(item as Record<string, unknown>);
      return parsed;
    });
  };
  return {
    listeners: each(src['listeners'], listenerSchema, (l) => {
      if (typeof l['address'] !== 'string') return;
      // keyOf keeps an address it cannot read as written.
      listenerKeys.add(keyOf('listener', { address: l['address'] }));
    }),
    clusters: each(src['clusters'], clusterWithBackendsSchema, (c) => {
      if (typeof c['id'] === 'string') clusterIds.add(c['id']);
    }),
    frontends: each(src['frontends'], frontendSchema, () => {}),
    unsure: { listeners: listenerKeys, clusters: clusterIds },
  };
}

/**
 * Duplicate keys and dangling references, each named by its place in the file.
 * Items that failed their own checks are undefined here: they are skipped, and
 * references to what they may name are not judged, so no false error follows a
 * real one.
 */
export function crossCheck(c: ConfigItems, issues: FieldIssue[]): void {
  const listeners = new Map<string, number>();
  c.listeners?.forEach((l, i) => {
    if (l === undefined) return;
    const key = keyOf('listener', l);
    const first = listeners.get(key);
    if (first !== undefined)
      issues.push({
        path: `listeners[${i}].address`,
        reason: `"${l.address}" is already used by listeners[${first}]`,
      });
    else listeners.set(key, i);
  });
  const clusters = new Map<string, number>();
  c.clusters?.forEach((cl, i) => {
    if (cl === undefined) return;
    const first = clusters.get(cl.id);
    if (first !== undefined)
      issues.push({ path: `clusters[${i}].id`, reason: `"${cl.id}" is already used by clusters[${first}]` });
    else clusters.set(cl.id, i);
    const backends = new Map<string, number>();
    const stickyIds = new Map<string, number>();
    cl.backends.forEach((b, j) => {
      const firstB = backends.get(b.id);
      if (firstB !== undefined) {
        issues.push({
          path: `clusters[${i}].backends[${j}].id`,
          reason: `"${b.id}" is already used by clusters[${i}].backends[${firstB}]`,
        });
      } else backends.set(b.id, j);
      if (b.sticky_id === undefined) return;
      const firstS = stickyIds.get(b.sticky_id);
      if (firstS !== undefined)
        issues.push({
          path: `clusters[${i}].backends[${j}].sticky_id`,
          reason: `"${b.sticky_id}" is already the sticky_id of clusters[${i}].backends[${firstS}]; a sticky cookie must name one backend`,
        });
      else stickyIds.set(b.sticky_id, j);
    });
  });
  c.listeners?.forEach((l, i) => {
    if (l === undefined || c.clusters === undefined) return;
    for (const cluster of listenerClusters(l))
      if (!clusters.has(cluster) && !c.unsure?.clusters.has(cluster))
        issues.push({
          path: `listeners[${i}].${l.cluster === cluster ? 'cluster' : 'sni_clusters'}`,
          reason: `no cluster has the id "${cluster}"`,
        });
  });
  const frontends = new Map<string, number>();
  c.frontends?.forEach((f, i) => {
    if (f === undefined) return;
    const key = keyOf('frontend', f);
    const first = frontends.get(key);
    if (first !== undefined) {
      issues.push({
        path: `frontends[${i}]`,
        reason: `same listener, hostname, path and method as frontends[${first}]`,
      });
    } else frontends.set(key, i);
    if (
      c.clusters !== undefined &&
      f.cluster !== undefined &&
      !clusters.has(f.cluster) &&
      !c.unsure?.clusters.has(f.cluster)
    ) {
      issues.push({ path: `frontends[${i}].cluster`, reason: `no cluster has the id "${f.cluster}"` });
    }
    if (
      c.listeners !== undefined &&
      f.listener !== undefined &&
      !listeners.has(keyOf('listener', { address: f.listener })) &&
      !c.unsure?.listeners.has(keyOf('listener', { address: f.listener }))
    ) {
      issues.push({
        path: `frontends[${i}].listener`,
        reason: `no listener has the address "${f.listener}"`,
      });
    }
  });
}
