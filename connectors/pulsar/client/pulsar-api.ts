// The subset of Pulsar's PulsarApi.proto (proto2) this client speaks, written
// from the protocol specification: field tables for proto-wire.ts and the TS
// shapes they decode to. Field numbers are wire format; unknown fields are skipped.

import type { MessageSchema } from './proto-wire.js';

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

const KeyValueSchema: MessageSchema = {
  name: 'KeyValue',
  fields: [
    { n: 1, name: 'key', type: 'string' },
    { n: 2, name: 'value', type: 'string' },
  ],
};

export const MessageIdDataSchema: MessageSchema = {
  name: 'MessageIdData',
  fields: [
    { n: 1, name: 'ledgerId', type: 'uint64' },
    { n: 2, name: 'entryId', type: 'uint64' },
    { n: 3, name: 'partition', type: 'int32' },
    { n: 4, name: 'batch_index', type: 'int32' },
    { n: 5, name: 'ack_set', type: 'int64', repeated: true },
    { n: 6, name: 'batch_size', type: 'int32' },
  ],
};

export const MessageMetadataSchema: MessageSchema = {
  name: 'MessageMetadata',
  fields: [
    { n: 1, name: 'producer_name', type: 'string' },
    { n: 2, name: 'sequence_id', type: 'uint64' },
    { n: 3, name: 'publish_time', type: 'uint64' },
    { n: 4, name: 'properties', type: KeyValueSchema, repeated: true },
    { n: 6, name: 'partition_key', type: 'string' },
    { n: 8, name: 'compression', type: 'enum' },
    { n: 9, name: 'uncompressed_size', type: 'uint32' },
    { n: 11, name: 'num_messages_in_batch', type: 'int32' },
    { n: 12, name: 'event_time', type: 'uint64' },
    // Only detected (encrypted messages are refused), never decoded.
    { n: 13, name: 'encryption_keys', type: 'bytes', repeated: true },
    { n: 20, name: 'marker_type', type: 'int32' },
    { n: 25, name: 'null_value', type: 'bool' },
    { n: 27, name: 'num_chunks_from_msg', type: 'int32' },
    { n: 30, name: 'null_partition_key', type: 'bool' },
  ],
};

export const SingleMessageMetadataSchema: MessageSchema = {
  name: 'SingleMessageMetadata',
  fields: [
    { n: 1, name: 'properties', type: KeyValueSchema, repeated: true },
    { n: 2, name: 'partition_key', type: 'string' },
    { n: 3, name: 'payload_size', type: 'int32' },
    { n: 4, name: 'compacted_out', type: 'bool' },
    { n: 5, name: 'event_time', type: 'uint64' },
    { n: 8, name: 'sequence_id', type: 'uint64' },
    { n: 9, name: 'null_value', type: 'bool' },
    { n: 10, name: 'null_partition_key', type: 'bool' },
  ],
};

const AuthDataSchema: MessageSchema = {
  name: 'AuthData',
  fields: [
    { n: 1, name: 'auth_method_name', type: 'string' },
    { n: 2, name: 'auth_data', type: 'bytes' },
  ],
};

const u64 = (n: number, name: string) => ({ n, name, type: 'uint64' as const });
const str = (n: number, name: string) => ({ n, name, type: 'string' as const });
const i32 = (n: number, name: string) => ({ n, name, type: 'int32' as const });
const bool = (n: number, name: string) => ({ n, name, type: 'bool' as const });
const en = (n: number, name: string) => ({ n, name, type: 'enum' as const });
const msgId = (n: number, name: string) => ({ n, name, type: MessageIdDataSchema });
const sub = (name: string, fields: MessageSchema['fields']): MessageSchema => ({ name, fields });

export const BaseCommandSchema: MessageSchema = {
  name: 'BaseCommand',
  fields: [
    en(1, 'type'),
    {
      n: 2,
      name: 'connect',
      type: sub('CommandConnect', [
        str(1, 'client_version'),
        { n: 3, name: 'auth_data', type: 'bytes' },
        i32(4, 'protocol_version'),
        str(5, 'auth_method_name'),
        str(6, 'proxy_to_broker_url'),
        { n: 10, name: 'feature_flags', type: sub('FeatureFlags', [bool(1, 'supports_auth_refresh')]) },
      ]),
    },
    {
      n: 3,
      name: 'connected',
      type: sub('CommandConnected', [
        str(1, 'server_version'),
        i32(2, 'protocol_version'),
        i32(3, 'max_message_size'),
      ]),
    },
    {
      n: 4,
      name: 'subscribe',
      type: sub('CommandSubscribe', [
        str(1, 'topic'),
        str(2, 'subscription'),
        en(3, 'subType'),
        u64(4, 'consumer_id'),
        u64(5, 'request_id'),
        str(6, 'consumer_name'),
        bool(8, 'durable'),
        msgId(9, 'start_message_id'),
        bool(11, 'read_compacted'),
        en(13, 'initialPosition'),
      ]),
    },
    {
      n: 5,
      name: 'producer',
      type: sub('CommandProducer', [
        str(1, 'topic'),
        u64(2, 'producer_id'),
        u64(3, 'request_id'),
        str(4, 'producer_name'),
        u64(8, 'epoch'),
      ]),
    },
    {
      n: 6,
      name: 'send',
      type: sub('CommandSend', [
        u64(1, 'producer_id'),
        u64(2, 'sequence_id'),
        i32(3, 'num_messages'),
        u64(6, 'highest_sequence_id'),
      ]),
    },
    {
      n: 7,
      name: 'send_receipt',
      type: sub('CommandSendReceipt', [
        u64(1, 'producer_id'),
        u64(2, 'sequence_id'),
        msgId(3, 'message_id'),
        u64(4, 'highest_sequence_id'),
      ]),
    },
    {
      n: 8,
      name: 'send_error',
      type: sub('CommandSendError', [
        u64(1, 'producer_id'),
        u64(2, 'sequence_id'),
        en(3, 'error'),
        str(4, 'message'),
      ]),
    },
    {
      n: 9,
      name: 'message',
      type: sub('CommandMessage', [
        u64(1, 'consumer_id'),
        msgId(2, 'message_id'),
        { n: 3, name: 'redelivery_count', type: 'uint32' },
        { n: 4, name: 'ack_set', type: 'int64', repeated: true },
      ]),
    },
    {
      n: 10,
      name: 'ack',
      type: sub('CommandAck', [
        u64(1, 'consumer_id'),
        en(2, 'ack_type'),
        { n: 3, name: 'message_id', type: MessageIdDataSchema, repeated: true },
        en(4, 'validation_error'),
        u64(8, 'request_id'),
      ]),
    },
    {
      n: 11,
      name: 'flow',
      type: sub('CommandFlow', [u64(1, 'consumer_id'), { n: 2, name: 'messagePermits', type: 'uint32' }]),
    },
    {
      n: 12,
      name: 'unsubscribe',
      type: sub('CommandUnsubscribe', [u64(1, 'consumer_id'), u64(2, 'request_id')]),
    },
    { n: 13, name: 'success', type: sub('CommandSuccess', [u64(1, 'request_id')]) },
    {
      n: 14,
      name: 'error',
      type: sub('CommandError', [u64(1, 'request_id'), en(2, 'error'), str(3, 'message')]),
    },
    {
      n: 15,
      name: 'close_producer',
      type: sub('CommandCloseProducer', [u64(1, 'producer_id'), u64(2, 'request_id')]),
    },
    {
      n: 16,
      name: 'close_consumer',
      type: sub('CommandCloseConsumer', [u64(1, 'consumer_id'), u64(2, 'request_id')]),
    },
    {
      n: 17,
      name: 'producer_success',
      type: sub('CommandProducerSuccess', [
        u64(1, 'request_id'),
        str(2, 'producer_name'),
        { n: 3, name: 'last_sequence_id', type: 'int64' },
        bool(6, 'producer_ready'),
      ]),
    },
    { n: 18, name: 'ping', type: sub('CommandPing', []) },
    { n: 19, name: 'pong', type: sub('CommandPong', []) },
    {
      n: 20,
      name: 'redeliverUnacknowledgedMessages',
      type: sub('CommandRedeliverUnacknowledgedMessages', [
        u64(1, 'consumer_id'),
        { n: 2, name: 'message_ids', type: MessageIdDataSchema, repeated: true },
      ]),
    },
    {
      n: 21,
      name: 'partitionMetadata',
      type: sub('CommandPartitionedTopicMetadata', [str(1, 'topic'), u64(2, 'request_id')]),
    },
    {
      n: 22,
      name: 'partitionMetadataResponse',
      type: sub('CommandPartitionedTopicMetadataResponse', [
        { n: 1, name: 'partitions', type: 'uint32' },
        u64(2, 'request_id'),
        en(3, 'response'),
        en(4, 'error'),
        str(5, 'message'),
      ]),
    },
    {
      n: 23,
      name: 'lookupTopic',
      type: sub('CommandLookupTopic', [str(1, 'topic'), u64(2, 'request_id'), bool(3, 'authoritative')]),
    },
    {
      n: 24,
      name: 'lookupTopicResponse',
      type: sub('CommandLookupTopicResponse', [
        str(1, 'brokerServiceUrl'),
        str(2, 'brokerServiceUrlTls'),
        en(3, 'response'),
        u64(4, 'request_id'),
        bool(5, 'authoritative'),
        en(6, 'error'),
        str(7, 'message'),
        bool(8, 'proxy_through_service_url'),
      ]),
    },
    { n: 27, name: 'reachedEndOfTopic', type: sub('CommandReachedEndOfTopic', [u64(1, 'consumer_id')]) },
    {
      n: 28,
      name: 'seek',
      type: sub('CommandSeek', [
        u64(1, 'consumer_id'),
        u64(2, 'request_id'),
        msgId(3, 'message_id'),
        u64(4, 'message_publish_time'),
      ]),
    },
    {
      n: 29,
      name: 'getLastMessageId',
      type: sub('CommandGetLastMessageId', [u64(1, 'consumer_id'), u64(2, 'request_id')]),
    },
    {
      n: 30,
      name: 'getLastMessageIdResponse',
      type: sub('CommandGetLastMessageIdResponse', [
        msgId(1, 'last_message_id'),
        u64(2, 'request_id'),
        msgId(3, 'consumer_mark_delete_position'),
      ]),
    },
    {
      n: 31,
      name: 'active_consumer_change',
      type: sub('CommandActiveConsumerChange', [u64(1, 'consumer_id'), bool(2, 'is_active')]),
    },
    {
      n: 36,
      name: 'authChallenge',
      type: sub('CommandAuthChallenge', [
        str(1, 'server_version'),
        { n: 2, name: 'challenge', type: AuthDataSchema },
        i32(3, 'protocol_version'),
      ]),
    },
    {
      n: 37,
      name: 'authResponse',
      type: sub('CommandAuthResponse', [
        str(1, 'client_version'),
        { n: 2, name: 'response', type: AuthDataSchema },
        i32(3, 'protocol_version'),
      ]),
    },
    {
      n: 38,
      name: 'ackResponse',
      type: sub('CommandAckResponse', [
        u64(1, 'consumer_id'),
        en(4, 'error'),
        str(5, 'message'),
        u64(6, 'request_id'),
      ]),
    },
  ],
};
