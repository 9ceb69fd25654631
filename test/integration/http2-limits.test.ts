// HTTP/2 limits and attacks against a real kakehi over TLS (ALPN h2), each
// driven by a raw frame client (test/helpers/h2-frames.ts) that sends what no
// well-behaved client would: more streams than advertised, rapid reset
// (CVE-2023-44487), a CONTINUATION flood (CVE-2024-27983), oversized header
// lists, a window that never opens, PING and SETTINGS floods, malformed
// requests. Each asserts what comes back on the wire, what the backend saw,
// and that the worker still serves a well-behaved client afterwards.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as h2Connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { Family, ScalarSample } from '../../src/metrics/registry.js';
import { type Backend, echoBackend, type GatedBackend, gatedBackend } from '../helpers/backends.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import {
  ERROR,
  errorCode,
  FLAG,
  FRAME,
  frame,
  H2Raw,
  headerBlockFrames,
  headersFrame,
  hpackBlock,
  pingFrame,
  requestFields,
  rstStreamFrame,
  SETTING,
  settingsFrame,
  settingsOf,
  statusOf,
  windowUpdateFrame,
} from '../helpers/h2-frames.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

const MAIN = '127.0.0.1:0';
const ONE_STREAM = '127.0.0.2:0';
// Past what loopback socket buffers can hold on both sides (tcp_rmem + tcp_wmem maxima: 36 MiB on this
// machine), so only a kakehi that kept reading could let the backend finish.
const BIG_BODY_BYTES = 64 * 1024 * 1024;
const MAX_HEADER_COUNT = 64;

/** A GET through node:http2, the well-behaved client: resolves with the status and body. */
async function h2Get(port: number, authority: string, path = '/'): Promise<{ status: number; body: string }> {
  const session = h2Connect(`https://127.0.0.1:${port}`, {
    rejectUnauthorized: false,
    servername: 'h2.test',
  });
  try {
    const req = session.request({ ':path': path, ':authority': authority });
    const [headers] = (await once(req, 'response')) as [Record<string, string | number>];
    let body = '';
    req.setEncoding('utf8');
    for await (const chunk of req) body += chunk as string;
    return { status: Number(headers[':status']), body };
  } finally {
    session.close();
  }
}

/** kakehi_http2_refused_total for one reason, summed over listeners. */
async function refused(socketPath: string, reason: string): Promise<number> {
  const r = (await ok(socketPath, 'query_metrics')) as unknown as { families: Family[] };
  const f = r.families.find((x) => x.name === 'kakehi_http2_refused_total');
  return ((f?.samples ?? []) as ScalarSample[])
    .filter((s) => s.labels['reason'] === reason)
    .reduce((a, s) => a + s.value, 0);
}

/**
 * Resolves once kakehi_http2_refused_total{reason} reaches `atLeast`: the worker
 * counts a refusal just after closing the socket, so the client can see the close
 * before the count; each query is a round trip to the worker, not a sleep.
 */
async function refusedReaches(socketPath: string, reason: string, atLeast: number): Promise<void> {
  while ((await refused(socketPath, reason)) < atLeast);
}

/** A raw connection past its handshake: the server's SETTINGS acknowledged both ways, so its limits apply. */
async function settled(
  port: number,
  settings: readonly (readonly [number, number])[] = [],
  host = '127.0.0.1',
): Promise<H2Raw> {
  const c = await H2Raw.open({ port, settings, host });
  await c.frameWhere((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 'the SETTINGS ACK');
  // Our ACK of the server's SETTINGS went out before this PING: its answer says the server applied it.
  c.write(pingFrame('settled'));
  await c.frameWhere((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0, 'the PING ACK');
  return c;
}

/**
 * A backend that answers with BIG_BODY_BYTES, written as fast as its socket
 * takes them: it records whether a write was ever refused (kakehi stopped
 * reading) and whether the whole body went out.
 */
async function bigBackend() {
  const state = { requests: 0, blocked: false, finished: false };
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const backend = await echoBackend('big', (_req, res) => {
    state.requests++;
    res.writeHead(200, { 'content-length': BIG_BODY_BYTES });
    let sent = 0;
    const pump = () => {
      while (sent < BIG_BODY_BYTES) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          state.blocked = true;
          res.once('drain', pump);
          return;
        }
      }
      res.end();
      state.finished = true;
    };
    pump();
    return true;
  });
  return Object.assign(backend, { state });
}

/** Stream `id` on `c` ends with RST_STREAM carrying `code`. */
async function assertReset(c: H2Raw, id: number, code: number): Promise<void> {
  const end = await c.streamEnd(id);
  assert.equal(end.type, FRAME.RST_STREAM, c.describe());
  assert.equal(errorCode(end), code);
}

/** Stream `id` on `c` ends with a 200 response, not a reset. */
async function assertServed(c: H2Raw, id: number): Promise<void> {
  const end = await c.streamEnd(id);
  assert.notEqual(end.type, FRAME.RST_STREAM, c.describe());
  const head = c.streamFrames(id).find((f) => f.type === FRAME.HEADERS);
  assert.ok(head, c.describe());
  assert.equal(statusOf(head), 200);
}

describe('HTTP/2 limits and attacks', () => {
  let kakehi: Kakehi;
  let echo: Backend;
  let held: GatedBackend;
  /** Holds the requests of the connection that goes over its acknowledged stream limit. */
  let heldOver: GatedBackend;
  let big: Awaited<ReturnType<typeof bigBackend>>;
  let port: number;
  let oneStreamPort: number;

  before(async () => {
    const ca = makeCa({ keyType: 'ec' });
    const cert = issueCert(ca, ['h2.test', '*.h2.test'], { keyType: 'ec' });
    echo = await echoBackend('echo');
    held = await gatedBackend('held');
    heldOver = await gatedBackend('held-over');
    big = await bigBackend();
    const certificate = (listener: string) => ({
      listener,
      certificate_file: cert.fullchainPath,
      key_file: cert.keyPath,
      default: true,
    });
    kakehi = await startKakehi({
      listeners: [
        {
          address: MAIN,
          protocol: 'https',
          h2_max_concurrent_streams: 3,
          max_header_count: MAX_HEADER_COUNT,
          // A connection that takes no frames from us must still end: see the flood tests.
          keepalive_timeout_ms: 1_000,
        },
        { address: ONE_STREAM, protocol: 'https', h2_max_concurrent_streams: 1 },
      ],
      clusters: [
        { id: 'echo', backends: [{ id: 'e', address: echo.address }] },
        { id: 'held', backends: [{ id: 'h', address: held.address }] },
        { id: 'held-over', backends: [{ id: 'h', address: heldOver.address }] },
        { id: 'big', backends: [{ id: 'b', address: big.address }], backend_timeout_ms: 1_000 },
      ],
      frontends: [
        { hostname: 'held.h2.test', cluster: 'held' },
        { hostname: 'over.h2.test', cluster: 'held-over' },
        { hostname: 'big.h2.test', cluster: 'big' },
        { hostname: '*', cluster: 'echo' },
      ],
      certificates: [certificate(MAIN), certificate(ONE_STREAM)],
      access_log: 'off',
    });
    const portOf = (address: string) =>
      Number(kakehi.logs.find((l) => l.msg === 'listening' && l['address'] === address)?.['port']);
    port = portOf(MAIN);
    oneStreamPort = portOf(ONE_STREAM);
  });

  after(async () => {
    await kakehi?.stop();
    await echo?.close();
    await held?.close();
    await heldOver?.close();
    await big?.close();
  });

  it('advertises h2_max_concurrent_streams and, before SETTINGS are acknowledged, refuses the stream past it (REFUSED_STREAM) while the others complete', async () => {
    const before = held.seen.length;
    // nghttp2 holds a client to a limit it has not acknowledged yet with a stream error.
    const c = await H2Raw.open({ port, polite: false });
    const serverSettings = await c.frameWhere((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
    assert.equal(settingsOf(serverSettings).get(SETTING.MAX_CONCURRENT_STREAMS), 3);
    for (const id of [1, 3, 5, 7]) c.write(headersFrame(id, requestFields('held.h2.test', `/hold/${id}`)));
    await assertReset(c, 7, ERROR.REFUSED_STREAM);
    await held.holding;
    held.release();
    for (const id of [1, 3, 5]) await assertServed(c, id);
    assert.deepEqual(
      held.seen
        .slice(before)
        .map((s) => s.url)
        .sort(),
      ['/hold/1', '/hold/3', '/hold/5'],
      'the refused stream never reached the backend',
    );
    c.close();
  });

  it('closes the connection of a client that opens more streams than it acknowledged (nghttp2: connection error)', async () => {
    const errorsBefore = await refused(kakehi.socketPath, 'session_error');
    const c = await settled(port);
    for (const id of [1, 3, 5]) c.write(headersFrame(id, requestFields('over.h2.test', `/over/${id}`)));
    await heldOver.holding;
    c.write(headersFrame(7, requestFields('over.h2.test', '/over/7')));
    await c.closedPromise;
    // No stream is answered: the whole connection went, in-flight streams with it.
    assert.equal(c.frames.filter((f) => f.type === FRAME.HEADERS).length, 0, c.describe());
    await refusedReaches(kakehi.socketPath, 'session_error', errorsBefore + 1);
    heldOver.release();
    assert.ok(!heldOver.seen.some((s) => s.url === '/over/7'), 'the fourth stream never reached the backend');
    assert.equal((await h2Get(port, 'h2.test', '/after-over')).status, 200);
  });

  it('closes a rapid-reset connection with GOAWAY ENHANCE_YOUR_CALM before most streams reach the backend', async () => {
    const before = echo.seen.length;
    const refusedBefore = await refused(kakehi.socketPath, 'rapid_reset');
    const c = await settled(port);
    const OPENED = 500;
    const burst: Buffer[] = [];
    for (let i = 0; i < OPENED; i++) {
      const id = 1 + 2 * i;
      burst.push(headersFrame(id, requestFields('h2.test', `/rapid/${i}`)), rstStreamFrame(id, ERROR.CANCEL));
    }
    c.write(Buffer.concat(burst));
    const goaway = await c.closedWith();
    assert.ok(goaway, `a GOAWAY before the close; got ${c.describe()}`);
    assert.equal(errorCode(goaway), ERROR.ENHANCE_YOUR_CALM);
    await refusedReaches(kakehi.socketPath, 'rapid_reset', refusedBefore + 1);
    const reached = echo.seen.slice(before).filter((s) => s.url.startsWith('/rapid/')).length;
    assert.ok(reached < OPENED, `${reached} of ${OPENED} cancelled streams reached the backend`);
    assert.equal((await h2Get(port, 'h2.test', '/after-rapid')).status, 200);
  });

  it('closes a connection flooding CONTINUATION frames long before 16 MiB, and keeps serving', async () => {
    const before = echo.seen.length;
    const c = await settled(port);
    c.write(headersFrame(1, requestFields('h2.test', '/continuation'), { endHeaders: false }));
    // Small fragments each carrying a field: the header list grows with every frame.
    const one = frame(FRAME.CONTINUATION, 0, 1, hpackBlock([['x-flood', 'y'.repeat(64)]]));
    const closedFirst = await c.flood(
      Buffer.concat(Array.from({ length: 256 }, () => one)),
      16 * 1024 * 1024,
    );
    assert.equal(closedFirst, true, `still open after ${c.written} bytes`);
    // The GOAWAY is sent, but the server closes with our flood unread in its buffer,
    // so the kernel may answer with a reset that overtakes it: the close is what counts.
    const goaway = await c.closedWith();
    if (goaway !== undefined)
      assert.ok(
        [ERROR.PROTOCOL_ERROR, ERROR.INTERNAL_ERROR].includes(errorCode(goaway) as 1),
        `GOAWAY code ${errorCode(goaway)}`,
      );
    assert.equal(echo.seen.length, before, 'nothing reached the backend');
    assert.equal((await h2Get(port, 'h2.test', '/after-continuation')).status, 200);
  });

  it('resets a stream with more fields than max_header_count (ENHANCE_YOUR_CALM) and serves the next on the connection', async () => {
    const before = echo.seen.length;
    const c = await settled(port);
    const fields: [string, string][] = [];
    for (let i = 0; i < 1000; i++) fields.push([`x-field-${i}`, 'v']);
    c.write(headerBlockFrames(1, requestFields('h2.test', '/many-fields', fields)));
    c.write(headersFrame(3, requestFields('h2.test', '/after-many-fields')));
    await assertReset(c, 1, ERROR.ENHANCE_YOUR_CALM);
    await assertServed(c, 3);
    assert.deepEqual(
      echo.seen.slice(before).map((s) => s.url),
      ['/after-many-fields'],
    );
    c.close();
  });

  it('resets a stream whose cookie crumbs decode past max_header_bytes once SETTINGS are acknowledged, and answers 431 before', async () => {
    const before = echo.seen.length;
    // 64 crumbs of ~1 KiB: each field well under any per-field bound, the list past 32 KiB.
    const crumbs: [string, string][] = [];
    for (let i = 0; i < 40; i++) crumbs.push(['cookie', `c${i}=${'x'.repeat(1000)}`]);
    const acked = await settled(port);
    acked.write(headerBlockFrames(1, requestFields('h2.test', '/crumbs', crumbs)));
    await assertReset(acked, 1, ERROR.ENHANCE_YOUR_CALM);
    acked.close();
    // A client that never acknowledges the server's SETTINGS is held to nghttp2's
    // defaults (RFC 9113 §6.5.3), not to SETTINGS_MAX_HEADER_LIST_SIZE: the list
    // reaches kakehi, whose own head limit answers 431.
    const rude = await H2Raw.open({ port, polite: false });
    rude.write(headerBlockFrames(1, requestFields('h2.test', '/crumbs-unacked', crumbs)));
    await rude.streamEnd(1);
    const head = rude.streamFrames(1).find((f) => f.type === FRAME.HEADERS);
    assert.ok(head, rude.describe());
    assert.match(head.payload.toString('latin1'), /431/);
    rude.close();
    assert.equal(echo.seen.length, before, 'nothing reached the backend');
    assert.equal((await h2Get(port, 'h2.test', '/after-crumbs')).status, 200);
  });

  it('resets a window-stalled stream at backend_timeout_ms with the backend paused, freeing its slot', async () => {
    const c = await settled(oneStreamPort, [[SETTING.INITIAL_WINDOW_SIZE, 0]], '127.0.0.2');
    c.write(headersFrame(1, requestFields('big.h2.test', '/big')));
    const reset = await c.streamEnd(1);
    assert.equal(reset.type, FRAME.RST_STREAM, c.describe());
    assert.equal(big.state.requests, 1);
    assert.equal(big.state.blocked, true, 'kakehi stopped reading the backend');
    assert.equal(big.state.finished, false, 'the backend could not write the whole body');
    // The one stream slot is free again: a stream whose window the client opens is served.
    c.write(headersFrame(3, requestFields('h2.test', '/after-stall')));
    c.write(windowUpdateFrame(3, 1 << 20));
    await assertServed(c, 3);
    c.close();
  });

  for (const [kind, one] of [
    ['PING', pingFrame('flood')],
    ['SETTINGS', settingsFrame([])],
  ] as const) {
    it(`ends a connection flooding ${kind} frames without reading the ACKs, and keeps serving`, async () => {
      const c = await H2Raw.open({ port, polite: false });
      c.socket.pause();
      const chunk = Buffer.concat(Array.from({ length: 1000 }, () => one));
      // kakehi stops reading once the ACKs cannot be written (the flood pushes back
      // on itself), so the flood stops being taken well short of this.
      void c.flood(chunk, 256 * 1024 * 1024);
      await c.closedPromise;
      assert.ok(c.written < 256 * 1024 * 1024, `${c.written} bytes taken`);
      assert.equal((await h2Get(port, 'h2.test', `/after-${kind}`)).status, 200);
    });
  }

  it('resets malformed requests with PROTOCOL_ERROR, counts them, and serves the next stream', async () => {
    const before = echo.seen.length;
    const countBefore = await refused(kakehi.socketPath, 'malformed_request');
    const c = await settled(port);
    c.write(headersFrame(1, requestFields('h2.test', '/keep-alive', [['connection', 'keep-alive']])));
    c.write(headersFrame(3, requestFields('h2.test', '/two-hosts', [['host', 'other.test']])));
    c.write(headersFrame(5, requestFields('h2.test', '/good')));
    for (const id of [1, 3]) {
      await assertReset(c, id, ERROR.PROTOCOL_ERROR);
    }
    await assertServed(c, 5);
    assert.deepEqual(
      echo.seen.slice(before).map((s) => s.url),
      ['/good'],
    );
    await refusedReaches(kakehi.socketPath, 'malformed_request', countBefore + 1);
    c.close();
  });
});
