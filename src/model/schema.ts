// A small typed schema library: one description of each input object gives the
// validator (errors naming path and reason, unknown keys refused with their
// replacement named), the defaults, and the JSON Schema editors use. Every
// entry point (YAML, command socket, Pulsar, saved state) goes through it.

import type { FieldIssue } from '../errors.js';

export type JsonSchema = { [key: string]: unknown };

export interface Schema<T> {
  /** Returns the value, or undefined after pushing at least one issue. */
  parse(value: unknown, path: string, issues: FieldIssue[]): T | undefined;
  readonly json: JsonSchema;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

export function str(
  opts: {
    minLength?: number;
    maxLength?: number;
    check?: (s: string) => string | undefined;
    json?: JsonSchema;
  } = {},
): Schema<string> {
  const minLength = opts.minLength ?? 1;
  const maxLength = opts.maxLength ?? 4096;
  return {
    json: { type: 'string', minLength, maxLength, ...opts.json },
    parse(value, path, issues) {
      if (typeof value !== 'string') {
        issues.push({ path, reason: `expected a string, got ${describe(value)}` });
        return undefined;
      }
      if (value.length < minLength) {
        issues.push({
          path,
          reason: minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters`,
        });
        return undefined;
      }
      if (value.length > maxLength) {
        issues.push({ path, reason: `must be at most ${maxLength} characters (got ${value.length})` });
        return undefined;
      }
      const problem = opts.check?.(value);
      if (problem !== undefined) {
        issues.push({ path, reason: problem });
        return undefined;
      }
      return value;
    },
  };
}

export function int(opts: { min: number; max: number }): Schema<number> {
  return {
    json: { type: 'integer', minimum: opts.min, maximum: opts.max },
    parse(value, path, issues) {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        issues.push({ path, reason: `expected a whole number, got ${describe(value)}` });
        return undefined;
      }
      if (value < opts.min || value > opts.max) {
        issues.push({ path, reason: `must be from ${opts.min} to ${opts.max} (got ${value})` });
        return undefined;
      }
      return value;
    },
  };
}

export function bool(): Schema<boolean> {
  return {
    json: { type: 'boolean' },
    parse(value, path, issues) {
      if (typeof value !== 'boolean') {
        issues.push({ path, reason: `expected true or false, got ${describe(value)}` });
        return undefined;
      }
      return value;
    },
  };
}

export function oneOf<const V extends string | number | boolean>(values: readonly V[]): Schema<V> {
  return {
    json: { enum: [...values] },
    parse(value, path, issues) {
      if (!values.includes(value as V)) {
        issues.push({
          path,
          reason: `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')} (got ${describe(value)})`,
        });
        return undefined;
      }
      return value as V;
    },
  };
}

export function list<T>(item: Schema<T>, opts: { maxItems?: number } = {}): Schema<T[]> {
  const maxItems = opts.maxItems ?? 100_000;
  return {
    json: { type: 'array', items: item.json, maxItems },
    parse(value, path, issues) {
      if (!Array.isArray(value)) {
        issues.push({ path, reason: `expected a list, got ${describe(value)}` });
        return undefined;
      }
      if (value.length > maxItems) {
        issues.push({ path, reason: `at most ${maxItems} entries are allowed (got ${value.length})` });
        return undefined;
      }
      const out: T[] = [];
      let ok = true;
      value.forEach((v, i) => {
        const parsed = item.parse(v, `${path}[${i}]`, issues);
        if (parsed === undefined) ok = false;
        else out.push(parsed);
      });
      return ok ? out : undefined;
    },
  };
}

/** A map from string keys (checked by keyCheck) to values. */
export function dict<T>(
  value: Schema<T>,
  opts: { keyCheck?: (k: string) => string | undefined; maxEntries?: number } = {},
): Schema<Record<string, T>> {
  const maxEntries = opts.maxEntries ?? 1000;
  return {
    json: { type: 'object', additionalProperties: value.json, maxProperties: maxEntries },
    parse(input, path, issues) {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        issues.push({ path, reason: `expected a map, got ${describe(input)}` });
        return undefined;
      }
      const entries = Object.entries(input);
      if (entries.length > maxEntries) {
        issues.push({ path, reason: `at most ${maxEntries} entries are allowed (got ${entries.length})` });
        return undefined;
      }
      const out: Record<string, T> = {};
      let ok = true;
      for (const [k, v] of entries) {
        const keyProblem = opts.keyCheck?.(k);
        if (keyProblem !== undefined) {
          issues.push({ path: `${path}.${k}`, reason: keyProblem });
          ok = false;
          continue;
        }
        const parsed = value.parse(v, `${path}.${k}`, issues);
        if (parsed === undefined) ok = false;
        else out[k] = parsed;
      }
      return ok ? out : undefined;
    },
  };
}

export interface Field<T> {
  schema: Schema<T>;
  required?: boolean;
  default?: T;
  doc?: string;
}

type FieldValue<F> = F extends { schema: Schema<infer T>; required: true }
  ? T
  : F extends { schema: Schema<infer T>; default: unknown }
    ? T
    : F extends { schema: Schema<infer T> }
      ? T | undefined
      : never;

export type ObjectOf<F extends Record<string, Field<unknown>>> = {
  -readonly [K in keyof F]: FieldValue<F[K]>;
};

/**
 * A map with known keys. `renamed` maps an old or common wrong key to the one to
 * use, so the error tells the operator the fix.
 */
export function object<F extends Record<string, Field<unknown>>>(
  fields: F,
  opts: {
    renamed?: Record<string, string>;
    check?: (o: ObjectOf<F>, path: string, issues: FieldIssue[]) => void;
    /** Runs even when some fields failed (they are undefined), so every error is reported at once. */
    checkPartial?: (o: Partial<ObjectOf<F>>, path: string, issues: FieldIssue[]) => void;
  } = {},
): Schema<ObjectOf<F>> & { fields: F } {
  const required = Object.entries(fields)
    .filter(([, f]) => f.required === true)
    .map(([k]) => k);
  const properties: Record<string, JsonSchema> = {};
  for (const [k, f] of Object.entries(fields)) {
    properties[k] = {
      ...f.schema.json,
      ...(f.doc ? { description: f.doc } : {}),
      ...('default' in f ? { default: f.default } : {}),
    };
  }
  return {
    fields,
    json: {
      type: 'object',
      additionalProperties: false,
      properties,
      ...(required.length ? { required } : {}),
    },
    parse(input, path, issues) {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        issues.push({ path, reason: `expected a map, got ${describe(input)}` });
        return undefined;
      }
      const before = issues.length;
      const at = (k: string) => (path === '' ? k : `${path}.${k}`);
      const src = input as Record<string, unknown>;
      for (const k of Object.keys(src)) {
        if (k in fields) continue;
        const instead = opts.renamed?.[k];
        issues.push({
          path: at(k),
          reason: instead
            ? `unknown key; use ${instead}`
            : `unknown key; expected one of ${Object.keys(fields).join(', ')}`,
        });
      }
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(fields)) {
        const v = src[k];
        if (v === undefined || v === null) {
          if (f.required) issues.push({ path: at(k), reason: 'is required' });
          else if ('default' in f) out[k] = f.default;
          continue;
        }
        out[k] = f.schema.parse(v, at(k), issues);
      }
      opts.checkPartial?.(out as Partial<ObjectOf<F>>, path, issues);
      if (issues.length > before) return undefined;
      const result = out as ObjectOf<F>;
      opts.check?.(result, path, issues);
      return issues.length > before ? undefined : result;
    },
  };
}
