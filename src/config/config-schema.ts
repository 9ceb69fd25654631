// The YAML configuration file: global settings plus the routing objects, with
// backends nested in their clusters for readability. Validation here adds what
// the objects alone cannot check: duplicate keys and dangling references,
// each named by its place in the file.

import * as D from '../defaults.js';
import type { FieldIssue } from '../errors.js';
import {
  clusterWithBackendsSchema,
  frontendKey,
  frontendSchema,
  listenerKey,
  listenerSchema,
} from '../model/objects.js';
import { type Field, int, list, type ObjectOf, object, oneOf, str } from '../model/schema.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const configFields = {
  listeners: { schema: list(listenerSchema, { maxItems: 1000 }), default: [] },
  clusters: { schema: list(clusterWithBackendsSchema), default: [] },
  frontends: { schema: list(frontendSchema), default: [] },
  log_level: { schema: oneOf(LOG_LEVELS), default: 'info' },
  access_log: {
    schema: str({ maxLength: 4096 }),
    default: 'stdout',
    doc: 'where access log lines go: stdout, stderr, off, or a file path',
  },
  drain_timeout_ms: {
    schema: int({ min: 0, max: 3_600_000 }),
    default: D.DRAIN_TIMEOUT_MS,
    doc: 'on SIGTERM, in-flight requests get this long to finish',
  },
} satisfies Record<string, Field<unknown>>;

export type ConfigFile = ObjectOf<typeof configFields>;

export const configSchema = object(configFields, {
  renamed: {
    worker_count: 'workers (not built yet: one process serves)',
    log_target: 'access_log / log output on stderr',
    access_logs_target: 'access_log',
  },
  checkPartial: crossCheck,
});

/**
 * Duplicate keys and dangling references. A list that failed its own checks is
 * undefined here: references into it are not judged, so no false error follows
 * a real one.
 */
function crossCheck(c: Partial<ConfigFile>, _path: string, issues: FieldIssue[]): void {
  const listeners = new Map<string, number>();
  c.listeners?.forEach((l, i) => {
    const key = listenerKey(l);
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
    const first = clusters.get(cl.id);
    if (first !== undefined)
      issues.push({ path: `clusters[${i}].id`, reason: `"${cl.id}" is already used by clusters[${first}]` });
    else clusters.set(cl.id, i);
    const backends = new Map<string, number>();
    cl.backends.forEach((b, j) => {
      const firstB = backends.get(b.id);
      if (firstB !== undefined) {
        issues.push({
          path: `clusters[${i}].backends[${j}].id`,
          reason: `"${b.id}" is already used by clusters[${i}].backends[${firstB}]`,
        });
      } else backends.set(b.id, j);
    });
  });
  const frontends = new Map<string, number>();
  c.frontends?.forEach((f, i) => {
    const key = frontendKey(f);
    const first = frontends.get(key);
    if (first !== undefined) {
      issues.push({
        path: `frontends[${i}]`,
        reason: `same listener, hostname, path and method as frontends[${first}]`,
      });
    } else frontends.set(key, i);
    if (c.clusters !== undefined && f.cluster !== undefined && !clusters.has(f.cluster)) {
      issues.push({ path: `frontends[${i}].cluster`, reason: `no cluster has the id "${f.cluster}"` });
    }
    if (
      c.listeners !== undefined &&
      f.listener !== undefined &&
      !listeners.has(listenerKey({ address: f.listener }))
    ) {
      issues.push({
        path: `frontends[${i}].listener`,
        reason: `no listener has the address "${f.listener}"`,
      });
    }
  });
}
