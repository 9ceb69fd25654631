// What must hold of every ProxyState the engine makes; tests run it after
// every transaction. A failure is a bug in kakehi, not bad input, so it throws
// a plain Error naming the broken invariant.

import type { FieldIssue } from '../errors.js';
import {
  backendSchema,
  certificateSchema,
  clusterSchema,
  frontendSchema,
  type KeyFields,
  keyOf,
  listenerSchema,
  type ObjectKind,
} from '../model/objects.js';
import type { Schema } from '../model/schema.js';
import { type ProxyState, referenceIssues, STATE_MAPS, sourceKey } from './proxy-state.js';
import { deepEqual } from './transaction.js';

const SCHEMAS: { [K in ObjectKind]: Schema<KeyFields[K]> } = {
  listener: listenerSchema,
  cluster: clusterSchema,
  backend: backendSchema,
  frontend: frontendSchema,
  certificate: certificateSchema,
};
const KINDS = Object.keys(SCHEMAS) as ObjectKind[];

function isDeepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

export function assertInvariants(state: ProxyState): void {
  const fail = (invariant: string, detail: string): never => {
    throw new Error(`state invariant broken: ${invariant}: ${detail}`);
  };
  let objects = 0;
  for (const kind of KINDS) {
    const schema = SCHEMAS[kind] as Schema<unknown>;
    for (const [key, obj] of state[STATE_MAPS[kind]] as ReadonlyMap<string, unknown>) {
      objects++;
      const own = keyOf(kind, obj as never);
      if (own !== key) fail('keys match objects', `${kind} under "${key}" has key "${own}"`);
      if (!isDeepFrozen(obj)) fail('objects frozen', `${kind} ${key} can be modified`);
      const issues: FieldIssue[] = [];
      const parsed = schema.parse(obj, `${kind} ${key}`, issues);
      if (parsed === undefined || !deepEqual(parsed, obj)) {
        fail('objects valid', `${kind} ${key}: ${issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`);
      }
      const source = state.sources.get(sourceKey(kind, key));
      if (typeof source !== 'string' || source === '') fail('every object has a source', `${kind} ${key}`);
    }
  }
  if (state.sources.size !== objects) {
    const orphan = [...state.sources.keys()].find((k) => {
      const i = k.indexOf(':');
      const kind = KINDS.find((kind) => kind === k.slice(0, i));
      return (
        kind === undefined || !(state[STATE_MAPS[kind]] as ReadonlyMap<string, unknown>).has(k.slice(i + 1))
      );
    });
    fail('every source names an object', `"${orphan}" has no object`);
  }
  const dangling = referenceIssues(state);
  if (dangling.length > 0) {
    fail('references resolve', dangling.map((i) => `${i.path}: ${i.reason}`).join('; '));
  }
  if (!Object.isFrozen(state)) fail('state frozen', 'the ProxyState record can be modified');
}
