// How a response body is carried to the client, I/O-free: where it ends (RFC
// 9112 §6.3: no body, Content-Length, chunked, or the close) and which byte
// ranges go on. The session feeds it backend chunks and writes what it is
// handed; tests feed it bytes split anywhere.

import { ChunkedFramer } from './chunked-framer.js';
import type { ResponseHead } from './http1-head.js';

/** How the response body ends. */
export type BodyMode = 'none' | 'length' | 'chunked' | 'close';

/** Receives the ranges of a chunk that go to the client, in order. */
export interface BodySink {
  bodyData(chunk: Buffer, from: number, to: number): void;
}

export class ResponseBody {
  mode: BodyMode = 'none';
  /** An HTTP/1.0 client cannot read chunks: it gets the data, and the end is the close. */
  dechunk = false;
  /** Set once the body's last byte has been fed. */
  done = false;
  error: string | undefined;
  private left = 0;
  private framer: ChunkedFramer | undefined;
  /** The chunk being de-chunked; read by emitPiece, dropped after each feed. */
  private chunk: Buffer | undefined;
  /** Made once per body carrier (not per chunk): the framer's data callback when de-chunking. */
  private readonly emitPiece = (from: number, to: number): void => {
    this.sink.bodyData(this.chunk as Buffer, from, to);
  };

  constructor(private readonly sink: BodySink) {}

  /**
   * Frames the body of `res`, answering a `method` request. A client that does not
   * read chunks (`readsChunks` false: HTTP/1.0, or HTTP/2, whose DATA frames are the
   * framing) gets the data alone.
   */
  start(res: ResponseHead, method: string, readsChunks: boolean): void {
    if (method === 'HEAD' || res.status === 204 || res.status === 304) this.mode = 'none';
    else if (res.chunked) this.mode = 'chunked';
    else if (res.contentLength >= 0 && !res.otherEncoding) this.mode = 'length';
    else this.mode = 'close';
    this.left = this.mode === 'length' ? res.contentLength : 0;
    this.framer = this.mode === 'chunked' ? new ChunkedFramer() : undefined;
    this.dechunk = this.mode === 'chunked' && !readsChunks;
    this.done = this.mode === 'none' || (this.mode === 'length' && this.left === 0);
    this.error = undefined;
  }

  /**
   * Consumes chunk[from..]: hands the body's bytes to the sink and returns the
   * index just past the body's last byte in chunk (chunk.length when it needs
   * more), or -1 on a framing error (see `error`; nothing of that chunk is handed
   * on unless de-chunking, which hands on each piece as it is framed).
   */
  feed(chunk: Buffer, from: number): number {
    let end = chunk.length;
    if (this.mode === 'length') {
      const n = Math.min(this.left, chunk.length - from);
      this.left -= n;
      end = from + n;
      this.done = this.left === 0;
    } else if (this.mode === 'chunked') {
      const framer = this.framer as ChunkedFramer;
      if (this.dechunk) {
        this.chunk = chunk;
        end = framer.feed(chunk, from, chunk.length, this.emitPiece);
        this.chunk = undefined;
      } else end = framer.feed(chunk, from, chunk.length);
      if (end < 0) {
        this.error = framer.error;
        return -1;
      }
      this.done = framer.done;
    }
    if (!this.dechunk && end > from) this.sink.bodyData(chunk, from, end);
    return end;
  }

  /** Lets go of the last body's state (an idle connection holds nothing of it). */
  clear(): void {
    this.mode = 'none';
    this.dechunk = false;
    this.done = false;
    this.error = undefined;
    this.left = 0;
    this.framer = undefined;
  }
}
