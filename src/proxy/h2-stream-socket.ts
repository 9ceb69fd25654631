// One HTTP/2 stream seen by a client session as a connection of one request:
// the request comes out of it as HTTP/1.1 bytes (h2-request.ts), and the
// HTTP/1.1 response the session writes goes into it and out as HEADERS and DATA
// frames. The session already de-chunks for it (ResponseBody with readsChunks
// false), so a response body here ends at its Content-Length or at the session's
// close. Backpressure passes through both ways: the session pauses this stream
// (no WINDOW_UPDATE goes out, so the client stops sending), and a full stream
// (the client's window is shut) makes write() return false, which pauses the
// backend until 'drain'.

import { EventEmitter } from 'node:events';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { LINGER_MS } from './client-session.js';
import type { ClientStream } from './client-stream.js';
import { CONNECTION_SPECIFIC, type H2BodyFraming, h1TrailersOfH2 } from './h2-request.js';
import { parseResponseHead } from './http1-head.js';

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = '0\r\n';
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** What reset() destroys a stream with; node:http2 turns it into INTERNAL_ERROR, and it is no news to the session. */
const CUT = new Error('the response was cut short');
/** Response fields HTTP/2 has no place for (RFC 9113 §8.2.2). */
const DROPPED = new Set([...CONNECTION_SPECIFIC, 'te', 'trailer']);

type Phase = 'head' | 'body' | 'done';

/** What the connection learns of a stream as it ends. */
export interface StreamEndObserver {
  /** The stream closed before its response was complete, and not by kakehi: the client cancelled it. */
  streamCancelled(): void;
}

export class H2StreamSocket extends EventEmitter implements ClientStream {
  private phase: Phase = 'head';
  private headBuf: Buffer | undefined;
  /** Body bytes still to send; -1: until the session closes. */
  private left = -1;
  /** The session destroyed us: its own 'close' needs no echo. */
  private destroyedBySession = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly method: string,
    private readonly framing: H2BodyFraming,
    private readonly observer: StreamEndObserver,
  ) {
    super();
  }

  /** Hands the session its request: `head` now, then the body as DATA frames come. */
  start(head: string): void {
    const stream = this.stream;
    stream.on('close', () => this.onStreamClose());
    stream.on('error', (err: Error) => {
      if (err !== CUT) this.emit('error', err);
    });
    stream.on('drain', () => this.emit('drain'));
    this.emit('data', Buffer.from(head, 'latin1'));
    if (this.framing === 'none') {
      this.emit('end');
      return;
    }
    const chunked = this.framing === 'chunked';
    let trailers = '';
    stream.on('trailers', (headers) => {
      trailers = h1TrailersOfH2(headers);
    });
    stream.on('data', (chunk: Buffer) => {
      if (!chunked) {
        this.emit('data', chunk);
        return;
      }
      if (chunk.length === 0) return; // a zero-size chunk would end the body
      this.emit('data', Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'));
      this.emit('data', chunk);
      this.emit('data', CRLF);
    });
    stream.on('end', () => {
      if (chunked) this.emit('data', Buffer.from(`${LAST_CHUNK}${trailers}\r\n`, 'latin1'));
      this.emit('end');
    });
  }

  private onStreamClose(): void {
    if (this.phase !== 'done' && !this.destroyedBySession) this.observer.streamCancelled();
    this.phase = 'done';
    if (!this.destroyedBySession) this.emit('close');
  }

  // ---- what the session writes: an HTTP/1.1 response ----------------------

  write(data: Buffer | string, encoding?: BufferEncoding): boolean {
    const buf = typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data;
    if (this.phase === 'body') return this.body(buf);
    if (this.phase === 'done') return true;
    return this.head(buf);
  }

  private head(chunk: Buffer): boolean {
    let buf = this.headBuf === undefined ? chunk : Buffer.concat([this.headBuf, chunk]);
    for (;;) {
      const idx = buf.indexOf(CRLFCRLF);
      if (idx < 0) {
        this.headBuf = buf;
        return true;
      }
      this.headBuf = undefined;
      const res = parseResponseHead(buf.toString('latin1', 0, idx + 4));
      const rest = buf.subarray(idx + 4);
      if ('error' in res) {
        // The session wrote it from a head it parsed itself: a bug, not input.
        this.reset();
        return true;
      }
      const headers: Record<string, string | string[]> = { ':status': String(res.status) };
      for (let i = 0; i < res.lower.length; i++) {
        const name = res.lower[i] as string;
        if (DROPPED.has(name)) continue;
        const value = res.values[i] as string;
        const had = headers[name];
        if (had === undefined) headers[name] = value;
        else if (Array.isArray(had)) had.push(value);
        else headers[name] = [had, value];
      }
      if (res.status < 200) {
        if (!this.stream.destroyed) this.stream.additionalHeaders(headers);
        if (rest.length === 0) return true;
        buf = rest;
        continue;
      }
      const bodiless =
        this.method === 'HEAD' || res.status === 204 || res.status === 304 || res.contentLength === 0;
      if (this.stream.destroyed) {
        this.phase = 'done';
        return true;
      }
      this.stream.respond(headers, { endStream: bodiless });
      if (bodiless) {
        this.phase = 'done';
        return true;
      }
      this.phase = 'body';
      this.left = res.contentLength;
      return rest.length === 0 ? true : this.body(rest);
    }
  }

  private body(chunk: Buffer): boolean {
    const stream = this.stream;
    if (stream.destroyed) return true;
    if (this.left < 0) return stream.write(chunk);
    const take = chunk.length <= this.left ? chunk : chunk.subarray(0, this.left);
    this.left -= take.length;
    const ok = stream.write(take);
    if (this.left === 0) this.finish();
    return ok;
  }

  /**
   * The response is all written. A client whose window stays shut would keep the
   * rest buffered and its stream slot taken: it gets LINGER_MS to read, as an
   * HTTP/1.1 client gets to read the end of its last response, then the reset.
   */
  private finish(): void {
    this.phase = 'done';
    const stream = this.stream;
    if (stream.destroyed) return;
    stream.end();
    if (stream.writableLength > 0)
      stream.setTimeout(LINGER_MS, () => {
        if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
      });
  }

  /** Cuts the stream: RST_STREAM INTERNAL_ERROR, and no END_STREAM before it. */
  private reset(): void {
    this.phase = 'done';
    // Not stream.close(code): node:http2 ends the writable side first, so END_STREAM
    // left before the RST_STREAM and a response cut short reached the client as
    // complete (a chunked one silently truncated). destroy(err) sends the reset alone.
    if (!this.stream.destroyed) this.stream.destroy(CUT);
  }

  // ---- the rest of what a session asks of its connection --------------------

  destroySoon(): void {
    // A body that runs until the close ends here; one cut short is reset.
    if (this.phase === 'body' && this.left < 0) {
      this.finish();
      return;
    }
    if (this.phase !== 'done') this.reset();
  }

  destroy(): this {
    this.destroyedBySession = true;
    if (this.phase !== 'done') this.reset();
    return this;
  }

  end(): this {
    this.destroySoon();
    return this;
  }

  cork(): void {
    this.stream.cork();
  }

  uncork(): void {
    this.stream.uncork();
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  setNoDelay(): this {
    return this;
  }
}
