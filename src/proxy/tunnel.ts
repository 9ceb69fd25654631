// A WebSocket (or other upgraded) connection after its 101: bytes pass both
// ways unchanged, each side paused while the other is full, and the tunnel
// closes after `idleMs` without a byte either way.

import type { ClientStream } from './client-stream.js';
import type { UpstreamConnection } from './upstream-connection.js';

export class Tunnel {
  /** Bytes carried from the client / to the client since the 101. */
  bytesIn = 0;
  bytesOut = 0;
  private upstream: UpstreamConnection | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly client: ClientStream,
    upstream: UpstreamConnection,
    idleMs: number,
    onIdle: () => void,
  ) {
    this.upstream = upstream;
    this.timer = setTimeout(onIdle, idleMs);
  }

  fromClient(chunk: Buffer): void {
    this.timer.refresh();
    this.bytesIn += chunk.length;
    const up = this.upstream;
    if (up !== undefined && !up.write(chunk)) this.client.pause();
  }

  fromUpstream(chunk: Buffer): void {
    this.timer.refresh();
    this.bytesOut += chunk.length;
    if (!this.client.write(chunk)) this.upstream?.pause();
  }

  clientDrained(): void {
    this.upstream?.resume();
  }

  upstreamDrained(): void {
    this.client.resume();
  }

  /** The client sent its last byte: pass the half-close on. */
  clientEnded(): void {
    this.upstream?.end();
  }

  /** The backend's side is gone: the client gets what was written, then the end. */
  upstreamClosed(): void {
    this.upstream = undefined;
    this.client.end();
  }

  /** Ends the tunnel's part: its timer, and the backend connection if still open. */
  stop(): void {
    clearTimeout(this.timer);
    const up = this.upstream;
    this.upstream = undefined;
    up?.destroy();
  }
}
