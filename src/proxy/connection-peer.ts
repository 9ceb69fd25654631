// Who the client of a connection is, answered in one place: the socket's own
// peer, or, on a listener with expect_proxy, the client the PROXY header names
// (the load balancer in front is not the client). Everything that reports or
// forwards the client address (X-Forwarded-For, Forwarded, the access log, a
// PROXY header to a backend) reads it from here, never from the socket.

import { isIPv4, type Socket } from 'node:net';
import type { Endpoint, ProxyHeader } from './proxy-protocol.js';

export interface ConnectionPeer {
  /** The client. */
  client: Endpoint;
  /** The address and port the client connected to. */
  target: Endpoint;
}

function endpoint(address: string | undefined, port: number | undefined): Endpoint {
  const a = address ?? '0.0.0.0';
  return { address: a, port: port ?? 0, family: isIPv4(a) ? 'IPv4' : 'IPv6' };
}

/** The socket's own ends: no balancer in front, or a LOCAL (health check) header. */
export function socketPeer(socket: Socket): ConnectionPeer {
  return {
    client: endpoint(socket.remoteAddress, socket.remotePort),
    target: endpoint(socket.localAddress, socket.localPort),
  };
}

/** The connection a PROXY header relays; a header without addresses (LOCAL, UNKNOWN, UNIX) keeps the socket's. */
export function headerPeer(header: ProxyHeader, socket: Socket): ConnectionPeer {
  if (header.command === 'local' || header.source === undefined || header.destination === undefined)
    return socketPeer(socket);
  return { client: header.source, target: header.destination };
}

/** An IPv4 address as IPv6 (::ffff:a.b.c.d), for a header whose two ends must share a family. */
function asIPv6(e: Endpoint): Endpoint {
  return e.family === 'IPv6' ? e : { address: `::ffff:${e.address}`, port: e.port, family: 'IPv6' };
}

/** The peer as a PROXY header's source and destination, of one family as the format wants. */
export function proxyEndpoints(peer: ConnectionPeer): { source: Endpoint; destination: Endpoint } {
  const { client, target } = peer;
  if (client.family === target.family) return { source: client, destination: target };
  return { source: asIPv6(client), destination: asIPv6(target) };
}

/** The client as the access log names it: address:port. */
export function clientText(peer: ConnectionPeer): string {
  return `${peer.client.address}:${peer.client.port}`;
}

/** The client as the forwarding headers and header rules name it: address, scheme, port reached. */
export interface ClientInfo {
  /** Client IP address, as the socket reports it. */
  address: string;
  /** "http" or "https". */
  proto: string;
  /** The listener's port as the client reached it. */
  port: number;
}
