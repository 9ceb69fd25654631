// Finds where a chunked body ends (RFC 9112 §7.1) while its bytes pass through
// unchanged, validating every size line, CRLF and trailer on the way: a proxy
// that framed chunks more loosely than its backend would open a smuggling gap.
// I/O-free; fed byte ranges; can report the data ranges for de-chunking.

import { MAX_HEADER_BYTES } from '../defaults.js';

enum S {
  Size,
  SizeWs,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  EndLf,
  Done,
}

const MAX_SIZE_DIGITS = 12; // 16^12 bytes: far beyond any real chunk, well inside 2^53
const MAX_EXT_BYTES = 4096;

export class ChunkedFramer {
  private s = S.Size;
  private remaining = 0;
  private digits = 0;
  private significant = 0;
  private extBytes = 0;
  private trailerBytes = 0;
  error: string | undefined;
  /** Set when the terminating chunk and trailers are complete. */
  done = false;

  /**
   * Consumes buf[start, end). Returns the index just past the body's last byte
   * when it ends inside this range, `end` when it needs more, or -1 on error
   * (see `error`). `onData` receives each range of chunk data.
   */
  feed(buf: Uint8Array, start: number, end: number, onData?: (from: number, to: number) => void): number {
    let i = start;
    while (i < end) {
      const c = buf[i]!;
      switch (this.s) {
        case S.Size: {
          const v = hex(c);
          if (v >= 0) {
            // Leading zeros are no part of the value's size: only significant digits count.
            if ((v > 0 || this.remaining > 0) && ++this.significant > MAX_SIZE_DIGITS)
              return this.fail('chunk size too large');
            this.digits++;
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) {
            return this.fail('chunk size expected');
          } else if (c === 13) this.s = S.SizeLf;
          else if (c === 59 /* ; */) this.s = S.Ext;
          else if (c === 32 || c === 9) this.s = S.SizeWs;
          else return this.fail('invalid character in chunk size');
          i++;
          break;
        }
        case S.SizeWs:
          // BWS is allowed only before a chunk extension.
          if (c === 59) this.s = S.Ext;
          else if (c !== 32 && c !== 9) return this.fail('invalid character after chunk size');
          i++;
          break;
        case S.Ext:
          if (c === 13) this.s = S.SizeLf;
          else if (c === 10 || (c < 32 && c !== 9) || c === 127)
            return this.fail('invalid character in chunk extension');
          else if (++this.extBytes > MAX_EXT_BYTES) return this.fail('chunk extension too long');
          i++;
          break;
        case S.SizeLf:
          if (c !== 10) return this.fail('chunk size line must end in CRLF');
          i++;
          this.digits = 0;
          this.significant = 0;
          this.extBytes = 0;
          if (this.remaining === 0) this.s = S.TrailerStart;
          else this.s = S.Data;
          break;
        case S.Data: {
          const n = Math.min(this.remaining, end - i);
          onData?.(i, i + n);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.s = S.DataCr;
          break;
        }
        case S.DataCr:
          if (c !== 13) return this.fail('chunk data must be followed by CRLF');
          this.s = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (c !== 10) return this.fail('chunk data must be followed by CRLF');
          this.s = S.Size;
          i++;
          break;
        case S.TrailerStart:
          if (c === 13) this.s = S.EndLf;
          else if (c === 32 || c === 9) return this.fail('obsolete line folding in a trailer');
          else if (c < 32 || c === 127) return this.fail('invalid character in a trailer');
          else this.s = S.Trailer;
          this.trailerBytes++;
          i++;
          break;
        case S.Trailer:
          if (c === 13) this.s = S.TrailerLf;
          else if (c === 10 || (c < 32 && c !== 9) || c === 127)
            return this.fail('invalid character in a trailer');
          if (++this.trailerBytes > MAX_HEADER_BYTES) return this.fail('trailers too large');
          i++;
          break;
        case S.TrailerLf:
          if (c !== 10) return this.fail('trailer line must end in CRLF');
          this.s = S.TrailerStart;
          i++;
          break;
        case S.EndLf:
          if (c !== 10) return this.fail('chunked body must end in CRLF');
          this.s = S.Done;
          this.done = true;
          return i + 1;
        case S.Done:
          return i;
      }
    }
    return end;
  }

  private fail(reason: string): -1 {
    this.error = reason;
    return -1;
  }
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
