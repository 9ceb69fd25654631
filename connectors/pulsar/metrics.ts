// The Pulsar connector's metrics (prom-client), served at /metrics and kept
// promtool-clean: fixed label sets only (reasons, results, peers), and of the
// process only what has a Prometheus-conventional name.

import { Counter, Gauge, Registry } from 'prom-client';
import { registerProcessMetrics } from '../shared/process-metrics.js';
import { REJECT_REASONS } from './format.js';

export interface LagSource {
  lagMessages(): number;
  /** Messages in the queue between the readers and the apply loop, and in the batch. */
  queueDepth(): number;
  lagSeconds(): number;
}

export class PulsarMetrics {
  readonly registry = new Registry();
  readonly received: Counter;
  readonly rejected: Counter;
  readonly applied: Counter;
  readonly transactions: Counter;
  readonly lastApply: Gauge;
  readonly resyncs: Counter;
  readonly reconnects: Counter;
  readonly ready: Gauge;
  readonly proxyConnected: Gauge;
  readonly brokerConnected: Gauge;
  readonly objects: Gauge;
  readonly bootstrapSeconds: Gauge;
  readonly deadLettered: Counter;

  constructor(lag: LagSource) {
    const registers = [this.registry];
    this.received = new Counter({
      name: 'kakehi_pulsar_messages_received_total',
      help: 'Messages read from the route topics, bootstraps and resyncs included.',
      registers,
    });
    this.rejected = new Counter({
      name: 'kakehi_pulsar_messages_rejected_total',
      help: 'Messages skipped, by reason (docs/pulsar.md).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REJECT_REASONS) this.rejected.inc({ reason }, 0);
    this.applied = new Counter({
      name: 'kakehi_pulsar_changes_applied_total',
      help: 'Changes the proxy acknowledged as live that changed something.',
      registers,
    });
    this.transactions = new Counter({
      name: 'kakehi_pulsar_transactions_total',
      help: 'Transactions sent to the proxy, by result (ok, refused: some messages dropped, error: not answered).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['ok', 'refused', 'error']) this.transactions.inc({ result }, 0);
    this.lastApply = new Gauge({
      name: 'kakehi_pulsar_last_apply_timestamp_seconds',
      help: 'When the proxy last acknowledged a transaction from this connector (Unix seconds).',
      registers,
    });
    this.resyncs = new Counter({
      name: 'kakehi_pulsar_resyncs_total',
      help: 'Rebuilds from the compacted view diffed against the proxy, by result (changed, unchanged, failed).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['changed', 'unchanged', 'failed']) this.resyncs.inc({ result }, 0);
    this.reconnects = new Counter({
      name: 'kakehi_pulsar_reconnects_total',
      help: 'Connections re-established, by peer (broker, proxy).',
      labelNames: ['peer'],
      registers,
    });
    for (const peer of ['broker', 'proxy']) this.reconnects.inc({ peer }, 0);
    this.ready = new Gauge({
      name: 'kakehi_pulsar_ready',
      help: '1 once the first bootstrap was applied to the proxy.',
      registers,
    });
    this.proxyConnected = new Gauge({
      name: 'kakehi_pulsar_proxy_connected',
      help: 'Whether the connector is connected to the proxy command socket.',
      registers,
    });
    this.brokerConnected = new Gauge({
      name: 'kakehi_pulsar_broker_connected',
      help: 'Whether the connector holds a connection to the Pulsar broker.',
      registers,
    });
    this.objects = new Gauge({
      name: 'kakehi_pulsar_desired_objects',
      help: 'Objects the route topics describe (puts and deletes), as last read.',
      registers,
    });
    this.bootstrapSeconds = new Gauge({
      name: 'kakehi_pulsar_bootstrap_duration_seconds',
      help: 'How long the last bootstrap or resync took, from the first read to the proxy acknowledgement.',
      registers,
    });
    this.deadLettered = new Counter({
      name: 'kakehi_pulsar_dead_lettered_total',
      help: 'Skipped messages forwarded to the dead-letter topic, by result (sent, failed).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['sent', 'failed']) this.deadLettered.inc({ result }, 0);
    new Gauge({
      name: 'kakehi_pulsar_lag_messages',
      help: 'Messages received from the broker and not yet applied (reader queues and the batch).',
      registers,
      collect() {
        this.set(lag.lagMessages());
      },
    });
    new Gauge({
      name: 'kakehi_pulsar_queue_depth',
      help: "Messages in the connector's own queue and batch (bounded by --batch-max each); the rest of the lag is in the reader queues.",
      registers,
      collect() {
        this.set(lag.queueDepth());
      },
    });
    new Gauge({
      name: 'kakehi_pulsar_lag_seconds',
      help: 'Age (since publish) of the oldest message received and not yet applied; 0 when none waits.',
      registers,
      collect() {
        this.set(lag.lagSeconds());
      },
    });
    registerProcessMetrics(this.registry);
  }
}
