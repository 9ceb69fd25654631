// Publishing to a route topic, as a library for scripts and as what
// `kakehi pulsar publish` and `export` run: every change is validated with the
// proxy's own schemas before anything is sent, and each is sent keyed by its
// object so compaction keeps the latest word on it.

import type { Change } from '../../src/state/change.js';
import type { MessageId, PulsarClient } from './client/index.js';
import { DesiredState, isDelete } from './desired.js';
import {
  changeMessage,
  decodeMessage,
  FORMAT_PROPERTY,
  FORMAT_VERSION,
  transactionMessage,
} from './format.js';
import { parentsFirst } from './sync-plan.js';
import { readView } from './view-reader.js';

// Sends in windows below the producer's pending cap, so a large file never fails with a full queue.
const WINDOW = 500;

export interface PublishOptions {
  /** Publish all the changes as one transaction message under `transaction:<name>`. */
  transaction?: string;
}

/** Publishes changes (already validated, e.g. by parseChanges) and waits for the broker's receipts. */
export async function publishChanges(
  client: PulsarClient,
  topic: string,
  changes: readonly Change[],
  opts: PublishOptions = {},
): Promise<MessageId[]> {
  return send(client, topic, changeMessages(changes, opts));
}

/** The messages that publish these changes: one per change, or one transaction message. */
export function changeMessages(
  changes: readonly Change[],
  opts: PublishOptions = {},
): { key: string; payload: string; properties: Record<string, string> }[] {
  return opts.transaction !== undefined
    ? [transactionMessage(opts.transaction, [...changes])]
    : changes.map(changeMessage);
}

/** Publishes tombstones: each key's messages are dropped at the next compaction, and its object deleted. */
export function publishTombstones(
  client: PulsarClient,
  topic: string,
  keys: readonly string[],
): Promise<MessageId[]> {
  return send(
    client,
    topic,
    keys.map((key) => ({
      key,
      payload: '',
      nullValue: true,
      properties: { [FORMAT_PROPERTY]: FORMAT_VERSION },
    })),
  );
}

async function send(
  client: PulsarClient,
  topic: string,
  messages: { key: string; payload: string; properties: Record<string, string>; nullValue?: boolean }[],
): Promise<MessageId[]> {
  const producer = await client.createProducer({ topic, sendTimeoutMs: 30_000 });
  try {
    const ids: MessageId[] = [];
    for (let i = 0; i < messages.length; i += WINDOW) {
      ids.push(...(await Promise.all(messages.slice(i, i + WINDOW).map((m) => producer.send(m)))));
    }
    return ids;
  } finally {
    await producer.close();
  }
}

/**
 * The topic's desired state as puts, parents first: what `export` prints, and a
 * file `publish` and `kakehi ctl apply` take. Skipped messages are listed apart.
 */
export async function exportDesiredState(
  client: PulsarClient,
  topic: string,
  opts: { idleMs?: number; signal?: AbortSignal } = {},
): Promise<{
  changes: Change[];
  skipped: { id: string; key: string | undefined; reason: string }[];
  /** False when silence came before the last id: the newest messages may be missing. */
  complete: boolean;
}> {
  const desired = new DesiredState();
  const skipped: { id: string; key: string | undefined; reason: string }[] = [];
  const read = await readView(
    client,
    topic,
    (m) => {
      const d = decodeMessage(m, { certificates: true });
      if (d.type === 'rejected')
        skipped.push({ id: m.id.toString(), key: m.key, reason: `${d.reason}: ${d.detail}` });
      else desired.take(d);
    },
    {
      idleMs: opts.idleMs ?? 5_000,
      receiverQueue: 1_000,
      signal: opts.signal ?? new AbortController().signal,
    },
  );
  await read.reader.close();
  const puts = [...desired.words()].map(([, w]) => w.change).filter((c) => !isDelete(c));
  puts.sort(parentsFirst);
  return { changes: puts, skipped, complete: read.end !== 'incomplete' };
}
