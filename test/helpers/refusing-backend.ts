// A cluster of two backends where one refuses every connection: the setup the
// health tests share, and the drive that gets the refusing one reported down.

import assert from 'node:assert/strict';
import { type Backend, closedPort, echoBackend } from './backends.js';
import { httpGet } from './http.js';
import { type Kakehi, startKakehi } from './kakehi-process.js';

export interface RefusingCluster {
  kakehi: Kakehi;
  good: Backend;
  /** The port of backend "flaky", on which nothing listens. */
  flakyPort: number;
}

/** Cluster "c": backend "flaky" (refuses) and "good" (an echo backend); stop both via `cleanup`. */
export async function startRefusingCluster(cleanup: (() => Promise<unknown>)[]): Promise<RefusingCluster> {
  const good = await echoBackend('good');
  cleanup.push(() => good.close());
  const flakyPort = await closedPort();
  const kakehi = await startKakehi({
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [
      {
        id: 'c',
        backends: [
          { id: 'flaky', address: `127.0.0.1:${flakyPort}` },
          { id: 'good', address: good.address },
        ],
      },
    ],
    frontends: [{ hostname: '*', cluster: 'c' }],
    access_log: 'off',
  });
  cleanup.push(() => kakehi.stop());
  return { kakehi, good, flakyPort };
}

/**
 * Sends requests until "flaky" is reported down: each must succeed (a refused
 * connection is retried on "good"), and "flaky" is retried whenever its backoff ends.
 */
export async function driveUntilBackendDown(kakehi: Kakehi): Promise<void> {
  const downBy = Date.now() + 60_000;
  while (!kakehi.logs.some((l) => l.msg === 'backend down') && Date.now() < downBy) {
    assert.equal((await httpGet(kakehi.port, '/')).status, 200);
    await new Promise((r) => setTimeout(r, 20)); // pacing a poll, not asserting time
  }
  await kakehi.waitLog((l) => l.msg === 'backend down');
}
