// Batch payloads: splitting an (uncompressed) entry into its N single messages,
// `[u32 size][SingleMessageMetadata][payload]` each, and building one for the
// producer. Pure functions over bytes.

import { PulsarClientError } from './errors.js';
import { decodeMessage, encodeMessage } from './proto-wire.js';
import type { SingleMessageMetadata } from './pulsar-api.js';
import { SingleMessageMetadataSchema } from './pulsar-schema.js';

export interface BatchEntry {
  meta: SingleMessageMetadata;
  payload: Uint8Array;
}

export function splitBatch(data: Uint8Array, count: number): BatchEntry[] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: BatchEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 4 > data.length)
      throw new PulsarClientError('PULSAR_PROTOCOL_ERROR', `batch truncated at message ${i}`);
    const metaSize = dv.getUint32(p);
    p += 4;
    if (p + metaSize > data.length)
      throw new PulsarClientError('PULSAR_PROTOCOL_ERROR', `batch metadata ${i} truncated`);
    const meta = decodeMessage<SingleMessageMetadata>(SingleMessageMetadataSchema, data, p, p + metaSize);
    p += metaSize;
    const size = meta.payload_size ?? 0;
    if (size < 0 || p + size > data.length) {
      throw new PulsarClientError('PULSAR_PROTOCOL_ERROR', `batch payload ${i} truncated`);
    }
    out.push({ meta, payload: data.subarray(p, p + size) });
    p += size;
  }
  return out;
}

export function buildBatch(entries: readonly BatchEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const e of entries) {
    const meta = encodeMessage(SingleMessageMetadataSchema, { ...e.meta, payload_size: e.payload.length });
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, meta.length);
    parts.push(head, meta, e.payload);
    total += 4 + meta.length + e.payload.length;
  }
  const out = new Uint8Array(total);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
