// A raw HTTP/2 client for tests that must send frames no well-behaved client
// would (floods, resets, broken header blocks) and see exactly what comes back:
// frames written to the byte, HPACK as literals without indexing (no Huffman,
// no dynamic table), and only what the tests assert decoded: frame headers,
// the error codes of RST_STREAM and GOAWAY, SETTINGS, and a response's :status.

import { once } from 'node:events';
import { type Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** RFC 9113 §7. */
export const ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** RFC 9113 §6.5.2. */
export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** One frame's bytes. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function settingsFrame(settings: readonly (readonly [number, number])[] = []): Buffer {
  const p = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(increment);
  return frame(FRAME.WINDOW_UPDATE, 0, streamId, p);
}

export function pingFrame(data = 'kakehi!!', ack = false): Buffer {
  return frame(FRAME.PING, ack ? FLAG.ACK : 0, 0, Buffer.from(data.padEnd(8).slice(0, 8), 'latin1'));
}

/** RFC 7541 §5.1: an integer with an N-bit prefix; `first` holds the representation's flag bits. */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7, 0x00)), bytes]);
}

/** A header block of literals without indexing, new names (RFC 7541 §6.2.2): what the server decodes is exactly `fields`. */
export function hpackBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  return Buffer.concat(parts);
}

/** The pseudo-headers of a GET on `authority`, then `extra`. */
export function requestFields(
  authority: string,
  path = '/',
  extra: readonly (readonly [string, string])[] = [],
  scheme = 'https',
): (readonly [string, string])[] {
  return [[':method', 'GET'], [':scheme', scheme], [':authority', authority], [':path', path], ...extra];
}

export function headersFrame(
  streamId: number,
  fields: readonly (readonly [string, string])[],
  opts: { endStream?: boolean; endHeaders?: boolean } = {},
): Buffer {
  const flags =
    (opts.endStream === false ? 0 : FLAG.END_STREAM) | (opts.endHeaders === false ? 0 : FLAG.END_HEADERS);
  return frame(FRAME.HEADERS, flags, streamId, hpackBlock(fields));
}

/** RFC 9113 §4.2: the frame size every peer must accept. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;

/** A header block too big for one frame: HEADERS, then CONTINUATION frames, each at most `maxFrame` bytes. */
export function headerBlockFrames(
  streamId: number,
  fields: readonly (readonly [string, string])[],
  opts: { endStream?: boolean; maxFrame?: number } = {},
): Buffer {
  const block = hpackBlock(fields);
  const max = opts.maxFrame ?? DEFAULT_MAX_FRAME_SIZE;
  const out: Buffer[] = [];
  for (let off = 0; off === 0 || off < block.length; off += max) {
    const last = off + max >= block.length;
    const flags =
      (last ? FLAG.END_HEADERS : 0) | (off === 0 && opts.endStream !== false ? FLAG.END_STREAM : 0);
    out.push(
      frame(off === 0 ? FRAME.HEADERS : FRAME.CONTINUATION, flags, streamId, block.subarray(off, off + max)),
    );
  }
  return Buffer.concat(out);
}

/** The 32-bit error code a RST_STREAM carries, or a GOAWAY after its last stream id. */
export function errorCode(f: Frame): number {
  return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}

/** A SETTINGS frame's values by identifier. */
export function settingsOf(f: Frame): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i + 6 <= f.payload.length; i += 6)
    out.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
  return out;
}

/** Static-table indexes of :status (RFC 7541 Appendix A): how nghttp2 sends the common ones. */
const STATUS_BY_INDEX = new Map([
  [8, 200],
  [9, 204],
  [10, 206],
  [11, 304],
  [12, 400],
  [13, 404],
  [14, 500],
]);

/** A response HEADERS frame's :status when it is the first field and indexed (undefined otherwise). */
export function statusOf(f: Frame): number | undefined {
  const first = f.payload[0];
  if (first === undefined || (first & 0x80) === 0) return undefined;
  return STATUS_BY_INDEX.get(first & 0x7f);
}

export interface H2Options {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** TLS with ALPN h2 (the default), or h2c with prior knowledge. */
  tls?: boolean;
  servername?: string;
  /** Sent in the client's first SETTINGS frame. */
  settings?: readonly (readonly [number, number])[];
  /** Answer the server's SETTINGS and PINGs (default true); a flood test turns it off. */
  polite?: boolean;
}

/** A connection that has sent its preface and SETTINGS; frames received are kept in order. */
export class H2Raw {
  readonly frames: Frame[] = [];
  /** Bytes written so far, preface included. */
  written = 0;
  closed = false;
  readonly closedPromise: Promise<void>;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(
    readonly socket: Socket,
    private readonly polite: boolean,
  ) {
    socket.on('data', (c: Buffer) => this.onData(c));
    // A reset by the server is one way of closing; the close event says it.
    socket.on('error', () => {});
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.notify();
        resolve();
      }),
    );
  }

  static async open(opts: H2Options): Promise<H2Raw> {
    const socket =
      opts.tls === false
        ? tcpConnect(opts.port, opts.host ?? '127.0.0.1')
        : tlsConnect({
            port: opts.port,
            host: opts.host ?? '127.0.0.1',
            servername: opts.servername ?? 'h2.test',
            ALPNProtocols: ['h2'],
            rejectUnauthorized: false,
          });
    await once(socket, opts.tls === false ? 'connect' : 'secureConnect');
    if (opts.tls !== false && (socket as unknown as { alpnProtocol?: string }).alpnProtocol !== 'h2')
      throw new Error('the server did not select h2 by ALPN');
    const c = new H2Raw(socket, opts.polite !== false);
    c.write(Buffer.concat([PREFACE, settingsFrame(opts.settings ?? [])]));
    return c;
  }

  /** Writes bytes; false when the socket's buffer is full (await `drained()`). */
  write(bytes: Buffer): boolean {
    if (this.socket.destroyed) return false;
    this.written += bytes.length;
    return this.socket.write(bytes);
  }

  /**
   * Writes `chunk` again and again, as fast as the socket takes it, until the
   * server closes the connection or `limit` bytes are written; resolves with
   * whether the server closed it first.
   */
  async flood(chunk: Buffer, limit: number): Promise<boolean> {
    while (!this.socket.destroyed && !this.closed && this.written < limit) {
      if (!this.write(chunk)) await this.drained();
    }
    // The close may still be on its way when the limit is reached by bytes already buffered.
    return this.socket.destroyed || this.closed;
  }

  drained(): Promise<void> {
    return this.closed || this.socket.destroyed
      ? Promise.resolve()
      : new Promise((resolve) => {
          const done = () => {
            this.socket.off('drain', done);
            this.socket.off('close', done);
            resolve();
          };
          this.socket.on('drain', done);
          this.socket.on('close', done);
        });
  }

  /** The first frame received (now or later) that `pred` accepts; rejects if the connection closes first. */
  frameWhere(pred: (f: Frame) => boolean, what = 'a frame'): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.frames.find(pred);
        if (f !== undefined) resolve(f);
        else if (this.closed) reject(new Error(`connection closed before ${what}; got ${this.describe()}`));
        else this.waiters.push(check);
      };
      check();
    });
  }

  /** Resolves with the GOAWAY received once the connection has closed (undefined if none came). */
  async closedWith(): Promise<Frame | undefined> {
    await this.closedPromise;
    return this.frames.find((f) => f.type === FRAME.GOAWAY);
  }

  /** Resolves when a response on `streamId` ended (END_STREAM), or with the RST_STREAM that ended it. */
  streamEnd(streamId: number): Promise<Frame> {
    return this.frameWhere(
      (f) =>
        f.streamId === streamId &&
        (f.type === FRAME.RST_STREAM ||
          ((f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0)),
      `the end of stream ${streamId}`,
    );
  }

  /** Frames of one stream, in order. */
  streamFrames(streamId: number): Frame[] {
    return this.frames.filter((f) => f.streamId === streamId);
  }

  /** A compact list of what arrived, for assertion messages. */
  describe(): string {
    return this.frames
      .map((f) => {
        const code = f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY ? ` code ${errorCode(f)}` : '';
        return `type ${f.type} flags ${f.flags} stream ${f.streamId}${code}`;
      })
      .join(', ');
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= 9) {
      const len = this.buf.readUIntBE(off, 3);
      if (this.buf.length - off < 9 + len) break;
      const f: Frame = {
        type: this.buf[off + 3] as number,
        flags: this.buf[off + 4] as number,
        streamId: this.buf.readUInt32BE(off + 5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(off + 9, off + 9 + len)),
      };
      off += 9 + len;
      this.frames.push(f);
      if (this.polite && f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0)
        this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (this.polite && f.type === FRAME.PING && (f.flags & FLAG.ACK) === 0)
        this.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
    }
    this.buf = this.buf.subarray(off);
    this.notify();
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
