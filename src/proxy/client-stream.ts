// What a client session reads from and writes to, and what a listener holds
// open. A TCP or TLS socket is one; an HTTP/2 stream, seen through its adapter
// (h2-stream-socket.ts), is another: so every request, whatever the protocol it
// came in, goes through the one exchange in client-session.ts and meets the same
// routing, rules, limits and backends.

/** The part of a net.Socket a client session and its tunnel use. */
export interface ClientStream {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close' | 'drain', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  off(event: 'data', listener: (chunk: Buffer) => void): this;
  off(event: 'end' | 'close' | 'drain', listener: () => void): this;
  off(event: 'error', listener: (err: Error) => void): this;
  write(data: Buffer | string, encoding?: BufferEncoding): boolean;
  end(): this;
  cork(): void;
  uncork(): void;
  pause(): this;
  resume(): this;
  setNoDelay(noDelay?: boolean): this;
  /** Ends once what was written is flushed. */
  destroySoon(): void;
  destroy(): this;
}

/** A client connection as its listener holds it: drained on shutdown, cut at the deadline. */
export interface OpenConnection {
  /** Begins a graceful close: idle goes now, busy after what is in flight. */
  drain(): void;
  /** Ends it now, whatever it is doing. */
  kill(reason: string): void;
}

/** The protocol a request came in with, as the access log and metrics name it. */
export type HttpProtocol = 'http/1.1' | 'h2';
