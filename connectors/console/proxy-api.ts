// The console's JSON API, each answer one request of the command protocol (no
// second vocabulary): queries by their request type, the pending transaction as
// a `transaction` (dry run, then applied with expect_generation), backend states
// as `set_backend_state`. Failures keep the proxy's code and issue paths.

import { readFile } from 'node:fs/promises';
import { type CommandClient, CommandError, CommandTransportError } from '../../src/client/command-client.js';
import { QUERY_TYPES as PROTOCOL_QUERIES, type RequestType } from '../../src/command/frames.js';
import type { DryRunResult, StateChange } from '../../src/command/protocol.js';
import { changeTarget } from '../../src/state/change.js';
import { configFromChanges } from './config-export.js';

export interface ApiReply {
  status: number;
  /** JSON, unless `text` is given. */
  body: unknown;
  text?: { type: string; content: string };
}

/** The queries a browser may send, read-only whatever the role: every query of the protocol. */
export const QUERY_TYPES: ReadonlySet<string> = new Set<string>(PROTOCOL_QUERIES);

const REQUEST_TIMEOUT_MS = 10_000;

// What the proxy's refusals mean to a browser.
const STATUS_OF_CODE: Record<string, number> = {
  KKH_GENERATION_MISMATCH: 409,
  KKH_CHANGE_INVALID: 422,
  KKH_OBJECT_NOT_FOUND: 422,
  KKH_REQUEST_INVALID: 400,
  KKH_CHANGE_FAILED: 502,
};

export function errorReply(status: number, code: string, message: string, issues: unknown[] = []): ApiReply {
  return { status, body: { error: { code, message, issues } } };
}

export async function ask(
  client: CommandClient,
  type: RequestType,
  body: Record<string, unknown>,
): Promise<ApiReply> {
  try {
    return {
      status: 200,
      body: await client.request<unknown>(type, body, { timeoutMs: REQUEST_TIMEOUT_MS }),
    };
  } catch (err) {
    if (err instanceof CommandError) {
      return errorReply(STATUS_OF_CODE[err.code] ?? 400, err.code, err.message, [...err.issues]);
    }
    if (err instanceof CommandTransportError) {
      return errorReply(502, 'KKH_CONSOLE_PROXY_UNREACHABLE', `the proxy did not answer: ${err.message}`);
    }
    throw err;
  }
}

/** A query's body from the URL's parameters: `true`/`false` are booleans, `names` a comma list. */
export function queryBody(params: URLSearchParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [k, v] of params) {
    body[k] = v === 'true' ? true : v === 'false' ? false : k === 'names' ? v.split(',') : v;
  }
  return body;
}

/** Resident memory of a local process, from /proc (the console runs beside the proxy). */
async function residentBytes(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export async function query(client: CommandClient, type: string, params: URLSearchParams): Promise<ApiReply> {
  if (!QUERY_TYPES.has(type)) {
    return errorReply(
      404,
      'KKH_REQUEST_UNKNOWN_TYPE',
      `no query ${JSON.stringify(type)}; one of ${[...QUERY_TYPES].join(', ')}`,
    );
  }
  const reply = await ask(client, type as RequestType, queryBody(params));
  if (reply.status === 200 && (type === 'status' || type === 'list_workers')) {
    const workers = (reply.body as { workers: { pid: number | undefined }[] }).workers;
    for (const w of workers) Object.assign(w, { rss_bytes: await residentBytes(w.pid) });
  }
  return reply;
}

/**
 * The pending transaction: a dry run answers the proxy's diff, each entry with
 * `held_by`, the source holding that object now (the console takes it over);
 * otherwise it is applied, guarded by `expect_generation` when given.
 */
export async function transaction(client: CommandClient, source: string, input: unknown): Promise<ApiReply> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return errorReply(400, 'KKH_REQUEST_INVALID', 'expected {changes, dry_run?, expect_generation?}');
  }
  const { changes, dry_run, expect_generation } = input as Record<string, unknown>;
  const body: Record<string, unknown> = { changes, source, dry_run: dry_run === true };
  if (expect_generation !== undefined) body.expect_generation = expect_generation;
  const reply = await ask(client, 'transaction', body);
  if (reply.status !== 200 || dry_run !== true) return reply;
  const state = await ask(client, 'get_state', { sources: true });
  if (state.status !== 200) return reply;
  const holders = new Map<string, string | undefined>();
  for (const c of (state.body as { changes: StateChange[] }).changes) {
    const t = changeTarget(c);
    holders.set(`${t.kind} ${t.key}`, c.source);
  }
  const dry = reply.body as DryRunResult;
  return {
    status: 200,
    body: {
      ...dry,
      diff: dry.diff.map((a) => ({
        ...a,
        held_by: holders.get(`${a.op.replace(/^(put|delete)_/, '')} ${a.key}`) ?? null,
      })),
    },
  };
}

export function backendState(client: CommandClient, source: string, input: unknown): Promise<ApiReply> {
  const b = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  return ask(client, 'set_backend_state', {
    cluster: b.cluster,
    backend: b.backend,
    state: b.state,
    source,
  });
}

/** The current state as a changes file (`kakehi ctl apply` and the import box read it); keys redacted. */
export async function exportChanges(client: CommandClient): Promise<ApiReply> {
  const r = await ask(client, 'get_state', {});
  if (r.status !== 200) return r;
  const { generation, changes } = r.body as { generation: number; changes: StateChange[] };
  return { status: 200, body: { generation, changes } };
}

/** The current state's objects as a configuration file (YAML); certificates named in comments. */
export async function exportConfig(client: CommandClient): Promise<ApiReply> {
  const r = await ask(client, 'get_state', {});
  if (r.status !== 200) return r;
  const { generation, changes } = r.body as { generation: number; changes: StateChange[] };
  return {
    status: 200,
    body: null,
    text: { type: 'application/yaml; charset=utf-8', content: configFromChanges(generation, changes) },
  };
}
