// Shared by the route connector tests: a real kakehi with one listener, a real
// `kakehi pulsar` following a topic, what a proxy holds from source pulsar as
// comparable text, and raw messages for the refusal tests.

import { ok } from '../helpers/command.js';
import { type ConnectorProcess, startConnector } from '../helpers/connector-process.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

export async function startProxy(): Promise<Kakehi> {
  return startKakehi({ listeners: [{ address: '127.0.0.1:0' }], access_log: 'off' });
}

export interface RouteBroker {
  url: string;
  token: string;
}

/** `kakehi pulsar` on `topic` for the proxy at `socketPath`; short batches and resyncs off unless asked. */
export function startRouteConnector(
  broker: RouteBroker,
  socketPath: string,
  topic: string,
  extra: string[] = [],
): Promise<ConnectorProcess> {
  return startConnector('pulsar', [
    '--service-url',
    broker.url,
    '--token',
    broker.token,
    '--topic',
    topic,
    '--socket',
    socketPath,
    '--batch-ms',
    '5',
    '--bootstrap-idle-ms',
    '3000',
    ...extra,
  ]);
}

/** The objects a proxy holds from `source`, one sorted JSON line each: equal text means equal state. */
export async function heldFrom(socketPath: string, source = 'pulsar'): Promise<string[]> {
  const state = await ok(socketPath, 'get_state', { sources: true });
  return (state['changes'] as { source?: string }[])
    .filter((c) => c.source === source)
    .map((c) => JSON.stringify(c))
    .sort();
}

/** One sample's value from Prometheus text, or undefined. */
export function sample(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return undefined;
}
