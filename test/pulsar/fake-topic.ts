// One topic served by the fake broker, for the bootstrap's corner cases that a
// real broker produces only now and then: entries (one message, or a batch) on
// ledger 1 from entry 0; each reader subscription is delivered from its
// start_message_id as its FLOW permits allow; GET_LAST_MESSAGE_ID answers the
// last entry (or a chosen id). `hold` delivers nothing (a first read slow after a
// broker restart); `dropAfter` closes the connection once that many entries went
// out (a reader reconnecting mid-read).
import type net from 'node:net';
import { buildBatch } from '../../connectors/pulsar/client/batch.js';
import { encodeCommand, encodePayloadCommand } from '../../connectors/pulsar/client/frame.js';
import {
  type BaseCommand,
  CommandType,
  type MessageIdData,
  type MessageMetadata,
} from '../../connectors/pulsar/client/pulsar-api.js';
import { FakeBroker } from './fake-broker.js';

export interface FakeMessage {
  key: string;
  payload: string;
  properties?: Record<string, string>;
}

interface Subscription {
  sock: net.Socket;
  consumerId: bigint;
  next: number;
  permits: number;
}

const LEDGER = 1n;
const bytes = (s: string) => new TextEncoder().encode(s);
const keyValues = (p: Record<string, string> | undefined) =>
  Object.entries(p ?? {}).map(([key, value]) => ({ key, value }));

export class FakeTopic {
  /** Each entry is one message, or a batch when it holds more than one. */
  readonly entries: FakeMessage[][] = [];
  /** What GET_LAST_MESSAGE_ID answers instead of the last entry. */
  last: MessageIdData | undefined;
  hold = false;
  dropAfter: number | undefined;
  /** Every SUBSCRIBE's start_message_id, in order. */
  readonly starts: (MessageIdData | undefined)[] = [];
  #subs: Subscription[] = [];
  #sent = 0;

  private constructor(readonly broker: FakeBroker) {}

  static async start(): Promise<FakeTopic> {
    let topic: FakeTopic | undefined;
    const broker = await FakeBroker.start((f, sock) => topic?.handle(f.command, sock) ?? false);
    topic = new FakeTopic(broker);
    return topic;
  }

  get url(): string {
    return this.broker.url;
  }

  /** Delivers what `hold` kept back. */
  release(): void {
    this.hold = false;
    for (const s of this.#subs) this.#pump(s);
  }

  close(): Promise<void> {
    return this.broker.close();
  }

  private handle(c: BaseCommand, sock: net.Socket): boolean {
    switch (c.type) {
      case CommandType.SUBSCRIBE: {
        const s = c.subscribe!;
        this.starts.push(s.start_message_id);
        const start = s.start_message_id;
        // As the broker does: a start id is a batch position, so its entry comes again
        // (the client drops what it already handed out); earliest is entry 0.
        const next = start === undefined || BigInt.asIntN(64, start.entryId) < 0n ? 0 : Number(start.entryId);
        this.#subs = this.#subs.filter((x) => !(x.sock === sock && x.consumerId === s.consumer_id));
        this.#subs.push({ sock, consumerId: s.consumer_id, next, permits: 0 });
        sock.write(encodeCommand({ type: CommandType.SUCCESS, success: { request_id: s.request_id } }));
        return true;
      }
      case CommandType.FLOW: {
        const f = c.flow!;
        const sub = this.#subs.find((x) => x.sock === sock && x.consumerId === f.consumer_id);
        if (sub) {
          sub.permits += f.messagePermits;
          this.#pump(sub);
        }
        return true;
      }
      case CommandType.GET_LAST_MESSAGE_ID: {
        const g = c.getLastMessageId!;
        sock.write(
          encodeCommand({
            type: CommandType.GET_LAST_MESSAGE_ID_RESPONSE,
            getLastMessageIdResponse: { request_id: g.request_id, last_message_id: this.#lastId() },
          }),
        );
        return true;
      }
      case CommandType.CLOSE_CONSUMER:
        this.#subs = this.#subs.filter(
          (x) => !(x.sock === sock && x.consumerId === c.close_consumer?.consumer_id),
        );
        return false;
      default:
        return false;
    }
  }

  #lastId(): MessageIdData {
    if (this.last !== undefined) return this.last;
    const n = this.entries.length;
    if (n === 0) return { ledgerId: LEDGER, entryId: (1n << 64n) - 1n };
    const size = this.entries[n - 1]!.length;
    return { ledgerId: LEDGER, entryId: BigInt(n - 1), ...(size > 1 ? { batch_index: size - 1 } : {}) };
  }

  #pump(sub: Subscription): void {
    while (!this.hold && sub.permits > 0 && sub.next < this.entries.length && !sub.sock.destroyed) {
      const entryId = sub.next++;
      const messages = this.entries[entryId]!;
      sub.permits -= messages.length;
      sub.sock.write(this.#frame(sub.consumerId, BigInt(entryId), messages));
      if (++this.#sent === this.dropAfter) {
        this.dropAfter = undefined;
        sub.sock.destroy();
        this.#subs = this.#subs.filter((x) => x.sock !== sub.sock);
        return;
      }
    }
  }

  #frame(consumerId: bigint, entryId: bigint, messages: FakeMessage[]): Uint8Array {
    const command = {
      type: CommandType.MESSAGE,
      message: { consumer_id: consumerId, message_id: { ledgerId: LEDGER, entryId } },
    };
    const meta: MessageMetadata = { producer_name: 'fake', sequence_id: entryId, publish_time: 1n };
    if (messages.length === 1) {
      const m = messages[0]!;
      return encodePayloadCommand(
        command,
        { ...meta, partition_key: m.key, properties: keyValues(m.properties) },
        bytes(m.payload),
      );
    }
    const batch = buildBatch(
      messages.map((m) => ({
        meta: { partition_key: m.key, properties: keyValues(m.properties), payload_size: 0 },
        payload: bytes(m.payload),
      })),
    );
    return encodePayloadCommand(command, { ...meta, num_messages_in_batch: messages.length }, batch);
  }
}
