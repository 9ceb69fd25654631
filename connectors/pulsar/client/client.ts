// PulsarClient: options and defaults, the per-broker connection pool, topic
// lookup (bounded redirects, proxy-through-service-url), partitioned metadata,
// client events, and the factories for producers, consumers and readers.

import type { AuthProvider } from './auth.js';
import { Connection, type ConnectionEvent, type TlsOptions } from './connection.js';
import { Consumer, type ConsumerOptions, type ReaderOptions } from './consumer.js';
import { PulsarClientError } from './errors.js';
import { EventChannel } from './event-channel.js';
import { Producer, type ProducerOptions } from './producer.js';
import { CommandType, LookupType, SERVER_ERRORS } from './pulsar-api.js';
import { Reader } from './reader.js';

export const CONNECT_TIMEOUT_MS = 10_000;
export const OPERATION_TIMEOUT_MS = 30_000;
export const KEEPALIVE_INTERVAL_MS = 30_000;
export const MAX_LOOKUP_REDIRECTS = 20;
export const BACKOFF_INITIAL_MS = 100;
export const BACKOFF_MAX_MS = 30_000;
/** Inbound frames: 5 MiB default max message size plus headers. */
export const MAX_FRAME_BYTES = 5 * 1024 * 1024 + 64 * 1024;
const EVENT_QUEUE_LIMIT = 1000;

export interface ClientOptions {
  /** pulsar://host:port or pulsar+ssl://host:port. */
  serviceUrl: string;
  auth?: AuthProvider;
  tls?: TlsOptions;
  connectTimeoutMs?: number;
  operationTimeoutMs?: number;
  keepAliveIntervalMs?: number;
  maxLookupRedirects?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  maxFrameBytes?: number;
}

export type ClientEvent =
  | ConnectionEvent
  | { type: 'reconnecting'; role: 'producer' | 'consumer'; topic: string; delayMs: number; error: Error }
  | { type: 'reconnected'; role: 'producer' | 'consumer'; topic: string };

export interface ResolvedClientOptions extends Required<Omit<ClientOptions, 'auth' | 'tls'>> {
  auth: AuthProvider | undefined;
  tls: TlsOptions | undefined;
}

/** `my-topic` → `persistent://public/default/my-topic`; `t/ns/x` → `persistent://t/ns/x`. */
export function normalizeTopic(topic: string): string {
  if (topic.includes('://')) return topic;
  const parts = topic.split('/');
  if (parts.length === 1) return `persistent://public/default/${topic}`;
  if (parts.length === 3) return `persistent://${topic}`;
  throw new PulsarClientError('PULSAR_INVALID_ARGUMENT', `invalid topic name ${JSON.stringify(topic)}`);
}

export class PulsarClient {
  readonly options: ResolvedClientOptions;
  private readonly pool = new Map<string, Promise<Connection>>();
  private readonly channel = new EventChannel<ClientEvent>(EVENT_QUEUE_LIMIT);
  private readonly handles = new Set<{ close(): Promise<void> }>();
  private nextId = 1n;
  private closed = false;

  constructor(opts: ClientOptions) {
    const secure = opts.serviceUrl.startsWith('pulsar+ssl://');
    if (!secure && !opts.serviceUrl.startsWith('pulsar://')) {
      throw new PulsarClientError('PULSAR_INVALID_ARGUMENT', `serviceUrl must be pulsar:// or pulsar+ssl://`);
    }
    this.options = {
      serviceUrl: opts.serviceUrl,
      auth: opts.auth,
      tls: opts.tls,
      connectTimeoutMs: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      operationTimeoutMs: opts.operationTimeoutMs ?? OPERATION_TIMEOUT_MS,
      keepAliveIntervalMs: opts.keepAliveIntervalMs ?? KEEPALIVE_INTERVAL_MS,
      maxLookupRedirects: opts.maxLookupRedirects ?? MAX_LOOKUP_REDIRECTS,
      backoffInitialMs: opts.backoffInitialMs ?? BACKOFF_INITIAL_MS,
      backoffMaxMs: opts.backoffMaxMs ?? BACKOFF_MAX_MS,
      maxFrameBytes: opts.maxFrameBytes ?? MAX_FRAME_BYTES,
    };
  }

  get secure(): boolean {
    return this.options.serviceUrl.startsWith('pulsar+ssl://');
  }

  /** Connection, reconnect and auth events; bounded per subscriber (oldest dropped). */
  events(signal?: AbortSignal): AsyncIterableIterator<ClientEvent> & { dropped(): number } {
    return this.channel.subscribe(signal);
  }

  emit(ev: ClientEvent): void {
    this.channel.emit(ev);
  }

  newId(): bigint {
    return this.nextId++;
  }

  /** A pooled connection to `url` (optionally through the service URL as a proxy). */
  getConnection(url: string, proxyToBrokerUrl?: string): Promise<Connection> {
    if (this.closed) return Promise.reject(new PulsarClientError('PULSAR_CLOSED', 'client is closed'));
    const key = proxyToBrokerUrl ? `${url}|${proxyToBrokerUrl}` : url;
    const existing = this.pool.get(key);
    if (existing) return existing;
    const o = this.options;
    const p = Connection.open({
      url,
      proxyToBrokerUrl,
      tls: o.tls,
      auth: o.auth,
      connectTimeoutMs: o.connectTimeoutMs,
      operationTimeoutMs: o.operationTimeoutMs,
      keepAliveIntervalMs: o.keepAliveIntervalMs,
      maxFrameBytes: o.maxFrameBytes,
      onEvent: (ev) => this.emit(ev),
    });
    this.pool.set(key, p);
    p.then(
      (c) => c.onClose(() => this.pool.get(key) === p && this.pool.delete(key)),
      () => this.pool.get(key) === p && this.pool.delete(key),
    );
    return p;
  }

  /** Finds the broker serving `topic` and returns a connection to it. */
  async lookup(topic: string): Promise<Connection> {
    const service = this.options.serviceUrl;
    let conn = await this.getConnection(service);
    let authoritative = false;
    for (let i = 0; i <= this.options.maxLookupRedirects; i++) {
      const requestId = conn.newRequestId();
      const res = await conn.request(requestId, {
        type: CommandType.LOOKUP,
        lookupTopic: { topic, request_id: requestId, authoritative },
      });
      const r = res.lookupTopicResponse;
      if (!r)
        throw new PulsarClientError(
          'PULSAR_PROTOCOL_ERROR',
          `unexpected answer to LOOKUP: ${CommandType[res.type]}`,
        );
      if (r.response === LookupType.Failed || r.error !== undefined) {
        const name = SERVER_ERRORS[r.error ?? 0] ?? String(r.error);
        throw new PulsarClientError('PULSAR_LOOKUP_FAILED', `${topic}: ${name}: ${r.message ?? ''}`, {
          serverError: name,
        });
      }
      const brokerUrl = this.secure ? r.brokerServiceUrlTls : r.brokerServiceUrl;
      if (!brokerUrl) {
        throw new PulsarClientError(
          'PULSAR_LOOKUP_FAILED',
          `${topic}: lookup answer has no ${this.secure ? 'TLS ' : ''}URL`,
        );
      }
      if (r.response === LookupType.Redirect) {
        authoritative = r.authoritative ?? false;
        conn = r.proxy_through_service_url
          ? await this.getConnection(service, brokerUrl)
          : await this.getConnection(brokerUrl);
        continue;
      }
      return r.proxy_through_service_url
        ? this.getConnection(service, brokerUrl)
        : this.getConnection(brokerUrl);
    }
    throw new PulsarClientError(
      'PULSAR_TOO_MANY_REDIRECTS',
      `${topic}: more than ${this.options.maxLookupRedirects} lookup redirects`,
    );
  }

  /** Partition count: 0 for a non-partitioned topic. */
  async getPartitionCount(topic: string): Promise<number> {
    const conn = await this.getConnection(this.options.serviceUrl);
    const requestId = conn.newRequestId();
    const res = await conn.request(requestId, {
      type: CommandType.PARTITIONED_METADATA,
      partitionMetadata: { topic: normalizeTopic(topic), request_id: requestId },
    });
    const r = res.partitionMetadataResponse;
    if (!r) throw new PulsarClientError('PULSAR_PROTOCOL_ERROR', `unexpected answer to PARTITIONED_METADATA`);
    if (r.response === 1 || r.error !== undefined) {
      const name = SERVER_ERRORS[r.error ?? 0] ?? String(r.error);
      throw new PulsarClientError('PULSAR_LOOKUP_FAILED', `${topic}: ${name}: ${r.message ?? ''}`, {
        serverError: name,
      });
    }
    return r.partitions ?? 0;
  }

  /** The topics to use: `[topic]`, or `topic-partition-0..N-1` for a partitioned topic. */
  async getPartitions(topic: string): Promise<string[]> {
    const t = normalizeTopic(topic);
    const n = await this.getPartitionCount(t);
    if (n === 0) return [t];
    return Array.from({ length: n }, (_, i) => `${t}-partition-${i}`);
  }

  async createProducer(opts: ProducerOptions): Promise<Producer> {
    const p = new Producer(this, { ...opts, topic: await this.singleTopic(opts.topic) });
    await this.track(p, p.start());
    return p;
  }

  async subscribe(opts: ConsumerOptions): Promise<Consumer> {
    const c = new Consumer(this, { ...opts, topic: await this.singleTopic(opts.topic) });
    await this.track(c, c.start());
    return c;
  }

  async createReader(opts: ReaderOptions): Promise<Reader> {
    const r = new Reader(this, { ...opts, topic: await this.singleTopic(opts.topic) });
    await this.track(r.consumer, r.consumer.start());
    return r;
  }

  /** Producers and consumers work on one (partition) topic; see getPartitions(). */
  private async singleTopic(topic: string): Promise<string> {
    const t = normalizeTopic(topic);
    if (/-partition-\d+$/.test(t)) return t;
    const n = await this.getPartitionCount(t);
    if (n > 0) {
      throw new PulsarClientError(
        'PULSAR_UNSUPPORTED',
        `${t} has ${n} partitions: open one producer/consumer per topic from getPartitions()`,
      );
    }
    return t;
  }

  private async track(h: { close(): Promise<void> }, started: Promise<void>): Promise<void> {
    this.handles.add(h);
    try {
      await started;
    } catch (err) {
      this.handles.delete(h);
      await h.close().catch(() => undefined);
      throw err;
    }
  }

  forget(h: { close(): Promise<void> }): void {
    this.handles.delete(h);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes every producer and consumer, then every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.handles].map((h) => h.close()));
    this.closed = true;
    const conns = await Promise.allSettled([...this.pool.values()]);
    for (const c of conns) if (c.status === 'fulfilled') c.value.destroy();
    this.pool.clear();
    this.channel.endAll();
  }
}
