// Field tables for the PulsarApi.proto subset in pulsar-api.ts, as proto-wire.ts
// reads them. Field numbers are the wire format, taken from the protocol
// specification; fields not listed here are skipped on decode.

import type { MessageSchema } from './proto-wire.js';

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
