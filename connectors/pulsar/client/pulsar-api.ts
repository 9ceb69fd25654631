// The subset of Pulsar's PulsarApi.proto (proto2) this client speaks, written
// from the protocol specification: enums and the TS shapes commands decode to.
// The field tables (wire numbers) are in pulsar-schema.ts.

export const PROTOCOL_VERSION = 19;
export const CLIENT_VERSION = 'kakehi-pulsar-0.1';

export enum CommandType {
  CONNECT = 2,
  CONNECTED = 3,
  SUBSCRIBE = 4,
  PRODUCER = 5,
  SEND = 6,
  SEND_RECEIPT = 7,
  SEND_ERROR = 8,
  MESSAGE = 9,
  ACK = 10,
  FLOW = 11,
  UNSUBSCRIBE = 12,
  SUCCESS = 13,
  ERROR = 14,
  CLOSE_PRODUCER = 15,
  CLOSE_CONSUMER = 16,
  PRODUCER_SUCCESS = 17,
  PING = 18,
  PONG = 19,
  REDELIVER_UNACKNOWLEDGED_MESSAGES = 20,
  PARTITIONED_METADATA = 21,
  PARTITIONED_METADATA_RESPONSE = 22,
  LOOKUP = 23,
  LOOKUP_RESPONSE = 24,
  REACHED_END_OF_TOPIC = 27,
  SEEK = 28,
  GET_LAST_MESSAGE_ID = 29,
  GET_LAST_MESSAGE_ID_RESPONSE = 30,
  ACTIVE_CONSUMER_CHANGE = 31,
  AUTH_CHALLENGE = 36,
  AUTH_RESPONSE = 37,
  ACK_RESPONSE = 38,
}

export enum CompressionType {
  NONE = 0,
  LZ4 = 1,
  ZLIB = 2,
  ZSTD = 3,
  SNAPPY = 4,
}

export enum SubType {
  Exclusive = 0,
  Shared = 1,
  Failover = 2,
  KeyShared = 3,
}

export enum InitialPosition {
  Latest = 0,
  Earliest = 1,
}

export enum LookupType {
  Redirect = 0,
  Connect = 1,
  Failed = 2,
}

export enum AckType {
  Individual = 0,
  Cumulative = 1,
}

/** ServerError enum names, by number, for error messages. */
export const SERVER_ERRORS: readonly string[] = [
  'UnknownError',
  'MetadataError',
  'PersistenceError',
  'AuthenticationError',
  'AuthorizationError',
  'ConsumerBusy',
  'ServiceNotReady',
  'ProducerBlockedQuotaExceededError',
  'ProducerBlockedQuotaExceededException',
  'ChecksumError',
  'UnsupportedVersionError',
  'TopicNotFound',
  'SubscriptionNotFound',
  'ConsumerNotFound',
  'TooManyRequests',
  'TopicTerminatedError',
  'ProducerBusy',
  'InvalidTopicName',
  'IncompatibleSchema',
  'ConsumerAssignError',
  'TransactionCoordinatorNotFound',
  'InvalidTxnStatus',
  'NotAllowedError',
  'TransactionConflict',
  'TransactionNotFound',
  'ProducerFenced',
];

export interface KeyValue {
  key: string;
  value: string;
}
export interface MessageIdData {
  ledgerId: bigint;
  entryId: bigint;
  partition?: number;
  batch_index?: number;
  ack_set?: bigint[];
  batch_size?: number;
}
export interface MessageMetadata {
  producer_name: string;
  sequence_id: bigint;
  publish_time: bigint;
  properties?: KeyValue[];
  partition_key?: string;
  compression?: CompressionType;
  uncompressed_size?: number;
  num_messages_in_batch?: number;
  event_time?: bigint;
  encryption_keys?: unknown[];
  null_value?: boolean;
  null_partition_key?: boolean;
  marker_type?: number;
  num_chunks_from_msg?: number;
}
export interface SingleMessageMetadata {
  properties?: KeyValue[];
  partition_key?: string;
  payload_size: number;
  compacted_out?: boolean;
  event_time?: bigint;
  sequence_id?: bigint;
  null_value?: boolean;
  null_partition_key?: boolean;
}
export interface AuthData {
  auth_method_name?: string;
  auth_data?: Uint8Array;
}

/** Every command body this client reads or writes, keyed by BaseCommand field name. */
export interface BaseCommand {
  type: CommandType;
  connect?: {
    client_version: string;
    auth_method_name?: string;
    auth_data?: Uint8Array;
    protocol_version: number;
    proxy_to_broker_url?: string;
    feature_flags?: { supports_auth_refresh?: boolean };
  };
  connected?: { server_version: string; protocol_version?: number; max_message_size?: number };
  subscribe?: {
    topic: string;
    subscription: string;
    subType: SubType;
    consumer_id: bigint;
    request_id: bigint;
    consumer_name?: string;
    durable?: boolean;
    start_message_id?: MessageIdData;
    read_compacted?: boolean;
    initialPosition?: InitialPosition;
  };
  producer?: {
    topic: string;
    producer_id: bigint;
    request_id: bigint;
    producer_name?: string;
    epoch?: bigint;
  };
  send?: { producer_id: bigint; sequence_id: bigint; num_messages?: number; highest_sequence_id?: bigint };
  send_receipt?: {
    producer_id: bigint;
    sequence_id: bigint;
    message_id?: MessageIdData;
    highest_sequence_id?: bigint;
  };
  send_error?: { producer_id: bigint; sequence_id: bigint; error: number; message: string };
  message?: { consumer_id: bigint; message_id: MessageIdData; redelivery_count?: number; ack_set?: bigint[] };
  ack?: {
    consumer_id: bigint;
    ack_type: AckType;
    message_id: MessageIdData[];
    validation_error?: number;
    request_id?: bigint;
  };
  flow?: { consumer_id: bigint; messagePermits: number };
  unsubscribe?: { consumer_id: bigint; request_id: bigint };
  success?: { request_id: bigint };
  error?: { request_id: bigint; error: number; message: string };
  close_producer?: { producer_id: bigint; request_id: bigint };
  close_consumer?: { consumer_id: bigint; request_id: bigint };
  producer_success?: {
    request_id: bigint;
    producer_name: string;
    last_sequence_id?: bigint;
    producer_ready?: boolean;
  };
  ping?: Record<string, never>;
  pong?: Record<string, never>;
  redeliverUnacknowledgedMessages?: { consumer_id: bigint; message_ids?: MessageIdData[] };
  partitionMetadata?: { topic: string; request_id: bigint };
  partitionMetadataResponse?: {
    partitions?: number;
    request_id: bigint;
    response?: number;
    error?: number;
    message?: string;
  };
  lookupTopic?: { topic: string; request_id: bigint; authoritative?: boolean };
  lookupTopicResponse?: {
    brokerServiceUrl?: string;
    brokerServiceUrlTls?: string;
    response?: LookupType;
    request_id: bigint;
    authoritative?: boolean;
    error?: number;
    message?: string;
    proxy_through_service_url?: boolean;
  };
  reachedEndOfTopic?: { consumer_id: bigint };
  seek?: {
    consumer_id: bigint;
    request_id: bigint;
    message_id?: MessageIdData;
    message_publish_time?: bigint;
  };
  getLastMessageId?: { consumer_id: bigint; request_id: bigint };
  getLastMessageIdResponse?: {
    last_message_id: MessageIdData;
    request_id: bigint;
    consumer_mark_delete_position?: MessageIdData;
  };
  active_consumer_change?: { consumer_id: bigint; is_active?: boolean };
  authChallenge?: { server_version?: string; challenge?: AuthData; protocol_version?: number };
  authResponse?: { client_version?: string; response?: AuthData; protocol_version?: number };
  ackResponse?: { consumer_id: bigint; error?: number; message?: string; request_id?: bigint };
}
