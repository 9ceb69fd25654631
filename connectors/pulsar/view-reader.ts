// Reading a route topic's compacted view from its first message up to the last
// one that existed when the read began: the bootstrap and resync of the
// connector, and `kakehi pulsar export`, read the same way.
//
// The end is the one asked of the broker at the start (GET_LAST_MESSAGE_ID, as
// Pulsar's own hasMessageAvailable does), never a guess from silence: the read is
// complete once the message with that id, or a later one, was read, together with
// every message of its entry the broker delivered (a batch arrives whole;
// compaction may have removed some of its messages). Silence before that end (a
// first read slow after a broker restart, or a last message that compaction
// removed) leaves the read incomplete: the view may lack its newest part, and the
// caller must not take what it lacks for deleted.

import { type Message, MessageId, type PulsarClient, type Reader } from './client/index.js';

export class PartitionedTopicError extends Error {}

export interface ViewRead {
  /** Still open and positioned after the last message read: the connector follows on with it. */
  reader: Reader;
  /** 'empty': the broker had no message; 'complete': read up to `last`; 'incomplete': silence came first. */
  end: 'empty' | 'complete' | 'incomplete';
  last: MessageId;
  /** Messages handed to onMessage. */
  read: number;
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
  let read = 0;
  const take = (m: Message) => {
    read++;
    onMessage(m);
  };
  try {
    const last = await reader.getLastMessageId();
    if (BigInt.asIntN(64, last.entryId) < 0n) return { reader, end: 'empty', last, read };
    const lastEntry = last.entry();
    for (;;) {
      let m: Message;
      try {
        m = await reader.readNext(AbortSignal.any([opts.signal, AbortSignal.timeout(opts.idleMs)]));
      } catch (err) {
        if (opts.signal.aborted) throw err;
        return { reader, end: 'incomplete', last, read };
      }
      take(m);
      if (m.id.entry().compare(lastEntry) >= 0) {
        // The rest of this entry's batch came in the same frame: it belongs to the view.
        const entry = m.id.entry();
        for (let n = reader.readBuffered(sameEntry(entry)); n; n = reader.readBuffered(sameEntry(entry)))
          take(n);
        return { reader, end: 'complete', last, read };
      }
    }
  } catch (err) {
    await reader.close().catch(() => undefined);
    throw err;
  }
}

const sameEntry = (entry: MessageId) => (m: Message) => m.id.entry().compare(entry) === 0;
