// Producer: keys and properties, optional batching and compression, a pending
// queue bounded by count and bytes (fail fast when full), a send timeout, and
// after a reconnect the in-order resend of pending sends under their original
// sequence ids (never reused, never duplicated).

import { buildBatch } from './batch.js';
import type { PulsarClient } from './client.js';
import { compress, type ProducerCompression } from './compression.js';
import type { CommandHandler, Connection } from './connection.js';
import { PulsarClientError } from './errors.js';
import { encodePayloadCommand, type Frame } from './frame.js';
import { MessageId } from './message-id.js';
import { type BaseCommand, CommandType, type MessageMetadata, SERVER_ERRORS } from './pulsar-api.js';
import { Reconnector } from './reconnector.js';

export const MAX_PENDING_MESSAGES = 1000;
export const MAX_PENDING_BYTES = 32 * 1024 * 1024;
export const SEND_TIMEOUT_MS = 30_000;
export const BATCH_MAX_MESSAGES = 1000;
export const BATCH_MAX_BYTES = 128 * 1024;
export const BATCH_MAX_DELAY_MS = 10;

export interface ProducerOptions {
  topic: string;
  /** Broker-assigned when omitted; kept across reconnects. */
  producerName?: string;
  /** Pending (unacknowledged) messages; a send beyond it fails at once with PULSAR_QUEUE_FULL. */
  maxPendingMessages?: number;
  /** Pending payload bytes; a send beyond it fails at once with PULSAR_QUEUE_FULL. */
  maxPendingBytes?: number;
  /** A send not confirmed within this fails with PULSAR_SEND_TIMEOUT; 0 disables. */
  sendTimeoutMs?: number;
  batching?: { enabled: boolean; maxMessages?: number; maxBytes?: number; maxDelayMs?: number };
  compression?: ProducerCompression;
}

export interface OutgoingMessage {
  payload: Uint8Array | string;
  /** Partition/compaction key. */
  key?: string;
  properties?: Record<string, string>;
  eventTime?: Date;
  /** Marks a tombstone (null value) for compaction; payload should be empty. */
  nullValue?: boolean;
}

interface PendingMessage {
  msg: OutgoingMessage;
  payload: Uint8Array;
  sequenceId: bigint;
  resolve: (id: MessageId) => void;
  reject: (err: Error) => void;
}

/** One SEND on the wire: a single message or a batch. */
interface Op {
  sequenceId: bigint;
  highestSequenceId: bigint;
  messages: PendingMessage[];
  metadata: MessageMetadata;
  payload: Uint8Array;
  deadline: number;
  bytes: number;
}

const enc = new TextEncoder();

export class Producer implements CommandHandler {
  readonly topic: string;
  readonly id: bigint;
  private readonly opts: Required<Omit<ProducerOptions, 'producerName' | 'batching'>> & {
    batching: { enabled: boolean; maxMessages: number; maxBytes: number; maxDelayMs: number };
  };
  private name: string | undefined;
  private conn: Connection | undefined;
  private state: 'idle' | 'connecting' | 'ready' | 'closed' = 'idle';
  private nextSequenceId = 0n;
  private epoch = 0n;
  private readonly ops: Op[] = [];
  private batch: PendingMessage[] = [];
  private batchBytes = 0;
  private batchTimer: NodeJS.Timeout | undefined;
  private pendingCount = 0;
  private pendingBytesTotal = 0;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private readonly reconnect: Reconnector;
  private readonly flushWaiters: Array<() => void> = [];

  constructor(
    private readonly client: PulsarClient,
    opts: ProducerOptions,
  ) {
    this.topic = opts.topic;
    this.id = client.newId();
    this.name = opts.producerName;
    this.opts = {
      topic: opts.topic,
      maxPendingMessages: opts.maxPendingMessages ?? MAX_PENDING_MESSAGES,
      maxPendingBytes: opts.maxPendingBytes ?? MAX_PENDING_BYTES,
      sendTimeoutMs: opts.sendTimeoutMs ?? SEND_TIMEOUT_MS,
      compression: opts.compression ?? 'none',
      batching: {
        enabled: opts.batching?.enabled ?? false,
        maxMessages: opts.batching?.maxMessages ?? BATCH_MAX_MESSAGES,
        maxBytes: opts.batching?.maxBytes ?? BATCH_MAX_BYTES,
        maxDelayMs: opts.batching?.maxDelayMs ?? BATCH_MAX_DELAY_MS,
      },
    };
    this.reconnect = new Reconnector(client, {
      role: 'producer',
      topic: this.topic,
      connect: () => this.connect(),
      isReady: () => this.state === 'ready',
      retry: (err) => this.scheduleReconnect(err),
    });
  }

  get producerName(): string | undefined {
    return this.name;
  }

  /** Messages accepted by send() and not yet confirmed or failed. */
  get pendingMessages(): number {
    return this.pendingCount;
  }

  get pendingBytes(): number {
    return this.pendingBytesTotal;
  }

  get isConnected(): boolean {
    return this.state === 'ready';
  }

  /** A method, so TypeScript does not narrow `state` across awaits. */
  get isClosed(): boolean {
    return this.state === 'closed';
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    this.state = 'connecting';
    const conn = await this.client.lookup(this.topic);
    if (this.isClosed) return;
    conn.registerProducer(this.id, this);
    const requestId = conn.newRequestId();
    const producer: NonNullable<BaseCommand['producer']> = {
      topic: this.topic,
      producer_id: this.id,
      request_id: requestId,
      epoch: this.epoch,
    };
    if (this.name) producer.producer_name = this.name;
    let res: BaseCommand;
    try {
      res = await conn.request(requestId, { type: CommandType.PRODUCER, producer });
    } catch (err) {
      conn.unregisterProducer(this.id);
      throw err;
    }
    if (this.isClosed) {
      conn.unregisterProducer(this.id);
      return;
    }
    const ok = res.producer_success;
    if (!ok) throw new PulsarClientError('PULSAR_PROTOCOL_ERROR', `unexpected answer to PRODUCER`);
    this.name = ok.producer_name;
    this.epoch++;
    // With broker deduplication on, continue after what the broker already stored.
    const last = ok.last_sequence_id ?? -1n;
    if (last >= this.nextSequenceId) this.nextSequenceId = last + 1n;
    this.conn = conn;
    this.state = 'ready';
    this.reconnect.connected();
    // Resend in order under the original sequence ids; a broker with dedup drops what it already has.
    for (const op of this.ops) this.writeOp(op);
  }

  onConnectionClosed(error: Error): void {
    this.conn = undefined;
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: Error): void {
    if (this.state === 'closed' || this.reconnect.pending) return;
    this.state = 'connecting';
    this.reconnect.schedule(error);
  }

  private dropConnection(error: Error): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.unregisterProducer(this.id);
    this.scheduleReconnect(error);
  }

  onFrame(f: Frame): void {
    const c = f.command;
    if (c.type === CommandType.SEND_RECEIPT && c.send_receipt) {
      this.onReceipt(c.send_receipt.sequence_id, c.send_receipt.message_id);
    } else if (c.type === CommandType.SEND_ERROR && c.send_error) {
      const name = SERVER_ERRORS[c.send_error.error] ?? String(c.send_error.error);
      if (name === 'TopicTerminatedError') {
        this.failAll(
          new PulsarClientError('PULSAR_SERVER_ERROR', `${name}: ${c.send_error.message}`, {
            serverError: name,
          }),
        );
        return;
      }
      // Transient (checksum, persistence): reconnect and resend from the head, in order.
      this.dropConnection(new PulsarClientError('PULSAR_SERVER_ERROR', `${name}: ${c.send_error.message}`));
    } else if (c.type === CommandType.CLOSE_PRODUCER) {
      this.dropConnection(new PulsarClientError('PULSAR_CONNECTION_CLOSED', 'producer closed by broker'));
    }
  }

  private onReceipt(seq: bigint, idData: import('./pulsar-api.js').MessageIdData | undefined): void {
    const op = this.ops[0];
    // Older receipts belong to ops already failed by timeout, or to resends the broker deduplicated.
    if (!op || seq < op.sequenceId) return;
    if (seq > op.sequenceId) {
      this.dropConnection(
        new PulsarClientError('PULSAR_PROTOCOL_ERROR', `receipt for ${seq}, expected ${op.sequenceId}`),
      );
      return;
    }
    this.ops.shift();
    this.release(op);
    const base = idData ? MessageId.fromData(idData) : new MessageId(-1n, -1n);
    const n = op.messages.length;
    op.messages.forEach((m, i) => {
      m.resolve(
        n > 1 || this.opts.batching.enabled
          ? new MessageId(base.ledgerId, base.entryId, base.partition, i, n)
          : new MessageId(base.ledgerId, base.entryId, base.partition),
      );
    });
    this.checkFlushed();
  }

  /** Queues a message; resolves with its id once the broker has stored it. */
  send(msg: OutgoingMessage): Promise<MessageId> {
    if (this.state === 'closed')
      return Promise.reject(new PulsarClientError('PULSAR_CLOSED', 'producer is closed'));
    const payload = typeof msg.payload === 'string' ? enc.encode(msg.payload) : msg.payload;
    const maxSize = this.conn?.maxMessageSize ?? 5 * 1024 * 1024;
    if (payload.length > maxSize) {
      return Promise.reject(
        new PulsarClientError(
          'PULSAR_MESSAGE_TOO_LARGE',
          `message of ${payload.length} bytes exceeds ${maxSize}`,
        ),
      );
    }
    if (this.pendingCount + 1 > this.opts.maxPendingMessages) {
      return Promise.reject(
        new PulsarClientError(
          'PULSAR_QUEUE_FULL',
          `${this.topic}: ${this.pendingCount} messages pending (max ${this.opts.maxPendingMessages}); broker ${this.state === 'ready' ? 'slow' : 'unreachable'}`,
        ),
      );
    }
    if (this.pendingBytesTotal + payload.length > this.opts.maxPendingBytes) {
      return Promise.reject(
        new PulsarClientError(
          'PULSAR_QUEUE_FULL',
          `${this.topic}: ${this.pendingBytesTotal} bytes pending (max ${this.opts.maxPendingBytes}); broker ${this.state === 'ready' ? 'slow' : 'unreachable'}`,
        ),
      );
    }
    this.pendingCount++;
    this.pendingBytesTotal += payload.length;
    return new Promise((resolve, reject) => {
      const pm: PendingMessage = { msg, payload, sequenceId: this.nextSequenceId++, resolve, reject };
      if (!this.opts.batching.enabled) {
        this.enqueueOp([pm]);
        return;
      }
      this.batch.push(pm);
      this.batchBytes += payload.length;
      const b = this.opts.batching;
      if (this.batch.length >= b.maxMessages || this.batchBytes >= b.maxBytes) this.flushBatch();
      else if (!this.batchTimer) this.batchTimer = setTimeout(() => this.flushBatch(), b.maxDelayMs);
    });
  }

  private flushBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (this.batch.length === 0) return;
    const msgs = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.enqueueOp(msgs);
  }

  private enqueueOp(msgs: PendingMessage[]): void {
    const first = msgs[0] as PendingMessage;
    const last = msgs[msgs.length - 1] as PendingMessage;
    const batched = this.opts.batching.enabled;
    let raw: Uint8Array;
    const metadata: MessageMetadata = {
      producer_name: this.name ?? '',
      sequence_id: first.sequenceId,
      publish_time: BigInt(Date.now()),
    };
    if (batched) {
      raw = buildBatch(
        msgs.map((m) => ({
          meta: {
            payload_size: m.payload.length,
            partition_key: m.msg.key,
            properties: toKeyValues(m.msg.properties),
            event_time: m.msg.eventTime ? BigInt(m.msg.eventTime.getTime()) : undefined,
            sequence_id: m.sequenceId,
            null_value: m.msg.nullValue || undefined,
          },
          payload: m.payload,
        })),
      );
      metadata.num_messages_in_batch = msgs.length;
    } else {
      raw = first.payload;
      if (first.msg.key !== undefined) metadata.partition_key = first.msg.key;
      if (first.msg.properties) metadata.properties = toKeyValues(first.msg.properties);
      if (first.msg.eventTime) metadata.event_time = BigInt(first.msg.eventTime.getTime());
      if (first.msg.nullValue) metadata.null_value = true;
    }
    const { type, data } = compress(this.opts.compression, raw);
    if (this.opts.compression !== 'none') {
      metadata.compression = type;
      metadata.uncompressed_size = raw.length;
    }
    const op: Op = {
      sequenceId: first.sequenceId,
      highestSequenceId: last.sequenceId,
      messages: msgs,
      metadata,
      payload: data,
      deadline: this.opts.sendTimeoutMs > 0 ? Date.now() + this.opts.sendTimeoutMs : Number.POSITIVE_INFINITY,
      bytes: msgs.reduce((n, m) => n + m.payload.length, 0),
    };
    this.ops.push(op);
    if (this.state === 'ready') this.writeOp(op);
    this.armTimeout();
  }

  private writeOp(op: Op): void {
    const conn = this.conn;
    if (!conn) return;
    if (!op.metadata.producer_name) op.metadata.producer_name = this.name ?? '';
    const send: NonNullable<BaseCommand['send']> = {
      producer_id: this.id,
      sequence_id: op.sequenceId,
      num_messages: op.messages.length,
    };
    if (op.highestSequenceId !== op.sequenceId) send.highest_sequence_id = op.highestSequenceId;
    conn.write(encodePayloadCommand({ type: CommandType.SEND, send }, op.metadata, op.payload));
  }

  /** One timer for the oldest op's deadline; ops fail in order, oldest first. */
  private armTimeout(): void {
    if (this.timeoutTimer || this.opts.sendTimeoutMs <= 0) return;
    const head = this.ops[0];
    if (!head) return;
    this.timeoutTimer = setTimeout(
      () => {
        this.timeoutTimer = undefined;
        const now = Date.now();
        while (this.ops[0] && (this.ops[0] as Op).deadline <= now) {
          const op = this.ops.shift() as Op;
          this.release(op);
          const err = new PulsarClientError(
            'PULSAR_SEND_TIMEOUT',
            `${this.topic}: not confirmed within ${this.opts.sendTimeoutMs} ms (${this.state === 'ready' ? 'connected' : 'broker unreachable'})`,
          );
          for (const m of op.messages) m.reject(err);
        }
        this.checkFlushed();
        this.armTimeout();
      },
      Math.max(0, head.deadline - Date.now()),
    );
    // Pending sends are kept alive by the socket or the reconnect timer, not by this one.
    this.timeoutTimer.unref();
  }

  private release(op: Op): void {
    this.pendingCount -= op.messages.length;
    this.pendingBytesTotal -= op.bytes;
  }

  private checkFlushed(): void {
    if (this.ops.length === 0 && this.batch.length === 0) for (const w of this.flushWaiters.splice(0)) w();
  }

  /** Sends the open batch and resolves when every pending message is confirmed or failed. */
  flush(): Promise<void> {
    this.flushBatch();
    if (this.ops.length === 0) return Promise.resolve();
    return new Promise((r) => this.flushWaiters.push(r));
  }

  private failAll(err: Error): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    for (const m of this.batch) m.reject(err);
    this.pendingCount -= this.batch.length;
    this.pendingBytesTotal -= this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    for (const op of this.ops.splice(0)) {
      this.release(op);
      for (const m of op.messages) m.reject(err);
    }
    this.checkFlushed();
  }

  /** Fails whatever is still pending (call flush() first to wait for it) and closes. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.reconnect.cancel();
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.client.forget(this);
    this.failAll(new PulsarClientError('PULSAR_CLOSED', 'producer closed with messages pending'));
    const conn = this.conn;
    this.conn = undefined;
    if (conn && !conn.closed) {
      const requestId = conn.newRequestId();
      await conn
        .request(requestId, {
          type: CommandType.CLOSE_PRODUCER,
          close_producer: { producer_id: this.id, request_id: requestId },
        })
        .catch(() => undefined);
      conn.unregisterProducer(this.id);
    }
  }
}

function toKeyValues(p: Record<string, string> | undefined): { key: string; value: string }[] | undefined {
  if (!p) return undefined;
  return Object.entries(p).map(([key, value]) => ({ key, value }));
}
