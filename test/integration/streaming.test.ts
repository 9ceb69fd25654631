import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';

const MB = 1024 * 1024;
const TOTAL = 100 * MB;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

describe('streaming bodies and tunnels', () => {
  let server: Server;
  let wss: WebSocketServer;
  let kakehi: Kakehi;
  let uploaded = 0;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/upload') {
        let n = 0;
        req.on('data', (c: Buffer) => {
          n += c.length;
        });
        req.on('end', () => {
          uploaded = n;
          res.end(String(n));
        });
        return;
      }
      if (req.url === '/download') {
        res.writeHead(200, { 'content-length': String(TOTAL) });
        let sent = 0;
        const pump = () => {
          while (sent < TOTAL) {
            sent += CHUNK.length;
            if (!res.write(CHUNK)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      res.end('ok');
    });
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [
        { id: 'c', websocket_idle_timeout_ms: 60_000, backends: [{ id: 'b', address: `127.0.0.1:${port}` }] },
      ],
      frontends: [{ hostname: '*', cluster: 'c' }],
      access_log: 'off',
    });
  });

  after(async () => {
    await kakehi.stop();
    wss.close();
    server.closeAllConnections();
    server.close();
  });

  it('carries a 100 MB upload with bounded proxy memory', async () => {
    const pid = kakehi.workerPids()[0]!;
    const base = rssBytes(pid);
    let peak = base;
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: kakehi.port,
          path: '/upload',
          method: 'POST',
          headers: { 'content-length': String(TOTAL) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
          });
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < TOTAL) {
          sent += CHUNK.length;
          if (sent % (4 * MB) === 0) peak = Math.max(peak, rssBytes(pid));
          if (!req.write(CHUNK)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(body, String(TOTAL));
    assert.equal(uploaded, TOTAL);
    const growth = peak - base;
    assert.ok(growth < 48 * MB, `proxy RSS grew by ${(growth / MB).toFixed(1)} MB for a 100 MB upload`);
  });

  it('carries a 100 MB download with bounded proxy memory', async () => {
    const pid = kakehi.workerPids()[0]!;
    const base = rssBytes(pid);
    let peak = base;
    const received = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: kakehi.port, path: '/download' }, (res) => {
        let n = 0;
        let next = 4 * MB;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n >= next) {
            next += 4 * MB;
            peak = Math.max(peak, rssBytes(pid));
          }
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(received, TOTAL);
    const growth = peak - base;
    assert.ok(growth < 48 * MB, `proxy RSS grew by ${(growth / MB).toFixed(1)} MB for a 100 MB download`);
  });

  it('tunnels a WebSocket both ways and closes it on both sides together', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${kakehi.port}/chat`);
    await once(ws, 'open');
    const echoes: string[] = [];
    ws.on('message', (d) => echoes.push(d.toString()));
    for (const m of ['one', 'two', 'x'.repeat(100_000)]) {
      ws.send(m);
      await once(ws, 'message');
    }
    assert.deepEqual(
      echoes.map((e) => (e.length > 10 ? e.length : e)),
      ['one', 'two', 100_000],
    );
    const serverSide = [...wss.clients][0]!;
    const serverClosed = once(serverSide, 'close');
    ws.close(1000, 'bye');
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1000);
    await serverClosed;
  });

  it('closes the client side when the backend closes the WebSocket', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${kakehi.port}/chat`);
    await once(ws, 'open');
    const serverSide = [...wss.clients].find((c) => c.readyState === WebSocket.OPEN)!;
    serverSide.terminate();
    await once(ws, 'close');
    assert.equal(ws.readyState, WebSocket.CLOSED);
  });
});
