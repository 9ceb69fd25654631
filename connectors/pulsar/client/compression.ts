// Payload codecs: NONE, LZ4 (raw block), ZLIB, ZSTD and SNAPPY (raw), with the
// declared uncompressed size enforced so a corrupt or hostile batch cannot
// allocate without bound. ZSTD is decode-only (fzstd); we compress with the others.

import { deflateSync, inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import * as lz4 from 'lz4js';
import * as snappy from 'snappyjs';
import { PulsarClientError } from './errors.js';
import { CompressionType } from './pulsar-api.js';

// lz4js's block compressor needs a zeroed hash table of this size (its internal hashSize).
const LZ4_HASH_SIZE = 1 << 16;

export function decompress(
  type: CompressionType,
  data: Uint8Array,
  uncompressedSize: number,
  maxBytes: number,
): Uint8Array {
  if (type === CompressionType.NONE) return data;
  if (uncompressedSize > maxBytes) {
    throw new PulsarClientError(
      'PULSAR_PROTOCOL_ERROR',
      `uncompressed size ${uncompressedSize} exceeds ${maxBytes}`,
    );
  }
  let out: Uint8Array;
  switch (type) {
    case CompressionType.LZ4: {
      const dst = new Uint8Array(uncompressedSize);
      const n = lz4.decompressBlock(data, dst, 0, data.length, 0);
      out = dst.subarray(0, n);
      break;
    }
    case CompressionType.ZLIB:
      out = inflateSync(data, { maxOutputLength: Math.max(uncompressedSize, 1) });
      break;
    case CompressionType.ZSTD:
      out = zstdDecompress(data, new Uint8Array(uncompressedSize));
      break;
    case CompressionType.SNAPPY:
      out = snappy.uncompress(data, uncompressedSize);
      break;
    default:
      throw new PulsarClientError('PULSAR_UNSUPPORTED', `unknown compression type ${type}`);
  }
  if (out.length !== uncompressedSize) {
    throw new PulsarClientError(
      'PULSAR_PROTOCOL_ERROR',
      `${CompressionType[type]} payload decompressed to ${out.length} bytes, metadata says ${uncompressedSize}`,
    );
  }
  return out;
}

export type ProducerCompression = 'none' | 'lz4' | 'zlib' | 'snappy';

export function compress(
  kind: ProducerCompression,
  data: Uint8Array,
): { type: CompressionType; data: Uint8Array } {
  switch (kind) {
    case 'none':
      return { type: CompressionType.NONE, data };
    case 'zlib':
      return { type: CompressionType.ZLIB, data: deflateSync(data) };
    case 'lz4': {
      const dst = new Uint8Array(lz4.compressBound(data.length));
      const n = lz4.compressBlock(data, dst, 0, data.length, new Uint32Array(LZ4_HASH_SIZE));
      return { type: CompressionType.LZ4, data: dst.subarray(0, n) };
    }
    case 'snappy':
      return { type: CompressionType.SNAPPY, data: snappy.compress(data) };
  }
}
