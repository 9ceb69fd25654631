// Free loopback ports for the load benchmark, and argument parsing shared by the Node peers.
// `node ports.js N` prints N distinct free TCP ports on 127.0.0.1, separated by spaces.
// Ports are drawn below the kernel's ephemeral range so that no outgoing connection of the
// benchmark can take one between this check and the moment a server binds it.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';

export function parsePorts(args: string[]): { port: number; backendPort: number } {
  const [port, backendPort] = args.map(Number);
  if (!isPort(port) || !isPort(backendPort)) {
    throw new Error(`usage: PORT BACKEND_PORT (got ${JSON.stringify(args)})`);
  }
  return { port, backendPort };
}

function isPort(value: number | undefined): value is number {
  return value !== undefined && Number.isInteger(value) && value > 0 && value < 65536;
}

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const value = Number(low);
    return Number.isInteger(value) && value > 2048 ? value : 32768;
  } catch {
    return 32768;
  }
}

function tryListen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

export async function freePorts(count: number): Promise<number[]> {
  const high = ephemeralLow();
  const low = Math.max(1024, high - 12000);
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count && attempt < 1000; attempt++) {
      const port = low + Math.floor(Math.random() * (high - low));
      if (ports.includes(port)) continue;
      const server = await tryListen(port);
      if (server) {
        held.push(server);
        ports.push(port);
      }
    }
  } finally {
    await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} of ${count} free ports`);
  return ports;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2] ?? '1');
  if (!Number.isInteger(count) || count < 1 || count > 100) {
    console.error('usage: node ports.js COUNT (1..100)');
    process.exit(2);
  }
  console.log((await freePorts(count)).join(' '));
}
