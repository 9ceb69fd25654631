// Per-frontend allowed upgrades against a real kakehi: curl, a real h2c client,
// upgrades through a frontend that allows h2c to a backend that accepts it, and
// gets a plain HTTP/1.1 answer from frontends that do not; a frontend with an
// empty list refuses WebSocket too.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { FieldIssue } from '../../src/errors.js';
import { frontendSchema } from '../../src/model/objects.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange, statusCodes } from '../helpers/raw-client.js';

const run = promisify(execFile);
const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const H2C_BODY = 'hello over h2c';

/** One HTTP/2 frame: 9-byte header (length, type, flags, stream) then the payload. */
function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * Accepts h2c upgrades the way RFC 7540 §3.2 asks (only with one HTTP2-Settings),
 * then answers the upgraded request on stream 1 over HTTP/2: `:status: 200` is
 * HPACK static index 8 (one byte, 0x88). Plain requests get "plain". With an
 * X-Switch-To field it switches to that protocol instead, whatever was asked.
 */
interface H2cBackend {
  port: number;
  upgrades: IncomingMessage['headers'][];
  plain: IncomingMessage['headers'][];
  close(): Promise<void>;
}

async function h2cBackend(): Promise<H2cBackend> {
  const upgrades: IncomingMessage['headers'][] = [];
  const plain: IncomingMessage['headers'][] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    plain.push(req.headers);
    req.resume();
    res.end('plain');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, early: Buffer) => {
    upgrades.push(req.headers);
    socket.on('error', () => {});
    const switchTo = req.headers['x-switch-to'];
    if (typeof switchTo === 'string') {
      // Misbehaves on purpose: switches to the protocol the test names.
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${switchTo}\r\nSec-WebSocket-Accept: x\r\n\r\n`,
      );
      return;
    }
    if (req.headers.upgrade !== 'h2c' || typeof req.headers['http2-settings'] !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    socket.write(frame(4, 0, 0)); // the server's SETTINGS, empty
    let got = early;
    let answered = false;
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      // The client's preface and its SETTINGS frame header: then answer stream 1.
      if (answered || got.length < PREFACE.length + 9) return;
      answered = true;
      assert.equal(got.subarray(0, PREFACE.length).toString('latin1'), PREFACE);
      socket.write(
        Buffer.concat([
          frame(4, 1, 0), // SETTINGS ACK
          frame(1, 4, 1, Buffer.from([0x88])), // HEADERS, END_HEADERS: :status 200
          frame(0, 1, 1, Buffer.from(H2C_BODY)), // DATA, END_STREAM
          frame(7, 0, 0, Buffer.alloc(8)), // GOAWAY, last stream 0, NO_ERROR
        ]),
      );
    };
    socket.on('data', onData);
    // The tunnel forwards curl's close as a half-close: close our side too.
    socket.on('end', () => socket.end());
    onData(Buffer.alloc(0));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return {
    port,
    upgrades,
    plain,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let kakehi: Kakehi;
let backend: H2cBackend;

before(async () => {
  backend = await h2cBackend();
  kakehi = await startKakehi({
    listeners: [{ address: '127.0.0.1:0' }],
    clusters: [{ id: 'a', backends: [{ id: 'a-1', address: `127.0.0.1:${backend.port}` }] }],
    frontends: [
      { hostname: 'h2c.test', cluster: 'a', allowed_upgrades: ['websocket', 'h2c'] },
      { hostname: 'none.test', cluster: 'a', allowed_upgrades: [] },
      { hostname: '*', cluster: 'a' },
    ],
  });
});

after(async () => {
  await kakehi?.stop();
  await backend?.close();
});

beforeEach(() => {
  backend.upgrades.length = 0;
  backend.plain.length = 0;
});

/** curl --http2 on plain http asks for h2c with an HTTP2-Settings field. Body, then the version curl used. */
async function curlH2c(host: string): Promise<string> {
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '--http2',
      '--max-time',
      '20',
      '-H',
      `Host: ${host}`,
      '-w',
      ' %{http_version}',
      `http://127.0.0.1:${kakehi.port}/up`,
    ],
    { timeout: 30_000 },
  );
  return stdout;
}

describe('allowed_upgrades', () => {
  test('a frontend allowing h2c forwards the upgrade with its HTTP2-Settings: curl talks HTTP/2 to the backend', async () => {
    assert.equal(await curlH2c('h2c.test'), `${H2C_BODY} 2`);
    assert.equal(backend.upgrades.length, 1);
    const h = backend.upgrades[0]!;
    assert.equal(h.upgrade, 'h2c');
    assert.equal(typeof h['http2-settings'], 'string');
    assert.match(String(h.connection), /^Upgrade, HTTP2-Settings$/);
    assert.equal(backend.plain.length, 0);
  });

  test('the default list (websocket) sends an h2c request on as plain HTTP/1.1', async () => {
    assert.equal(await curlH2c('other.test'), 'plain 1.1');
    assert.equal(backend.upgrades.length, 0);
    assert.equal(backend.plain.length, 1);
    assert.equal(backend.plain[0]!.upgrade, undefined);
    assert.equal(backend.plain[0]!['http2-settings'], undefined);
  });

  test('an empty list sends a WebSocket request on as a plain request', async () => {
    const r = await rawExchange(
      kakehi.port,
      'GET /ws HTTP/1.1\r\nHost: none.test\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.equal(backend.upgrades.length, 0);
    assert.equal(backend.plain.length, 1);
    assert.equal(backend.plain[0]!.upgrade, undefined);
  });

  test('two Upgrade lines are one list: "websocket" after "h2c" matches no allowed protocol and goes on plain', async () => {
    const r = await rawExchange(
      kakehi.port,
      'GET / HTTP/1.1\r\nHost: h2c.test\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n' +
        'Upgrade: websocket\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.deepEqual(statusCodes(r.text), [200], r.text);
    assert.equal(backend.upgrades.length, 0);
    assert.equal(backend.plain.length, 1);
  });

  test('a 101 switching to another protocol than the one asked for gets the client a 502, not a tunnel', async () => {
    const r = await rawExchange(
      kakehi.port,
      'GET /ws HTTP/1.1\r\nHost: h2c.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Switch-To: h2c\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      { doneWhen: (t) => t.includes('\r\n\r\n') },
    );
    assert.deepEqual(statusCodes(r.text), [502], r.text);
    assert.equal(backend.upgrades.length, 1);
  });

  test('the field refuses what no request could match, naming the entry', () => {
    for (const bad of ['H2C', 'web socket', '']) {
      const issues: FieldIssue[] = [];
      frontendSchema.parse({ hostname: 'a.test', cluster: 'a', allowed_upgrades: [bad] }, '', issues);
      assert.equal(issues.length, 1, JSON.stringify(issues));
      assert.match(issues[0]!.path, /^allowed_upgrades\[0\]$/);
    }
  });
});
