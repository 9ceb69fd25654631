// Minimal proto2 wire codec driven by field tables (see pulsar-api.ts).
// Owns varints, zig-zag-free signed ints (proto2 int32/int64), length-delimited
// fields and skipping of unknown fields. 64-bit integers are bigint, never number.

export type ScalarType = 'uint64' | 'int64' | 'uint32' | 'int32' | 'enum' | 'bool' | 'string' | 'bytes';

export interface FieldSpec {
  readonly n: number;
  readonly name: string;
  readonly type: ScalarType | MessageSchema;
  readonly repeated?: boolean;
}

export interface MessageSchema {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  /** Filled lazily: field number to spec. */
  byNumber?: Map<number, FieldSpec>;
}

export class ProtoDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtoDecodeError';
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: false });

/** Growable output buffer for encoding. */
export class ProtoWriter {
  private buf = new Uint8Array(64);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  varint(v: number): void {
    if (v < 0) {
      this.varint64(BigInt.asUintN(64, BigInt(v)));
      return;
    }
    this.ensure(10);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  varint64(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    this.ensure(10);
    while (x > 0x7fn) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export function encodeMessage(schema: MessageSchema, value: object): Uint8Array {
  const w = new ProtoWriter();
  writeFields(w, schema, value as Record<string, unknown>);
  return w.finish();
}

function writeFields(w: ProtoWriter, schema: MessageSchema, value: Record<string, unknown>): void {
  for (const f of schema.fields) {
    const v = value[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      for (const item of v as unknown[]) writeField(w, f, item);
    } else {
      writeField(w, f, v);
    }
  }
}

function writeField(w: ProtoWriter, f: FieldSpec, v: unknown): void {
  const t = f.type;
  if (typeof t === 'object') {
    w.varint((f.n << 3) | 2);
    w.bytes(encodeMessage(t, v as object));
    return;
  }
  switch (t) {
    case 'uint64':
    case 'int64':
      w.varint((f.n << 3) | 0);
      w.varint64(typeof v === 'bigint' ? v : BigInt(v as number));
      return;
    case 'uint32':
    case 'int32':
    case 'enum':
      w.varint((f.n << 3) | 0);
      w.varint(v as number);
      return;
    case 'bool':
      w.varint((f.n << 3) | 0);
      w.varint(v ? 1 : 0);
      return;
    case 'string':
      w.varint((f.n << 3) | 2);
      w.bytes(textEncoder.encode(v as string));
      return;
    case 'bytes':
      w.varint((f.n << 3) | 2);
      w.bytes(v as Uint8Array);
      return;
  }
}

/** Cursor over one encoded message. */
class ProtoReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint');
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  /** Low 32 bits of a varint, as an unsigned number. */
  varint32(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint');
      const b = this.buf[this.pos++] as number;
      if (i < 5) result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return result % 0x1_0000_0000;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  lengthDelimited(): [number, number] {
    const len = this.varint32();
    const start = this.pos;
    if (start + len > this.end) throw new ProtoDecodeError('truncated length-delimited field');
    this.pos = start + len;
    return [start, start + len];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.lengthDelimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new ProtoDecodeError('truncated fixed field');
  }
}

function indexSchema(schema: MessageSchema): Map<number, FieldSpec> {
  if (!schema.byNumber) schema.byNumber = new Map(schema.fields.map((f) => [f.n, f]));
  return schema.byNumber;
}

export function decodeMessage<T>(schema: MessageSchema, buf: Uint8Array, start = 0, end = buf.length): T {
  const out: Record<string, unknown> = {};
  const r = new ProtoReader(buf, start, end);
  const fields = indexSchema(schema);
  while (r.pos < end) {
    const key = r.varint32();
    const n = key >>> 3;
    const wireType = key & 7;
    const f = fields.get(n);
    if (!f) {
      r.skip(wireType);
      continue;
    }
    const v = readValue(r, f, wireType);
    if (f.repeated) {
      const arr = (out[f.name] as unknown[] | undefined) ?? [];
      arr.push(v);
      out[f.name] = arr;
    } else {
      out[f.name] = v;
    }
  }
  return out as T;
}

function readValue(r: ProtoReader, f: FieldSpec, wireType: number): unknown {
  const t = f.type;
  const expectLen = typeof t === 'object' || t === 'string' || t === 'bytes';
  if (expectLen !== (wireType === 2)) {
    throw new ProtoDecodeError(`field ${f.name} (#${f.n}) has wire type ${wireType}`);
  }
  if (typeof t === 'object') {
    const [s, e] = r.lengthDelimited();
    return decodeMessage(t, r.buf, s, e);
  }
  switch (t) {
    case 'uint64':
      return r.varint64();
    case 'int64':
      return BigInt.asIntN(64, r.varint64());
    case 'uint32':
    case 'enum':
      return r.varint32();
    case 'int32':
      return r.varint32() | 0;
    case 'bool':
      return r.varint64() !== 0n;
    case 'string': {
      const [s, e] = r.lengthDelimited();
      return textDecoder.decode(r.buf.subarray(s, e));
    }
    case 'bytes': {
      const [s, e] = r.lengthDelimited();
      return r.buf.slice(s, e);
    }
  }
}
