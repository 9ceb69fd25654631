// Splits the command socket's byte stream into newline-delimited frames. I/O-free:
// fed Uint8Array chunks as they arrive, it returns complete lines, whatever the
// segmentation, and enforces the per-frame byte bound so one client cannot make
// either side of the socket buffer without limit.

/** The protocol's frame bound (docs/protocol.md), not counting the line ending. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

export type DecodedFrame =
  | { kind: 'frame'; line: string }
  /** Returned once; the decoder then ignores all input (the peer closes the connection). */
  | { kind: 'too_large'; limit: number };

const LF = 0x0a;
const CR = 0x0d;

export class FrameDecoder {
  readonly maxFrameBytes: number;
  // Bytes of the unfinished line, kept as received: joined once when its LF arrives,
  // so a 4 MiB frame in 64 KiB reads costs one copy, not sixty-four.
  #pieces: Uint8Array[] = [];
  #pending = 0;
  #failed = false;
  // fatal: false — invalid UTF-8 becomes U+FFFD and then fails as JSON, with an
  // answer, rather than throwing out of the decoder.
  readonly #text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Bytes held for the line not yet ended; never more than maxFrameBytes + 1. */
  get bufferedBytes(): number {
    return this.#pending;
  }

  /** True after too_large: the decoder returns nothing more. */
  get failed(): boolean {
    return this.#failed;
  }

  push(chunk: Uint8Array): DecodedFrame[] {
    const out: DecodedFrame[] = [];
    if (this.#failed) return out;
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      if (lf < 0) {
        const rest = chunk.length - start;
        // One byte over the bound is allowed while unfinished: it may be the CR of a CRLF.
        if (this.#pending + rest > this.maxFrameBytes + 1) return this.#fail(out);
        // Copy: the caller (a socket) may reuse its buffer after we return, and
        // Buffer#slice, unlike Uint8Array#slice, would only make a view of it.
        this.#pieces.push(new Uint8Array(chunk.subarray(start)));
        this.#pending += rest;
        break;
      }
      const line = this.#take(chunk.subarray(start, lf));
      start = lf + 1;
      if (line === undefined) return this.#fail(out);
      if (line.trim() !== '') out.push({ kind: 'frame', line });
    }
    return out;
  }

  #take(tail: Uint8Array): string | undefined {
    let bytes: Uint8Array;
    if (this.#pieces.length === 0) bytes = tail;
    else {
      bytes = new Uint8Array(this.#pending + tail.length);
      let at = 0;
      for (const p of this.#pieces) {
        bytes.set(p, at);
        at += p.length;
      }
      bytes.set(tail, at);
      this.#pieces = [];
      this.#pending = 0;
    }
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end--;
    if (end > this.maxFrameBytes) return undefined;
    return this.#text.decode(bytes.subarray(0, end));
  }

  #fail(out: DecodedFrame[]): DecodedFrame[] {
    this.#failed = true;
    this.#pieces = [];
    this.#pending = 0;
    out.push({ kind: 'too_large', limit: this.maxFrameBytes });
    return out;
  }
}
