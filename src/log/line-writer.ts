// Writes whole lines to a file descriptor in batches of at most PIPE_BUF bytes:
// several worker processes share one stdout pipe (or one O_APPEND file), and
// POSIX makes writes that small atomic, so their lines never interleave. One
// write per event-loop turn at most; a bounded backlog, counted when it drops.

import { close, write, writeSync } from 'node:fs';

const PIPE_BUF = 4096;
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

export class LineWriter {
  private batch = '';
  private batchBytes = 0;
  private readonly queue: string[] = [];
  private queuedBytes = 0;
  private writing = false;
  private scheduled = false;
  /** Lines dropped because the destination could not keep up. */
  dropped = 0;

  // A descriptor replaced by reopen() while a write to it was in flight: closed when that write ends.
  private closeAfterWrite: number | undefined;

  constructor(private fd: number) {}

  /**
   * Writes to `fd` from now on (logrotate renamed the file and signalled us). The
   * old descriptor is closed once no write uses it, when `closeOld` says it is ours.
   */
  reopen(fd: number, closeOld: boolean): void {
    const old = this.fd;
    this.fd = fd;
    if (!closeOld) return;
    if (this.writing) this.closeAfterWrite = old;
    else close(old, () => {});
  }

  /** `line` ends with a newline. */
  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.queuedBytes + this.batchBytes + bytes > MAX_BACKLOG_BYTES) {
      this.dropped++;
      return;
    }
    if (this.batchBytes + bytes > PIPE_BUF && this.batchBytes > 0) this.enqueue();
    this.batch += line;
    this.batchBytes += bytes;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.enqueue();
        this.pump();
      });
    }
  }

  private enqueue(): void {
    if (this.batchBytes === 0) return;
    this.queue.push(this.batch);
    this.queuedBytes += this.batchBytes;
    this.batch = '';
    this.batchBytes = 0;
  }

  private pump(): void {
    if (this.writing) return;
    const chunk = this.queue.shift();
    if (chunk === undefined) return;
    this.writing = true;
    const buf = Buffer.from(chunk);
    write(this.fd, buf, 0, buf.length, null, (err, written) => {
      this.writing = false;
      if (this.closeAfterWrite !== undefined) {
        close(this.closeAfterWrite, () => {});
        this.closeAfterWrite = undefined;
      }
      this.queuedBytes -= buf.length;
      // A short or failed write (EAGAIN on a full pipe) is retried with the rest.
      if (err || written < buf.length) {
        const rest = buf.subarray(err ? 0 : written).toString();
        this.queue.unshift(rest);
        this.queuedBytes += Buffer.byteLength(rest);
        setTimeout(() => this.pump(), err ? 10 : 0).unref();
        return;
      }
      this.pump();
    });
  }

  /** Writes everything still held, synchronously (at shutdown). */
  flushSync(): void {
    this.enqueue();
    for (const chunk of this.queue.splice(0)) {
      try {
        writeSync(this.fd, chunk);
      } catch {
        this.dropped++;
      }
    }
    this.queuedBytes = 0;
  }
}
