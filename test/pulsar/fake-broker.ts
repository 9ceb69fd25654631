// An in-process fake Pulsar broker on a real loopback socket, for protocol
// corner cases a real broker won't produce on demand (same-read frames,
// redirect loops, silent peers, corrupt checksums). Speaks just enough protocol.
import net from 'node:net';
import { encodeCommand, type Frame, FrameDecoder } from '../../connectors/pulsar/client/frame.js';
import { type BaseCommand, CommandType, LookupType } from '../../connectors/pulsar/client/pulsar-api.js';

export type Handler = (f: Frame, sock: net.Socket, broker: FakeBroker) => boolean | undefined;

export class FakeBroker {
  readonly received: BaseCommand[] = [];
  readonly sockets = new Set<net.Socket>();
  url = '';
  answerPing = true;
  lookupTarget: (() => { url: string; redirect: boolean }) | undefined;

  private constructor(
    private readonly server: net.Server,
    private readonly handler: Handler,
  ) {}

  static async start(handler: Handler = () => false): Promise<FakeBroker> {
    let broker: FakeBroker | undefined;
    const server = net.createServer((sock) => broker?.accept(sock));
    broker = new FakeBroker(server, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    broker.url = `pulsar://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    return broker;
  }

  count(type: CommandType): number {
    return this.received.filter((c) => c.type === type).length;
  }

  private accept(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    const dec = new FrameDecoder(1 << 20);
    sock.on('data', (chunk) => {
      dec.push(chunk);
      for (let f = dec.next(); f; f = dec.next()) {
        this.received.push(f.command);
        if (this.handler(f, sock, this)) continue;
        this.defaultReply(f.command, sock);
      }
    });
  }

  private defaultReply(c: BaseCommand, sock: net.Socket): void {
    switch (c.type) {
      case CommandType.CONNECT:
        sock.write(
          encodeCommand({
            type: CommandType.CONNECTED,
            connected: { server_version: 'fake', protocol_version: 19 },
          }),
        );
        return;
      case CommandType.PING:
        if (this.answerPing) sock.write(encodeCommand({ type: CommandType.PONG, pong: {} }));
        return;
      case CommandType.PARTITIONED_METADATA:
        sock.write(
          encodeCommand({
            type: CommandType.PARTITIONED_METADATA_RESPONSE,
            partitionMetadataResponse: {
              request_id: c.partitionMetadata?.request_id ?? 0n,
              partitions: 0,
              response: 0,
            },
          }),
        );
        return;
      case CommandType.LOOKUP: {
        const t = this.lookupTarget?.() ?? { url: this.url, redirect: false };
        sock.write(
          encodeCommand({
            type: CommandType.LOOKUP_RESPONSE,
            lookupTopicResponse: {
              request_id: c.lookupTopic?.request_id ?? 0n,
              response: t.redirect ? LookupType.Redirect : LookupType.Connect,
              brokerServiceUrl: t.url,
              authoritative: t.redirect,
            },
          }),
        );
        return;
      }
      case CommandType.SUBSCRIBE:
        sock.write(
          encodeCommand({
            type: CommandType.SUCCESS,
            success: { request_id: c.subscribe?.request_id ?? 0n },
          }),
        );
        return;
      case CommandType.CLOSE_CONSUMER:
        sock.write(
          encodeCommand({
            type: CommandType.SUCCESS,
            success: { request_id: c.close_consumer?.request_id ?? 0n },
          }),
        );
        return;
      default:
        return;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
