// Unit tests for the I/O-free parts: proto codec, frame decoder at every split
// point, batch layout, codecs, message ids and backoff.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Backoff } from '../../connectors/pulsar/client/backoff.js';
import { buildBatch, splitBatch } from '../../connectors/pulsar/client/batch.js';
import { compress, decompress } from '../../connectors/pulsar/client/compression.js';
import {
  encodeCommand,
  encodePayloadCommand,
  FrameDecoder,
  FrameError,
} from '../../connectors/pulsar/client/frame.js';
import { MessageId } from '../../connectors/pulsar/client/message-id.js';
import { unpackEntry } from '../../connectors/pulsar/client/message-unpack.js';
import { decodeMessage, encodeMessage } from '../../connectors/pulsar/client/proto-wire.js';
import { type BaseCommand, CommandType, CompressionType } from '../../connectors/pulsar/client/pulsar-api.js';
import { BaseCommandSchema, MessageIdDataSchema } from '../../connectors/pulsar/client/pulsar-schema.js';

const U64_MAX = (1n << 64n) - 1n;

describe('proto-wire', () => {
  it('round-trips uint64 extremes, negative int32, strings, nested and repeated fields', () => {
    const cmd: BaseCommand = {
      type: CommandType.ACK,
      ack: {
        consumer_id: U64_MAX,
        ack_type: 1,
        message_id: [
          { ledgerId: U64_MAX, entryId: 0n, partition: -1, batch_index: 7 },
          { ledgerId: 1n << 40n, entryId: 300n },
        ],
      },
    };
    const back = decodeMessage<BaseCommand>(BaseCommandSchema, encodeMessage(BaseCommandSchema, cmd));
    assert.deepEqual(back, cmd);
  });

  it('encodes a known MessageIdData byte-for-byte (varint and negative int32 as 10 bytes)', () => {
    const bytes = encodeMessage(MessageIdDataSchema, { ledgerId: 150n, entryId: 1n, partition: -1 });
    assert.deepEqual(
      [...bytes],
      [0x08, 0x96, 0x01, 0x10, 0x01, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    );
  });

  it('skips unknown fields of every wire type', () => {
    // field 1 = 5, unknown 9 (varint), 10 (fixed64), 11 (bytes), 12 (fixed32), then field 2 = 6
    const bytes = new Uint8Array([
      0x08, 0x05, 0x48, 0x80, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 0x02, 0xaa, 0xbb, 0x65, 1, 2, 3, 4,
      0x10, 0x06,
    ]);
    assert.deepEqual(decodeMessage(MessageIdDataSchema, bytes), { ledgerId: 5n, entryId: 6n });
  });

  it('rejects truncated input', () => {
    assert.throws(() => decodeMessage(MessageIdDataSchema, new Uint8Array([0x08, 0x96])), /truncated/);
    assert.throws(() => decodeMessage(MessageIdDataSchema, new Uint8Array([0x5a, 0x05, 0x01])), /truncated/);
  });
});

function frames(): Uint8Array {
  const a = encodeCommand({ type: CommandType.PING, ping: {} });
  const b = encodePayloadCommand(
    { type: CommandType.MESSAGE, message: { consumer_id: 3n, message_id: { ledgerId: 9n, entryId: 4n } } },
    { producer_name: 'p', sequence_id: 42n, publish_time: 1700000000000n, partition_key: 'k' },
    new TextEncoder().encode('hello world'),
  );
  const c = encodeCommand({ type: CommandType.SUCCESS, success: { request_id: 77n } });
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}

function decodeAll(chunks: Uint8Array[]) {
  const d = new FrameDecoder(1 << 20);
  const out = [];
  for (const ch of chunks) {
    d.push(ch);
    for (let f = d.next(); f; f = d.next()) out.push(f);
  }
  assert.equal(d.bufferedBytes, 0);
  return out;
}

function checkDecoded(out: ReturnType<typeof decodeAll>): void {
  assert.equal(out.length, 3);
  assert.equal(out[0]?.command.type, CommandType.PING);
  const m = out[1];
  assert.equal(m?.command.type, CommandType.MESSAGE);
  assert.equal(m?.command.message?.message_id.entryId, 4n);
  assert.equal(m?.metadata?.sequence_id, 42n);
  assert.equal(m?.metadata?.partition_key, 'k');
  assert.equal(new TextDecoder().decode(m?.payload), 'hello world');
  assert.equal(m?.checksumValid, true);
  assert.equal(out[2]?.command.success?.request_id, 77n);
}

describe('FrameDecoder', () => {
  const all = frames();

  it('decodes three frames fed whole', () => {
    checkDecoded(decodeAll([all]));
  });

  it('decodes the same frames split at every single point', () => {
    for (let i = 1; i < all.length; i++) checkDecoded(decodeAll([all.subarray(0, i), all.subarray(i)]));
  });

  it('decodes the same frames fed one byte at a time', () => {
    checkDecoded(decodeAll(Array.from(all, (b) => new Uint8Array([b]))));
  });

  it('flags a checksum mismatch without throwing', () => {
    const bad = frames();
    const ping = encodeCommand({ type: CommandType.PING, ping: {} }).length;
    const last =
      ping +
      encodePayloadCommand(
        {
          type: CommandType.MESSAGE,
          message: { consumer_id: 3n, message_id: { ledgerId: 9n, entryId: 4n } },
        },
        { producer_name: 'p', sequence_id: 42n, publish_time: 1700000000000n, partition_key: 'k' },
        new TextEncoder().encode('hello world'),
      ).length;
    bad[last - 1] = (bad[last - 1] as number) ^ 0xff; // flip the payload's last byte
    const d = new FrameDecoder(1 << 20);
    d.push(bad);
    d.next();
    assert.equal(d.next()?.checksumValid, false);
  });

  it('refuses a frame larger than its limit before buffering it', () => {
    const d = new FrameDecoder(16);
    d.push(new Uint8Array([0, 0, 1, 0]));
    assert.throws(() => d.next(), FrameError);
  });
});

describe('batches and codecs', () => {
  const entries = [
    {
      meta: { payload_size: 0, partition_key: 'a', properties: [{ key: 'x', value: 'y' }] },
      payload: new Uint8Array([1, 2]),
    },
    { meta: { payload_size: 0, partition_key: 'b', compacted_out: true }, payload: new Uint8Array([]) },
    { meta: { payload_size: 0, partition_key: 'c', null_value: true }, payload: new Uint8Array([]) },
  ];

  it('splits what it builds, keeping compacted_out and null_value', () => {
    const out = splitBatch(buildBatch(entries), 3);
    assert.equal(out.length, 3);
    assert.deepEqual([...(out[0]?.payload ?? [])], [1, 2]);
    assert.equal(out[0]?.meta.properties?.[0]?.value, 'y');
    assert.equal(out[1]?.meta.compacted_out, true);
    assert.equal(out[2]?.meta.null_value, true);
  });

  it('rejects a batch claiming more messages than it holds', () => {
    assert.throws(() => splitBatch(buildBatch(entries), 4), /truncated/);
  });

  it('round-trips lz4, zlib and snappy, and enforces the declared size', () => {
    const data = new TextEncoder().encode('pulsar '.repeat(500));
    for (const kind of ['lz4', 'zlib', 'snappy'] as const) {
      const c = compress(kind, data);
      assert.ok(c.data.length < data.length, kind);
      assert.ok(Buffer.from(decompress(c.type, c.data, data.length, 1 << 20)).equals(data), kind);
      assert.throws(() => decompress(c.type, c.data, data.length + 1, 1 << 20), {
        code: 'PULSAR_PROTOCOL_ERROR',
      });
    }
    assert.throws(() => decompress(CompressionType.ZLIB, deflateSync(data), data.length, 100), /exceeds/);
  });

  it('refuses an unknown codec', () => {
    assert.throws(() => decompress(9 as CompressionType, new Uint8Array(1), 1, 10), {
      code: 'PULSAR_UNSUPPORTED',
    });
  });
});

describe('MessageId and Backoff', () => {
  it('orders earliest < real ids < latest, batch index last', () => {
    const a = new MessageId(5n, 1n);
    const b = new MessageId(5n, 2n, -1, 0);
    const c = new MessageId(5n, 2n, -1, 3);
    assert.ok(MessageId.earliest.compare(a) < 0);
    assert.ok(a.compare(b) < 0 && b.compare(c) < 0);
    assert.ok(c.compare(MessageId.latest) < 0);
    assert.deepEqual(MessageId.fromData(c.toData()), new MessageId(5n, 2n, -1, 3));
  });

  it('grows exponentially with jitter in [ceiling/2, ceiling], capped, and resets', () => {
    for (const r of [0, 0.5, 0.999]) {
      const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => r });
      const ceilings = [100, 200, 400, 800, 1000, 1000];
      for (const ceil of ceilings) {
        const d = b.next();
        assert.ok(d >= ceil / 2 && d <= ceil, `${d} not in [${ceil / 2}, ${ceil}]`);
      }
      b.reset();
      assert.ok(b.next() <= 100);
    }
  });
});

describe('unpackEntry', () => {
  const enc = (x: string) => new TextEncoder().encode(x);
  const batch = buildBatch([
    { meta: { payload_size: 0, partition_key: 'a' }, payload: enc('a1') },
    { meta: { payload_size: 0, partition_key: 'b', compacted_out: true }, payload: enc('') },
    { meta: { payload_size: 0, partition_key: 'c', null_value: true }, payload: enc('') },
    { meta: { payload_size: 0, partition_key: 'd' }, payload: enc('d1') },
  ]);
  const meta = { producer_name: 'p', sequence_id: 10n, publish_time: 1n, num_messages_in_batch: 4 };
  const cmd = { consumer_id: 1n, message_id: { ledgerId: 3n, entryId: 9n } };

  it('drops compacted_out entries, flags null_value tombstones, numbers batch indexes', () => {
    const z = compress('zlib', batch);
    const out = unpackEntry(
      't',
      cmd,
      { ...meta, compression: z.type, uncompressed_size: batch.length },
      z.data,
      1 << 20,
      () => false,
    );
    assert.deepEqual(
      out.messages.map((m) => [m.key, m.id.batchIndex, m.isTombstone]),
      [
        ['a', 0, false],
        ['c', 2, true],
        ['d', 3, false],
      ],
    );
    assert.equal(out.skipped, 1);
    assert.equal(out.batchSize, 4);
  });

  it('skips entries the ack_set marks as acked and ids the consumer already delivered', () => {
    // ack_set bit i set = message i still unacked; here 0 and 3 are.
    const out = unpackEntry(
      't',
      { ...cmd, ack_set: [0b1001n] },
      meta,
      batch,
      1 << 20,
      (id) => id.batchIndex === 0,
    );
    assert.deepEqual(
      out.messages.map((m) => m.key),
      ['d'],
    );
    assert.equal(out.skipped, 3);
  });

  it('refuses encrypted entries and oversized batches instead of delivering them', () => {
    assert.throws(
      () =>
        unpackEntry('t', cmd, { ...meta, encryption_keys: [new Uint8Array(1)] }, batch, 1 << 20, () => false),
      { code: 'PULSAR_UNSUPPORTED' },
    );
    assert.throws(
      () => unpackEntry('t', cmd, { ...meta, num_messages_in_batch: 10_001 }, batch, 1 << 20, () => false),
      {
        code: 'PULSAR_PROTOCOL_ERROR',
      },
    );
  });
});
