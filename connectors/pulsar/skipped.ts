// Messages the connector skips: each is logged, counted, kept among the last
// problems (for /status and `kakehi ctl connectors`) and forwarded to the
// dead-letter topic once, however many resyncs read it again. Bounded: the last
// 100 problems and 10,000 remembered skips; the dead-letter producer's queue.

import type { Logger } from '../../src/log/logger.js';
import type { Message, Producer, PulsarClient } from './client/index.js';
import type { RejectReason } from './format.js';
import type { PulsarMetrics } from './metrics.js';

const MAX_PROBLEMS = 100;
const MAX_REMEMBERED = 10_000;

export interface Problem {
  item: string;
  reason: string;
  at: string;
}

export class SkippedMessages {
  readonly problems: Problem[] = [];
  readonly #seen = new Set<string>();
  #deadLetter: { topic: string; producer: Promise<Producer> } | undefined;

  constructor(
    private readonly pulsar: PulsarClient,
    private readonly metrics: PulsarMetrics,
    private readonly log: Logger,
    public deadLetterTopic: string | undefined,
  ) {}

  /** Records a skip; false when this very skip was recorded before (a resync read it again). */
  skip(
    item: string,
    reason: RejectReason,
    detail: string,
    original?: { topic: string; m: Message },
  ): boolean {
    // The same refusal read again by a resync names its change at another index.
    const id = `${item} ${reason} ${detail.replace(/changes\[\d+\]/g, 'changes[]')}`;
    if (this.#seen.has(id)) return false;
    this.#seen.add(id);
    if (this.#seen.size > MAX_REMEMBERED) {
      const oldest = this.#seen.values().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
    this.log.warn({ item, reason, detail }, 'message skipped');
    this.metrics.rejected.inc({ reason });
    this.problems.push({ item, reason: `${reason}: ${detail}`, at: new Date().toISOString() });
    if (this.problems.length > MAX_PROBLEMS) this.problems.shift();
    if (original !== undefined) this.#forward(original.topic, original.m, reason, detail);
    return true;
  }

  /** A new dead-letter topic (SIGHUP): the old producer goes. */
  retarget(topic: string | undefined): void {
    if (topic === this.deadLetterTopic) return;
    this.deadLetterTopic = topic;
    const old = this.#deadLetter?.producer;
    this.#deadLetter = undefined;
    old?.then((p) => p.close()).catch(() => undefined);
  }

  #forward(topic: string, m: Message, reason: string, detail: string): void {
    const dlq = this.deadLetterTopic;
    if (dlq === undefined) return;
    if (this.#deadLetter?.topic !== dlq) {
      const producer = this.pulsar.createProducer({
        topic: dlq,
        maxPendingMessages: 1_000,
        sendTimeoutMs: 30_000,
      });
      producer.catch(() => undefined);
      this.#deadLetter = { topic: dlq, producer };
    }
    this.#deadLetter.producer
      .then((p) =>
        p.send({
          ...(m.key !== undefined ? { key: m.key } : {}),
          payload: m.payload,
          properties: {
            ...m.properties,
            'kakehi-error-reason': reason,
            'kakehi-error': detail.slice(0, 1_000),
            'kakehi-origin-topic': topic,
            'kakehi-origin-id': m.id.toString(),
          },
        }),
      )
      .then(
        () => this.metrics.deadLettered.inc({ result: 'sent' }),
        (err: Error) => {
          this.metrics.deadLettered.inc({ result: 'failed' });
          this.log.warn(
            { err: err.message, topic: dlq },
            'could not forward a skipped message to the dead-letter topic',
          );
        },
      );
  }
}
