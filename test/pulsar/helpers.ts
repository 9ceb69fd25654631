// Shared helpers for the Pulsar tests: broker coordinates from the env that
// test/run.mjs sets (or that a developer points at an existing broker), the
// admin REST API, unique topic names, and a poll-with-deadline.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type ClientOptions, PulsarClient, tokenAuth } from '../../connectors/pulsar/client/index.js';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run via test/run.mjs, or see docs/pulsar-client.md`);
  return v;
}

export const env = {
  get url() {
    return need('PULSAR_URL');
  },
  get tlsUrl() {
    return need('PULSAR_TLS_URL');
  },
  get adminUrl() {
    return need('PULSAR_ADMIN_URL');
  },
  get token() {
    return need('PULSAR_TOKEN');
  },
  get tokenSecret() {
    return need('PULSAR_TOKEN_SECRET');
  },
  get caFile() {
    return need('PULSAR_TLS_CA');
  },
  get ca() {
    return readFileSync(need('PULSAR_TLS_CA'), 'utf8');
  },
};

/**
 * Broker settings for a topic read only by non-durable readers (a route topic):
 * without them, every ledger a restart closed is deleted at the broker's next
 * retention check (every 120 s), and a reader from the earliest message then starts
 * after the messages it held. docs/pulsar.md asks the same of a route namespace.
 */
export const INFINITE_RETENTION = ['defaultRetentionTimeInMinutes=-1', 'defaultRetentionSizeInMB=-1'];

/** Asks a broker to delete now the ledgers its retention lets go (what it does every 120 s). */
export function trimTopic(topic: string, broker: { env: Record<string, string> }): Promise<string> {
  return admin(
    'POST',
    `${topic.replace('persistent://', '/persistent/')}/trim`,
    undefined,
    broker.env.PULSAR_ADMIN_URL,
    broker.env.PULSAR_TOKEN,
  );
}

export function uniqueTopic(prefix: string): string {
  return `persistent://public/default/${prefix}-${Date.now()}-${randomBytes(3).toString('hex')}`;
}

export function newClient(extra: Partial<ClientOptions> = {}): PulsarClient {
  return new PulsarClient({
    serviceUrl: env.url,
    auth: tokenAuth(env.token),
    operationTimeoutMs: 30_000,
    backoffInitialMs: 100,
    backoffMaxMs: 2_000,
    ...extra,
  });
}

/** Calls the broker's admin REST API with the super-user token (a dedicated broker's: base and token). */
export async function admin(
  method: string,
  path: string,
  body?: unknown,
  base = env.adminUrl,
  token = env.token,
): Promise<string> {
  const res = await fetch(`${base}/admin/v2${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return text;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
