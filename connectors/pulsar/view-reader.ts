// Reading a route topic's compacted view from its first message up to the last
// one that existed when the read began: the bootstrap and resync of the
// connector, and `kakehi pulsar export`, read the same way.

import { type Message, MessageId, type PulsarClient, type Reader } from './client/index.js';

export class PartitionedTopicError extends Error {}

export interface ViewRead {
  /** Still open and positioned after the last message read: the connector follows on with it. */
  reader: Reader;
  /** How the end was found: the last id was seen, or silence (a compacted-out last message). */
  end: 'empty' | 'last-id' | 'idle';
  last: MessageId;
}

export async function readView(
  client: PulsarClient,
  topic: string,
  onMessage: (m: Message) => void,
  opts: { idleMs: number; receiverQueue: number; signal: AbortSignal },
): Promise<ViewRead> {
  if ((await client.getPartitionCount(topic)) > 0) {
    throw new PartitionedTopicError(
      `${topic} is a partitioned topic; kakehi needs one non-partitioned topic, so that every change keeps its order (docs/pulsar.md)`,
    );
  }
  const reader = await client.createReader({
    topic,
    startMessageId: MessageId.earliest,
    readCompacted: true,
    receiverQueueSize: opts.receiverQueue,
  });
  try {
    const last = await reader.getLastMessageId();
    if (BigInt.asIntN(64, last.entryId) < 0n) return { reader, end: 'empty', last };
    for (;;) {
      let m: Message;
      try {
        m = await reader.readNext(AbortSignal.any([opts.signal, AbortSignal.timeout(opts.idleMs)]));
      } catch (err) {
        if (opts.signal.aborted) throw err;
        // The last id may be a message compaction removed (a tombstone): nothing at or
        // after it ever comes. Silence this long means the view has been read.
        return { reader, end: 'idle', last };
      }
      onMessage(m);
      if (m.id.entry().compare(last.entry()) >= 0) return { reader, end: 'last-id', last };
    }
  } catch (err) {
    await reader.close().catch(() => undefined);
    throw err;
  }
}
