// Micro-benchmark of the per-request head work: parsing a typical browser
// request head and writing the head kakehi forwards (hop-by-hop removal,
// X-Forwarded-*, Forwarded, X-Request-Id), and the response head back.

import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { requestHeadForBackend, responseHeadForClient } from '../src/proxy/forward-head.js';
import {
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from '../src/proxy/http1-head.js';

const REQUEST = [
  'GET /assets/app.js?v=42 HTTP/1.1',
  'Host: www.example.com',
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'Accept-Language: en-GB,en;q=0.5',
  'Accept-Encoding: gzip, deflate, br, zstd',
  'Connection: keep-alive',
  'Cookie: session=0123456789abcdef; theme=dark',
  'Upgrade-Insecure-Requests: 1',
  'Sec-Fetch-Dest: document',
  'Sec-Fetch-Mode: navigate',
  'X-Forwarded-For: 203.0.113.7',
  '',
  '',
].join('\r\n');

const RESPONSE = [
  'HTTP/1.1 200 OK',
  'Content-Type: application/javascript',
  'Content-Length: 48213',
  'Cache-Control: public, max-age=31536000, immutable',
  'ETag: "5f1e-18c3a"',
  'Connection: keep-alive',
  'Keep-Alive: timeout=5',
  '',
  '',
].join('\r\n');

export async function runHeaderBench(): Promise<void> {
  const req = parseRequestHead(REQUEST) as RequestHead;
  const res = parseResponseHead(RESPONSE) as ResponseHead;
  const client = { address: '198.51.100.23', proto: 'http', port: 8080 };
  let sink = 0;
  const bench = new Bench({ time: 500 });
  bench
    .add('parse request head (12 fields)', () => {
      sink += (parseRequestHead(REQUEST) as RequestHead).names.length;
    })
    .add('write forwarded request head', () => {
      sink += requestHeadForBackend(req, client, '3f2b9c1e-77aa-4c0e-9f5e-2d1b5c7a9e10').length;
    })
    .add('parse + write request head', () => {
      const r = parseRequestHead(REQUEST) as RequestHead;
      sink += requestHeadForBackend(r, client, 'req-1').length;
    })
    .add('parse + write response head', () => {
      const r = parseResponseHead(RESPONSE) as ResponseHead;
      sink += responseHeadForClient(r, 'default', false).length;
    });
  await bench.run();
  console.log('Per-request head work');
  console.table(
    bench.tasks.map((t) => {
      const r = t.result as unknown as { throughput?: { mean: number } } | undefined;
      const ops = r?.throughput?.mean ?? 0;
      return { task: t.name, 'ops/s': Math.round(ops), 'ns/op': ops > 0 ? Math.round(1e9 / ops) : 0 };
    }),
  );
  void res;
  if (sink < 0) console.log(sink);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runHeaderBench();
}
