// Reader: a non-durable, exclusive subscription that starts at a message id
// (default earliest), never acks, and on reconnect resumes after the last message
// it handed out. A thin face over Consumer.

import type { PulsarClient } from './client.js';
import { Consumer, type ReaderOptions } from './consumer.js';
import { MessageId } from './message-id.js';
import type { Message } from './message-unpack.js';

export class Reader {
  readonly consumer: Consumer;

  constructor(client: PulsarClient, opts: ReaderOptions) {
    this.consumer = new Consumer(client, {
      ...opts,
      subscription:
        opts.subscription ?? `reader-${client.newId()}-${Math.random().toString(36).slice(2, 10)}`,
      subscriptionType: 'exclusive',
      durable: false,
      startMessageId: opts.startMessageId ?? MessageId.earliest,
    });
  }

  readNext(signal?: AbortSignal): Promise<Message> {
    return this.consumer.receive(signal);
  }

  /** The next already-received message if `wanted` accepts it; never waits. */
  readBuffered(wanted: (m: Message) => boolean): Message | undefined {
    return this.consumer.receiveBuffered(wanted);
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return this.consumer[Symbol.asyncIterator]();
  }

  getLastMessageId(): Promise<MessageId> {
    return this.consumer.getLastMessageId();
  }

  seek(target: MessageId | number): Promise<void> {
    return this.consumer.seek(target);
  }

  close(): Promise<void> {
    return this.consumer.close();
  }
}
