// MessageId: (ledgerId, entryId, partition, batchIndex) with uint64 parts as
// bigint, the earliest/latest sentinels, ordering, and conversion to and from
// the wire MessageIdData.

import type { MessageIdData } from './pulsar-api.js';

const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;

export class MessageId {
  constructor(
    readonly ledgerId: bigint,
    readonly entryId: bigint,
    readonly partition = -1,
    readonly batchIndex = -1,
    /** Messages in this id's batch (0 when not batched); used to ack a whole entry. */
    readonly batchSize = 0,
  ) {}

  /** Before the first message: ledgerId = entryId = -1 as uint64. */
  static readonly earliest = new MessageId(U64_MAX, U64_MAX);
  /** After the last message: Long.MAX_VALUE for both. */
  static readonly latest = new MessageId(I64_MAX, I64_MAX);

  static fromData(d: MessageIdData): MessageId {
    return new MessageId(d.ledgerId, d.entryId, d.partition ?? -1, d.batch_index ?? -1, d.batch_size ?? 0);
  }

  toData(): MessageIdData {
    const d: MessageIdData = { ledgerId: this.ledgerId, entryId: this.entryId };
    if (this.partition >= 0) d.partition = this.partition;
    if (this.batchIndex >= 0) d.batch_index = this.batchIndex;
    return d;
  }

  /** The id of the whole entry (batch index dropped). */
  entry(): MessageId {
    return new MessageId(this.ledgerId, this.entryId, this.partition);
  }

  /** Negative, zero or positive; earliest sorts first. Partition is not compared. */
  compare(o: MessageId): number {
    const l = signed(this.ledgerId) - signed(o.ledgerId);
    if (l !== 0n) return l < 0n ? -1 : 1;
    const e = signed(this.entryId) - signed(o.entryId);
    if (e !== 0n) return e < 0n ? -1 : 1;
    return this.batchIndex - o.batchIndex;
  }

  equals(o: MessageId): boolean {
    return this.compare(o) === 0 && this.partition === o.partition;
  }

  toString(): string {
    return `${signed(this.ledgerId)}:${signed(this.entryId)}:${this.partition}:${this.batchIndex}`;
  }
}

function signed(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}
