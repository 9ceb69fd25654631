// Pulsar wire frames: encoding of simple and payload commands, and FrameDecoder,
// an I/O-free incremental parser fed Uint8Array chunks of any size. Owns the
// framing layout, the 0x0e01 checksum (CRC32C) and skipping broker entry metadata.

import { crc32c } from '@aws-crypto/crc32c';
import { decodeMessage, encodeMessage } from './proto-wire.js';
import type { BaseCommand, MessageMetadata } from './pulsar-api.js';
import { BaseCommandSchema, MessageMetadataSchema } from './pulsar-schema.js';

const MAGIC_CRC32C = 0x0e01;
const MAGIC_BROKER_ENTRY_METADATA = 0x0e02;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export interface Frame {
  command: BaseCommand;
  /** Present on MESSAGE frames (and SEND, when decoding our own output). */
  metadata?: MessageMetadata;
  payload?: Uint8Array;
  /** False when a 0x0e01 checksum was present and did not match. */
  checksumValid?: boolean;
}

export function encodeCommand(command: BaseCommand): Uint8Array {
  const cmd = encodeMessage(BaseCommandSchema, command);
  const out = new Uint8Array(8 + cmd.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 4 + cmd.length);
  dv.setUint32(4, cmd.length);
  out.set(cmd, 8);
  return out;
}

/** `[total][cmdSize][cmd][0x0e01][crc32c][metaSize][metadata][payload]`; the CRC covers metaSize..end. */
export function encodePayloadCommand(
  command: BaseCommand,
  metadata: MessageMetadata,
  payload: Uint8Array,
): Uint8Array {
  const cmd = encodeMessage(BaseCommandSchema, command);
  const meta = encodeMessage(MessageMetadataSchema, metadata);
  const total = 4 + cmd.length + 2 + 4 + 4 + meta.length + payload.length;
  const out = new Uint8Array(4 + total);
  const dv = new DataView(out.buffer);
  let p = 0;
  dv.setUint32(p, total);
  dv.setUint32(p + 4, cmd.length);
  p += 8;
  out.set(cmd, p);
  p += cmd.length;
  dv.setUint16(p, MAGIC_CRC32C);
  const crcAt = p + 2;
  p += 6;
  const checked = p;
  dv.setUint32(p, meta.length);
  p += 4;
  out.set(meta, p);
  p += meta.length;
  out.set(payload, p);
  dv.setUint32(crcAt, crc32c(out.subarray(checked)) >>> 0);
  return out;
}

/** Parses one complete frame (without its leading total-size field). */
export function parseFrame(frame: Uint8Array): Frame {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < 4) throw new FrameError('frame shorter than its command size field');
  const cmdSize = dv.getUint32(0);
  if (4 + cmdSize > frame.length)
    throw new FrameError(`command size ${cmdSize} exceeds frame size ${frame.length}`);
  const command = decodeMessage<BaseCommand>(BaseCommandSchema, frame, 4, 4 + cmdSize);
  let p = 4 + cmdSize;
  if (p === frame.length) return { command };
  if (p + 2 <= frame.length && dv.getUint16(p) === MAGIC_BROKER_ENTRY_METADATA) {
    if (p + 6 > frame.length) throw new FrameError('truncated broker entry metadata');
    p += 6 + dv.getUint32(p + 2);
  }
  let checksumValid: boolean | undefined;
  if (p + 2 <= frame.length && dv.getUint16(p) === MAGIC_CRC32C) {
    if (p + 6 > frame.length) throw new FrameError('truncated checksum');
    const expected = dv.getUint32(p + 2);
    p += 6;
    checksumValid = crc32c(frame.subarray(p)) >>> 0 === expected;
  }
  if (p + 4 > frame.length) throw new FrameError('truncated metadata size');
  const metaSize = dv.getUint32(p);
  p += 4;
  if (p + metaSize > frame.length) throw new FrameError(`metadata size ${metaSize} exceeds frame`);
  const metadata = decodeMessage<MessageMetadata>(MessageMetadataSchema, frame, p, p + metaSize);
  const payload = frame.subarray(p + metaSize);
  const out: Frame = { command, metadata, payload };
  if (checksumValid !== undefined) out.checksumValid = checksumValid;
  return out;
}

/**
 * Incremental frame splitter: `push()` chunks as they arrive, then drain
 * complete frames with `next()`. Holds at most one frame plus one chunk;
 * a frame larger than `maxFrameBytes` is a FrameError (the connection must close).
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): Frame | undefined {
    if (this.buffered < 4) return undefined;
    const head = this.peek(4);
    const size = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    if (size > this.maxFrameBytes)
      throw new FrameError(`frame of ${size} bytes exceeds limit ${this.maxFrameBytes}`);
    if (this.buffered < 4 + size) return undefined;
    const bytes = this.take(4 + size);
    return parseFrame(bytes.subarray(4));
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.length >= n) return first.subarray(0, n);
    return this.concat(n, false);
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    return this.concat(n, true);
  }

  private concat(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const c = this.chunks[i] as Uint8Array;
      const want = Math.min(c.length, n - filled);
      out.set(c.subarray(0, want), filled);
      filled += want;
      if (consume) {
        if (want === c.length) {
          this.chunks.shift();
        } else {
          this.chunks[0] = c.subarray(want);
        }
      } else {
        i++;
      }
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
