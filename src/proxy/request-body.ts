// Where a request body ends (RFC 9112 §6.3: Content-Length or chunked; no
// body otherwise), I/O-free. Bytes past the end are the next pipelined request,
// so this framing decides what a backend sees as one request: smuggling turns
// on it, and the chunked framer is as strict as it gets. A size limit
// (max_request_body_bytes) counts a chunked body's data, not its framing.

import { ChunkedFramer } from './chunked-framer.js';
import type { RequestHead } from './http1-head.js';

export class RequestBody {
  /** No more body to read (true between requests, and for bodiless ones). */
  done = true;
  error: string | undefined;
  /** The body passed its size limit (a chunked one, as it came; see `error`). */
  tooLarge = false;
  private left = 0;
  private framer: ChunkedFramer | undefined;
  private limit = Number.POSITIVE_INFINITY;
  private dataBytes = 0;
  private readonly countData = (from: number, to: number) => {
    this.dataBytes += to - from;
  };

  /** `maxBytes`: the chunked body's limit (a Content-Length over it is refused before this). */
  start(req: RequestHead, maxBytes = Number.POSITIVE_INFINITY): void {
    this.framer = req.chunked ? new ChunkedFramer() : undefined;
    this.left = req.chunked ? 0 : Math.max(req.contentLength, 0);
    this.done = !req.chunked && this.left === 0;
    this.error = undefined;
    this.tooLarge = false;
    this.limit = maxBytes;
    this.dataBytes = 0;
  }

  /**
   * Consumes chunk[from..] while the body lasts: returns the index just past its
   * last byte (chunk.length when it needs more), or -1 on a framing error (see `error`).
   */
  feed(chunk: Buffer, from: number): number {
    const framer = this.framer;
    if (framer !== undefined) {
      const counted = this.limit !== Number.POSITIVE_INFINITY;
      const end = framer.feed(chunk, from, chunk.length, counted ? this.countData : undefined);
      if (end < 0) {
        this.error = framer.error;
        return -1;
      }
      if (this.dataBytes > this.limit) {
        this.tooLarge = true;
        this.error = `the chunked body is larger than ${this.limit} bytes`;
        return -1;
      }
      this.done = framer.done;
      return end;
    }
    const n = Math.min(this.left, chunk.length - from);
    this.left -= n;
    this.done = this.left === 0;
    return from + n;
  }

  /** Lets go of the last body's framer. */
  clear(): void {
    this.done = true;
    this.error = undefined;
    this.tooLarge = false;
    this.left = 0;
    this.framer = undefined;
    this.limit = Number.POSITIVE_INFINITY;
  }
}
