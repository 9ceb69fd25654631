// Socket addresses as operators write them (`127.0.0.1:8080`, `[::1]:8443`,
// `localhost:9000`), parsed once and printed in one canonical form, which is
// the stable key of a listener.

import { isIP } from 'node:net';

export interface SocketAddress {
  host: string;
  port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Returns the address, or a reason it is not one. */
export function parseAddress(text: string, opts: { allowPortZero: boolean }): SocketAddress | string {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || text[end + 1] !== ':') return `"${text}": an IPv6 address is written [addr]:port`;
    host = text.slice(1, end);
    portText = text.slice(end + 2);
    if (isIP(host) !== 6) return `"${text}": "${host}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return `"${text}": expected host:port`;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return `"${text}": an IPv6 address is written [addr]:port`;
    if (isIP(host) === 0 && !HOSTNAME.test(host))
      return `"${text}": "${host}" is not an IP address or hostname`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `"${text}": the port must be a number`;
  const port = Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) return `"${text}": the port must be from ${min} to 65535`;
  return { host: host.toLowerCase(), port };
}

export function formatAddress(a: SocketAddress): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
