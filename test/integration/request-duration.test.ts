// duration_ms and kakehi_http_request_duration_seconds time a request from the
// first byte of its head, also when it is refused before the head is complete
// (400, 408): never from the worker's start. The client's own view of the
// exchange (first byte written to the connection's end, which the proxy sends
// after logging) encloses the proxy's, so it bounds duration_ms from above.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import type { HistogramSample } from '../../src/metrics/registry.js';
import { ok } from '../helpers/command.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

/** Writes `data` on a fresh connection; resolves with the ms from the write to the proxy's close. */
function timedRefusal(port: number, data: string): Promise<{ text: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let t0 = 0;
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    socket.on('end', () => {
      const elapsedMs = performance.now() - t0;
      socket.destroy();
      resolve({ text, elapsedMs });
    });
    socket.on('connect', () => {
      t0 = performance.now();
      socket.write(data);
    });
  });
}

async function durationHistogram(kakehi: Kakehi): Promise<HistogramSample> {
  const r = (await ok(kakehi.socketPath, 'query_metrics', {
    names: ['kakehi_http_request_duration_seconds'],
  })) as unknown as { families: { samples: HistogramSample[] }[] };
  const sample = r.families[0]?.samples.find((s) => s.labels['cluster'] === '');
  assert.ok(sample, 'a duration series for requests refused before routing');
  return sample;
}

describe('request duration from the first byte', () => {
  const HEAD_TIMEOUT_MS = 300;
  let kakehi: Kakehi;
  let firstElapsedMs = 0;
  after(() => kakehi?.stop());

  test('a head with bare LF line ends (400) is timed from its first byte, not the worker start', async () => {
    kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0', request_head_timeout_ms: HEAD_TIMEOUT_MS }],
      access_log: 'stdout',
    });
    const { text, elapsedMs } = await timedRefusal(kakehi.port, 'GET / HTTP/1.1\nHost: a\n\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    firstElapsedMs = elapsedMs;
    const line = await kakehi.waitAccessLine((l) => l['status'] === 400);
    const duration = line['duration_ms'] as number;
    assert.ok(
      duration >= 0 && duration <= elapsedMs,
      `duration_ms ${duration} within the client's ${elapsedMs} ms`,
    );

    const h = await durationHistogram(kakehi);
    assert.equal(h.count, 1);
    assert.equal(h.counts.at(-1), 0, 'nothing in the +Inf-only bucket');
    // It lands at or below the first bound that holds the client's view of it.
    const bound = h.bounds.findIndex((b) => b >= elapsedMs / 1000);
    assert.ok(bound >= 0);
    assert.equal(
      h.counts.slice(0, bound + 1).reduce((a, b) => a + b, 0),
      1,
      `observed in a bucket up to le=${h.bounds[bound]}: ${JSON.stringify(h.counts)}`,
    );
  });

  test('a head that stops coming (408) is timed from its first byte: the head timeout, not the uptime', async () => {
    const { text, elapsedMs } = await timedRefusal(kakehi.port, 'GET / HTTP/1.1\r\nHost: a\r\n');
    assert.match(text, /^HTTP\/1\.1 408 /);
    const line = await kakehi.waitAccessLine((l) => l['status'] === 408);
    const duration = line['duration_ms'] as number;
    assert.ok(duration >= HEAD_TIMEOUT_MS, `${duration} ms: at least the head timeout`);
    assert.ok(duration <= elapsedMs, `duration_ms ${duration} within the client's ${elapsedMs} ms`);
    const h = await durationHistogram(kakehi);
    assert.equal(h.count, 2);
    assert.equal(h.counts.at(-1), 0, 'nothing in the +Inf-only bucket');
    assert.ok(h.sum * 1000 <= firstElapsedMs + elapsedMs, `sum ${h.sum} s within both exchanges`);
  });
});
