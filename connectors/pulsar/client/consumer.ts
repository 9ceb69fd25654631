// Consumer: SUBSCRIBE with durable or non-durable cursors, flow
// control over a bounded receive queue, batch and codec unpacking (honouring
// compacted_out and null_value), checksum checks, individual and cumulative
// acks, seek, last-message-id, and resubscription with backoff after failures.

import type { PulsarClient } from './client.js';
import type { CommandHandler, Connection } from './connection.js';
import { PulsarClientError } from './errors.js';
import type { Frame } from './frame.js';
import { MessageId } from './message-id.js';
import { type Message, unpackEntry } from './message-unpack.js';
import { AckType, CommandType, InitialPosition, SubType } from './pulsar-api.js';
import { Reconnector } from './reconnector.js';

export const RECEIVER_QUEUE_SIZE = 100;

export type SubscriptionType = 'exclusive' | 'failover' | 'shared';

export interface ConsumerOptions {
  topic: string;
  subscription: string;
  subscriptionType?: SubscriptionType;
  /** false: the cursor lives only as long as this consumer (a Reader uses this). */
  durable?: boolean;
  /** Where a new subscription starts; default 'latest'. */
  initialPosition?: 'earliest' | 'latest';
  /** Non-durable only: start after this id (or at it with startMessageIdInclusive). */
  startMessageId?: MessageId;
  startMessageIdInclusive?: boolean;
  readCompacted?: boolean;
  /** Messages buffered before the app receives them (flow permits). Default 100. */
  receiverQueueSize?: number;
  consumerName?: string;
}

export type ReaderOptions = Omit<
  ConsumerOptions,
  'subscription' | 'durable' | 'subscriptionType' | 'initialPosition'
> & {
  subscription?: string;
  /** Default MessageId.earliest. */
  startMessageId?: MessageId;
};

type State = 'idle' | 'connecting' | 'ready' | 'closed';

interface BatchTracker {
  remaining: number;
}

const SUB_TYPES: Record<SubscriptionType, SubType> = {
  exclusive: SubType.Exclusive,
  failover: SubType.Failover,
  shared: SubType.Shared,
};

export class Consumer implements CommandHandler {
  readonly topic: string;
  readonly id: bigint;
  private readonly opts: ConsumerOptions;
  private readonly queueSize: number;
  private readonly queue: Message[] = [];
  private readonly waiters: Array<{ resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
  private readonly batches = new Map<string, BatchTracker>();
  private readonly reconnect: Reconnector;
  private conn: Connection | undefined;
  private state: State = 'idle';
  private permitsToReturn = 0;
  /** Messages at or before this id are dropped (reader resume, startMessageId exclusive). */
  private skipUpTo: MessageId | undefined;
  private lastDequeued: MessageId | undefined;
  private startMessageId: MessageId | undefined;
  private endOfTopic = false;
  /** Latest activity flag from ACTIVE_CONSUMER_CHANGE (failover). */
  isActive: boolean | undefined;

  constructor(
    private readonly client: PulsarClient,
    opts: ConsumerOptions,
  ) {
    this.opts = opts;
    this.topic = opts.topic;
    this.id = client.newId();
    this.queueSize = Math.max(1, opts.receiverQueueSize ?? RECEIVER_QUEUE_SIZE);
    this.reconnect = new Reconnector(client, {
      role: 'consumer',
      topic: this.topic,
      connect: () => this.connect(),
      isReady: () => this.state === 'ready',
      retry: (err) => this.scheduleReconnect(err),
    });
    this.startMessageId = opts.startMessageId;
    if (opts.startMessageId && !opts.startMessageIdInclusive && !isSentinel(opts.startMessageId)) {
      this.skipUpTo = opts.startMessageId;
    }
    if (opts.readCompacted && opts.subscriptionType === 'shared') {
      throw new PulsarClientError(
        'PULSAR_INVALID_ARGUMENT',
        'readCompacted needs an exclusive or failover subscription',
      );
    }
  }

  /** Messages buffered and not yet received (bounded by receiverQueueSize plus one batch). */
  get queuedMessages(): number {
    return this.queue.length;
  }

  get hasReachedEndOfTopic(): boolean {
    return this.endOfTopic;
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
    conn.registerConsumer(this.id, this);
    const requestId = conn.newRequestId();
    const o = this.opts;
    const durable = o.durable ?? true;
    const subscribe: NonNullable<import('./pulsar-api.js').BaseCommand['subscribe']> = {
      topic: this.topic,
      subscription: o.subscription,
      subType: SUB_TYPES[o.subscriptionType ?? 'exclusive'],
      consumer_id: this.id,
      request_id: requestId,
      durable,
      initialPosition: o.initialPosition === 'earliest' ? InitialPosition.Earliest : InitialPosition.Latest,
      read_compacted: o.readCompacted ?? false,
    };
    if (o.consumerName) subscribe.consumer_name = o.consumerName;
    // A resuming non-durable cursor restarts at the last message the app saw; older ones are skipped.
    const start = !durable ? (this.lastDequeued ?? this.startMessageId) : undefined;
    if (start) subscribe.start_message_id = start.toData();
    try {
      await conn.request(requestId, { type: CommandType.SUBSCRIBE, subscribe });
    } catch (err) {
      conn.unregisterConsumer(this.id);
      throw err;
    }
    if (this.isClosed) {
      conn.unregisterConsumer(this.id);
      return;
    }
    this.conn = conn;
    this.state = 'ready';
    this.reconnect.connected();
    this.permitsToReturn = 0;
    conn.send({ type: CommandType.FLOW, flow: { consumer_id: this.id, messagePermits: this.queueSize } });
  }

  onConnectionClosed(error: Error): void {
    if (this.conn) this.conn = undefined;
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: Error): void {
    if (this.state === 'closed' || this.reconnect.pending) return;
    this.state = 'connecting';
    // Unreceived messages are redelivered (durable) or re-read from lastDequeued (non-durable).
    this.queue.length = 0;
    this.batches.clear();
    // Non-durable: drop what the app already saw. Durable: accept redelivery duplicates (at-least-once),
    // since an ack lost while disconnected must see its message again.
    if (this.lastDequeued && this.opts.durable === false) this.skipUpTo = this.lastDequeued;
    this.reconnect.schedule(error);
  }

  /** Drops the connection (e.g. on a corrupt message) so the broker redelivers. */
  private dropConnection(reason: string): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.unregisterConsumer(this.id);
    this.scheduleReconnect(new PulsarClientError('PULSAR_PROTOCOL_ERROR', reason));
  }

  onFrame(f: Frame): void {
    const c = f.command;
    switch (c.type) {
      case CommandType.MESSAGE:
        this.onMessage(f);
        return;
      case CommandType.CLOSE_CONSUMER: {
        // Topic unloaded or moved (or a seek): look it up again and resubscribe.
        const conn = this.conn;
        this.conn = undefined;
        conn?.unregisterConsumer(this.id);
        this.scheduleReconnect(
          new PulsarClientError('PULSAR_CONNECTION_CLOSED', 'consumer closed by broker'),
        );
        return;
      }
      case CommandType.REACHED_END_OF_TOPIC:
        this.endOfTopic = true;
        return;
      case CommandType.ACTIVE_CONSUMER_CHANGE:
        this.isActive = c.active_consumer_change?.is_active ?? false;
        return;
      default:
        return;
    }
  }

  private onMessage(f: Frame): void {
    // MESSAGE can follow SUCCESS in the same read, before connect() has resumed and set 'ready':
    // it is for this subscription (handlers are registered per connection), so keep it.
    if (this.state === 'closed') return;
    const cmd = f.command.message;
    const meta = f.metadata;
    if (!cmd || !meta || !f.payload) return;
    if (f.checksumValid === false) {
      this.dropConnection(`checksum mismatch on message ${MessageId.fromData(cmd.message_id)}`);
      return;
    }
    const entryId = MessageId.fromData(cmd.message_id);
    let unpacked: ReturnType<typeof unpackEntry>;
    try {
      unpacked = unpackEntry(this.topic, cmd, meta, f.payload, this.client.options.maxFrameBytes, (id) =>
        this.shouldSkip(id),
      );
    } catch (err) {
      // Never ack what we could not read: reconnect, the broker redelivers.
      this.dropConnection(`message ${entryId}: ${(err as Error).message}`);
      return;
    }
    const { messages: delivered, skipped, batchSize } = unpacked;
    if (batchSize > 0) {
      if (delivered.length > 0) this.batches.set(entryKey(entryId), { remaining: delivered.length });
      // A batch whose messages were all acked before or compacted away still needs its entry acked.
      else if (this.opts.durable ?? true) this.sendAck(AckType.Individual, entryId);
    }
    if (skipped > 0) this.returnPermits(skipped);
    for (const m of delivered) {
      const w = this.waiters.shift();
      if (w) {
        this.markDequeued(m);
        w.resolve(m);
      } else {
        this.queue.push(m);
      }
    }
  }

  private shouldSkip(id: MessageId): boolean {
    return this.skipUpTo !== undefined && id.compare(this.skipUpTo) <= 0;
  }

  private markDequeued(m: Message): void {
    this.lastDequeued = m.id;
    this.returnPermits(1);
  }

  /** Batches permit returns: FLOW once half the queue has been drained. */
  private returnPermits(n: number): void {
    this.permitsToReturn += n;
    if (
      this.permitsToReturn >= Math.max(1, Math.floor(this.queueSize / 2)) &&
      this.conn &&
      this.state === 'ready'
    ) {
      this.conn.send({
        type: CommandType.FLOW,
        flow: { consumer_id: this.id, messagePermits: this.permitsToReturn },
      });
      this.permitsToReturn = 0;
    }
  }

  /** Next message; waits until one arrives, the signal aborts or the consumer closes. */
  receive(signal?: AbortSignal): Promise<Message> {
    if (this.state === 'closed')
      return Promise.reject(new PulsarClientError('PULSAR_CLOSED', 'consumer is closed'));
    const m = this.queue.shift();
    if (m) {
      this.markDequeued(m);
      return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      // The abort listener goes when the wait ends either way: a caller that passes one
      // long-lived signal to every receive() must not collect a listener per message.
      const abort = () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason ?? new PulsarClientError('PULSAR_TIMEOUT', 'receive aborted'));
      };
      const w = {
        resolve: (m: Message) => {
          signal?.removeEventListener('abort', abort);
          resolve(m);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', abort);
          reject(e);
        },
      };
      this.waiters.push(w);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * The next buffered message if `wanted` accepts it, without waiting. Every message
   * of one entry is buffered together, so this reads the rest of a batch.
   */
  receiveBuffered(wanted: (m: Message) => boolean): Message | undefined {
    const m = this.queue[0];
    if (this.state === 'closed' || m === undefined || !wanted(m)) return undefined;
    this.queue.shift();
    this.markDequeued(m);
    return m;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    while (this.state !== 'closed') {
      try {
        yield await this.receive();
      } catch (err) {
        if (this.isClosed) return;
        throw err;
      }
    }
  }

  /** Acks one message; a batched message's entry is acked once all its delivered messages are. */
  acknowledge(m: Message | MessageId): void {
    const id = m instanceof MessageId ? m : m.id;
    if (id.batchIndex >= 0) {
      const key = entryKey(id);
      const t = this.batches.get(key);
      if (t) {
        t.remaining--;
        if (t.remaining > 0) return;
        this.batches.delete(key);
      }
    }
    this.sendAck(AckType.Individual, id.entry());
  }

  /** Acks everything up to and including `m`. Mid-batch, the previous entry is acked (at-least-once). */
  acknowledgeCumulative(m: Message | MessageId): void {
    if (this.opts.subscriptionType === 'shared') {
      throw new PulsarClientError(
        'PULSAR_INVALID_ARGUMENT',
        'cumulative ack is not allowed on shared subscriptions',
      );
    }
    const id = m instanceof MessageId ? m : m.id;
    let target = id.entry();
    if (id.batchIndex >= 0 && id.batchIndex < id.batchSize - 1) {
      if (id.entryId === 0n) return;
      target = new MessageId(id.ledgerId, id.entryId - 1n, id.partition);
    }
    for (const k of [...this.batches.keys()]) {
      const [l, e] = k.split(':').map(BigInt) as [bigint, bigint];
      if (new MessageId(l, e).compare(target) <= 0) this.batches.delete(k);
    }
    this.sendAck(AckType.Cumulative, target);
  }

  private sendAck(type: AckType, id: MessageId): void {
    // Without a connection the ack is lost; the broker redelivers (at-least-once).
    this.conn?.send({
      type: CommandType.ACK,
      ack: { consumer_id: this.id, ack_type: type, message_id: [id.toData()] },
    });
  }

  /** The id of the last message written to the topic (for "caught up" checks). */
  async getLastMessageId(): Promise<MessageId> {
    const conn = await this.readyConnection();
    const requestId = conn.newRequestId();
    const res = await conn.request(requestId, {
      type: CommandType.GET_LAST_MESSAGE_ID,
      getLastMessageId: { consumer_id: this.id, request_id: requestId },
    });
    const r = res.getLastMessageIdResponse;
    if (!r) throw new PulsarClientError('PULSAR_PROTOCOL_ERROR', 'unexpected answer to GET_LAST_MESSAGE_ID');
    return MessageId.fromData(r.last_message_id);
  }

  /** Moves the subscription to `target` (a message id, or a publish time in ms); delivery restarts there. */
  async seek(target: MessageId | number): Promise<void> {
    const conn = await this.readyConnection();
    const requestId = conn.newRequestId();
    const seek: NonNullable<import('./pulsar-api.js').BaseCommand['seek']> = {
      consumer_id: this.id,
      request_id: requestId,
    };
    if (typeof target === 'number') seek.message_publish_time = BigInt(target);
    else seek.message_id = target.entry().toData();
    // The broker disconnects the consumer after a seek; it resumes from the new position.
    this.queue.length = 0;
    this.batches.clear();
    this.lastDequeued = undefined;
    this.skipUpTo = undefined;
    this.startMessageId = typeof target === 'number' ? undefined : target;
    await conn.request(requestId, { type: CommandType.SEEK, seek });
  }

  private async readyConnection(): Promise<Connection> {
    if (this.state === 'closed') throw new PulsarClientError('PULSAR_CLOSED', 'consumer is closed');
    if (this.conn && this.state === 'ready') return this.conn;
    throw new PulsarClientError('PULSAR_CONNECTION_CLOSED', `consumer on ${this.topic} is reconnecting`);
  }

  /** Removes a durable subscription from the broker, then closes. */
  async unsubscribe(): Promise<void> {
    const conn = await this.readyConnection();
    const requestId = conn.newRequestId();
    await conn.request(requestId, {
      type: CommandType.UNSUBSCRIBE,
      unsubscribe: { consumer_id: this.id, request_id: requestId },
    });
    await this.close();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.reconnect.cancel();
    this.client.forget(this);
    const err = new PulsarClientError('PULSAR_CLOSED', 'consumer is closed');
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.queue.length = 0;
    const conn = this.conn;
    this.conn = undefined;
    if (conn && !conn.closed) {
      const requestId = conn.newRequestId();
      await conn
        .request(requestId, {
          type: CommandType.CLOSE_CONSUMER,
          close_consumer: { consumer_id: this.id, request_id: requestId },
        })
        .catch(() => undefined);
      conn.unregisterConsumer(this.id);
    }
  }
}

function isSentinel(id: MessageId): boolean {
  return id.compare(MessageId.earliest) === 0 || id.compare(MessageId.latest) === 0;
}

function entryKey(id: MessageId): string {
  return `${id.ledgerId}:${id.entryId}`;
}
