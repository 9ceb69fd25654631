// Unpacking one MESSAGE entry into the Messages the app sees: decompression
// (size-bounded), batch splitting, and skipping of compacted_out entries, entries
// already acked (ack_set) and ids the consumer asks to skip. Pure; throws on bad data.

import { splitBatch } from './batch.js';
import { decompress } from './compression.js';
import { PulsarClientError } from './errors.js';
import { MessageId } from './message-id.js';
import { type BaseCommand, CompressionType, type KeyValue, type MessageMetadata } from './pulsar-api.js';

/** The broker may overshoot permits by one batch; larger batches are refused. */
export const MAX_BATCH_MESSAGES = 10_000;

export interface Message {
  readonly topic: string;
  readonly id: MessageId;
  /** Partition key; undefined when the producer set none. */
  readonly key: string | undefined;
  readonly properties: Readonly<Record<string, string>>;
  readonly payload: Uint8Array;
  /** Set by the producer (null_value) or an empty payload on a keyed message: a compaction tombstone. */
  readonly isTombstone: boolean;
  readonly publishTime: Date;
  readonly eventTime: Date | undefined;
  readonly producerName: string;
  readonly sequenceId: bigint;
  readonly redeliveryCount: number;
}

export interface UnpackedEntry {
  messages: Message[];
  /** Messages of the entry not handed out (each used a flow permit). */
  skipped: number;
  /** Messages in the batch; 0 for a non-batched entry. */
  batchSize: number;
}

export function unpackEntry(
  topic: string,
  cmd: NonNullable<BaseCommand['message']>,
  meta: MessageMetadata,
  payload: Uint8Array,
  maxBytes: number,
  skip: (id: MessageId) => boolean,
): UnpackedEntry {
  const entryId = MessageId.fromData(cmd.message_id);
  const batched = meta.num_messages_in_batch !== undefined;
  const count = batched ? (meta.num_messages_in_batch ?? 1) : 1;
  if (count > MAX_BATCH_MESSAGES) {
    throw new PulsarClientError(
      'PULSAR_PROTOCOL_ERROR',
      `batch of ${count} messages exceeds ${MAX_BATCH_MESSAGES}`,
    );
  }
  if (meta.encryption_keys && meta.encryption_keys.length > 0) {
    throw new PulsarClientError('PULSAR_UNSUPPORTED', 'encrypted messages are not supported');
  }
  const data = decompress(
    meta.compression ?? CompressionType.NONE,
    payload,
    meta.uncompressed_size ?? 0,
    maxBytes,
  );
  const base = {
    topic,
    publishTime: new Date(Number(meta.publish_time)),
    producerName: meta.producer_name,
    redeliveryCount: cmd.redelivery_count ?? 0,
  };
  const messages: Message[] = [];
  let skipped = 0;
  if (!batched) {
    const id = new MessageId(entryId.ledgerId, entryId.entryId, entryId.partition);
    const key = meta.null_partition_key ? undefined : meta.partition_key;
    if (skip(id)) return { messages, skipped: 1, batchSize: 0 };
    messages.push({
      ...base,
      id,
      key,
      properties: toRecord(meta.properties),
      payload: data,
      isTombstone: meta.null_value === true || (data.length === 0 && key !== undefined),
      eventTime: meta.event_time ? new Date(Number(meta.event_time)) : undefined,
      sequenceId: meta.sequence_id,
    });
    return { messages, skipped, batchSize: 0 };
  }
  const ackSet = cmd.ack_set;
  splitBatch(data, count).forEach((e, i) => {
    const id = new MessageId(entryId.ledgerId, entryId.entryId, entryId.partition, i, count);
    const stillUnacked = !ackSet || isBitSet(ackSet, i);
    if (e.meta.compacted_out || !stillUnacked || skip(id)) {
      skipped++;
      return;
    }
    const key = e.meta.null_partition_key ? undefined : e.meta.partition_key;
    messages.push({
      ...base,
      id,
      key,
      properties: toRecord(e.meta.properties),
      payload: e.payload,
      isTombstone: e.meta.null_value === true || (e.payload.length === 0 && key !== undefined),
      eventTime: e.meta.event_time ? new Date(Number(e.meta.event_time)) : undefined,
      sequenceId: e.meta.sequence_id ?? meta.sequence_id + BigInt(i),
    });
  });
  return { messages, skipped, batchSize: count };
}

function isBitSet(words: bigint[], i: number): boolean {
  const w = words[i >> 6];
  return w !== undefined && ((BigInt.asUintN(64, w) >> BigInt(i & 63)) & 1n) === 1n;
}

function toRecord(kvs: KeyValue[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of kvs ?? []) out[kv.key] = kv.value;
  return out;
}
