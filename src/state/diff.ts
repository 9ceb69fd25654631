// The changes that turn one state into another, in an order where every prefix
// is itself a valid state: the config reload's diff, the dry-run's answer and
// the snapshot a new worker or the state file starts from.

import { fingerprintOf } from '../certificate/inspect.js';
import type { Certificate, Frontend, ObjectKind } from '../model/objects.js';
import type { Change } from './change.js';
import { type ProxyState, STATE_MAPS, sourceKey } from './proxy-state.js';
import { deepEqual, type SourcedChange } from './transaction.js';

// Puts go parents first and deletes children first, so no prefix leaves a
// reference dangling: a frontend is put after its cluster and listener, and a
// cluster is deleted after the frontends and backends that used it.
const PUT_ORDER: readonly ObjectKind[] = ['listener', 'certificate', 'cluster', 'backend', 'frontend'];
const DELETE_ORDER: readonly ObjectKind[] = ['frontend', 'backend', 'cluster', 'certificate', 'listener'];

function entries(state: ProxyState, kind: ObjectKind): Iterable<[string, unknown]> {
  return state[STATE_MAPS[kind]] as ReadonlyMap<string, unknown>;
}

function putOf(kind: ObjectKind, obj: unknown): Change {
  switch (kind) {
    case 'listener':
      return { op: 'put_listener', listener: obj as never };
    case 'cluster':
      return { op: 'put_cluster', cluster: obj as never };
    case 'backend':
      return { op: 'put_backend', backend: obj as never };
    case 'frontend':
      return { op: 'put_frontend', frontend: obj as never };
    case 'certificate':
      return { op: 'put_certificate', certificate: obj as never };
  }
}

function deleteOf(kind: ObjectKind, obj: unknown): Change {
  switch (kind) {
    case 'listener':
      return { op: 'delete_listener', address: (obj as { address: string }).address };
    case 'cluster':
      return { op: 'delete_cluster', id: (obj as { id: string }).id };
    case 'backend': {
      const b = obj as { cluster: string; id: string };
      return { op: 'delete_backend', cluster: b.cluster, id: b.id };
    }
    case 'certificate': {
      const c = obj as Certificate;
      return {
        op: 'delete_certificate',
        listener: c.listener,
        fingerprint: fingerprintOf(c.certificate) ?? '',
      };
    }
    case 'frontend': {
      const { listener, hostname, path, path_type, method } = obj as Frontend;
      return {
        op: 'delete_frontend',
        frontend: {
          ...(listener !== undefined ? { listener } : {}),
          hostname,
          path,
          path_type,
          ...(method !== undefined ? { method } : {}),
        },
      };
    }
  }
}

/** The delete of the object a change names: itself for a delete, the matching delete for a put. */
export function deletionOf(c: Change): Change {
  switch (c.op) {
    case 'put_listener':
      return deleteOf('listener', c.listener);
    case 'put_cluster':
      return deleteOf('cluster', c.cluster);
    case 'put_backend':
      return deleteOf('backend', c.backend);
    case 'put_frontend':
      return deleteOf('frontend', c.frontend);
    case 'put_certificate':
      return deleteOf('certificate', c.certificate);
    default:
      return c;
  }
}

/** Which objects of `from` a diff may change or delete, given kind and key. */
type Owned = (kind: ObjectKind, key: string) => boolean;

function diff(from: ProxyState, to: ProxyState, owned: Owned, withSources = false): SourcedChange[] {
  const out: SourcedChange[] = [];
  const src = (s: ProxyState, kind: ObjectKind, key: string) => s.sources.get(sourceKey(kind, key)) ?? '';
  for (const kind of PUT_ORDER) {
    const before = from[STATE_MAPS[kind]] as ReadonlyMap<string, unknown>;
    for (const [key, obj] of entries(to, kind)) {
      const old = before.get(key);
      const differs =
        old === undefined ||
        (owned(kind, key) &&
          (!deepEqual(old, obj) || (withSources && src(from, kind, key) !== src(to, kind, key))));
      if (differs) out.push({ change: putOf(kind, obj), source: src(to, kind, key) });
    }
  }
  for (const kind of DELETE_ORDER) {
    const after = to[STATE_MAPS[kind]] as ReadonlyMap<string, unknown>;
    for (const [key, obj] of entries(from, kind)) {
      if (!after.has(key) && owned(kind, key))
        out.push({ change: deleteOf(kind, obj), source: src(from, kind, key) });
    }
  }
  return out;
}
const changesOf = (d: SourcedChange[]) => d.map((e) => e.change);

/**
 * Changes turning `from` into `to`, objects only: sources are not part of a
 * change, so an object equal in both is left alone whatever its source.
 */
export function diffStates(from: ProxyState, to: ProxyState): Change[] {
  return changesOf(diff(from, to, () => true));
}

/**
 * Changes, each with its source, turning `from` into exactly `to`, sources
 * included: `load_state` applies this with applyTransaction so every object
 * keeps the source the file recorded.
 */
export function diffStatesWithSources(from: ProxyState, to: ProxyState): SourcedChange[] {
  return diff(from, to, () => true, true);
}

/**
 * The config reload's transaction: only objects the running state holds from
 * 'config' are updated or deleted. An object another source (ctl, pki, pulsar)
 * put survives, even when the file names the same key: the last writer owns it
 * until it is deleted, and the next reload then puts the file's version.
 */
export function reloadDiff(running: ProxyState, fromConfig: ProxyState): Change[] {
  return changesOf(
    diff(running, fromConfig, (kind, key) => running.sources.get(sourceKey(kind, key)) === 'config'),
  );
}

/** A file object a reload leaves alone because another source holds its key. */
export interface ShadowedObject {
  kind: ObjectKind;
  key: string;
  /** The source that holds it ('runtime', 'pulsar', 'pki'…). */
  held_by: string;
  /** Whether the file's version differs from the one serving. */
  differs: boolean;
  /** The file's version, when it differs (never for a certificate: it would carry the key). */
  file_wants?: unknown;
}

/**
 * Every object the configuration file declares that `running` holds from another
 * source: reloadDiff leaves each alone, so a reload names them instead of
 * silently not following the file.
 */
export function shadowedObjects(running: ProxyState, fromConfig: ProxyState): ShadowedObject[] {
  const out: ShadowedObject[] = [];
  for (const kind of PUT_ORDER) {
    const serving = running[STATE_MAPS[kind]] as ReadonlyMap<string, unknown>;
    for (const [key, wanted] of entries(fromConfig, kind)) {
      const held = running.sources.get(sourceKey(kind, key));
      if (held === undefined || held === 'config') continue;
      const differs = !deepEqual(serving.get(key), wanted);
      out.push({
        kind,
        key,
        held_by: held,
        differs,
        ...(differs && kind !== 'certificate' ? { file_wants: wanted } : {}),
      });
    }
  }
  return out;
}

/** The whole state as puts, parents first: a snapshot that applies to an empty state. */
export function stateAsChanges(state: ProxyState): Change[] {
  const out: Change[] = [];
  for (const kind of PUT_ORDER) for (const [, obj] of entries(state, kind)) out.push(putOf(kind, obj));
  return out;
}
