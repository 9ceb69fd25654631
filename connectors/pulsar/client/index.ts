// Public entry point of the kakehi Pulsar client: re-exports the typed API
// documented in docs/pulsar-client.md.

export { type AuthProvider, tokenAuth } from './auth.js';
export { type ClientEvent, type ClientOptions, normalizeTopic, PulsarClient } from './client.js';
export type { ProducerCompression } from './compression.js';
export type { TlsOptions } from './connection.js';
export { Consumer, type ConsumerOptions, type ReaderOptions, type SubscriptionType } from './consumer.js';
export { PulsarClientError, type PulsarErrorCode } from './errors.js';
export { MessageId } from './message-id.js';
export type { Message } from './message-unpack.js';
export { type OutgoingMessage, Producer, type ProducerOptions } from './producer.js';
export { Reader } from './reader.js';
