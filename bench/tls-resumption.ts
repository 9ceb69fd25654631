// Handshake cost, full against resumed, on a real kakehi (one worker, TLS
// 1.3, an ECDSA P-256 and an RSA 2048 certificate, the client's signature
// algorithms choosing): what a client that uses each session
// ticket once saves now that every resumption brings a new ticket. Each run is
// a fresh connection, timed from connect to 'secureConnect'. Run with
// `npm run build && node dist/bench/tls-resumption.js`.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { stringify } from 'yaml';
import { issueCert, makeCa } from '../test/helpers/certs.js';

const RUNS = 300;
const PORT = 18_643;

function handshake(
  sigalgs: string,
  session: Buffer | undefined,
): Promise<{ ms: number; reused: boolean; ticket?: Buffer }> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    let ms = 0;
    let reused = false;
    const s = connect({
      host: '127.0.0.1',
      port: PORT,
      rejectUnauthorized: false,
      maxVersion: 'TLSv1.3',
      sigalgs,
      ...(session === undefined ? {} : { session }),
    });
    s.once('secureConnect', () => {
      ms = performance.now() - t0;
      reused = s.isSessionReused();
      // The ticket comes after the handshake, with the first bytes the server sends.
      s.write('GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    });
    s.once('session', (ticket: Buffer) => {
      res({ ms, reused, ticket });
      s.destroy();
    });
    s.on('data', () => {});
    s.on('close', () => res({ ms, reused }));
    s.on('error', rej);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const dir = mkdtempSync(join(tmpdir(), 'kakehi-bench-tls-'));
// Certificates from the tests' own CA helper, written out for the config file.
const ca = makeCa({ keyType: 'ec' });
const KEY_TYPES = { ecdsa: 'ecdsa_secp256r1_sha256', rsa: 'rsa_pss_rsae_sha256' } as const;
for (const type of ['ec', 'rsa'] as const) {
  const leaf = issueCert(ca, ['bench.test'], { keyType: type });
  writeFileSync(join(dir, `${type}.crt`), leaf.fullchainPem);
  writeFileSync(join(dir, `${type}.key`), leaf.keyPem);
}
const address = `127.0.0.1:${PORT}`;
writeFileSync(
  join(dir, 'config.yaml'),
  stringify({
    workers: 1,
    listeners: [{ address, protocol: 'https' }],
    certificates: ['ec', 'rsa'].map((t) => ({
      listener: address,
      certificate_file: join(dir, `${t}.crt`),
      key_file: join(dir, `${t}.key`),
      default: true,
    })),
    access_log: 'off',
    command_socket: join(dir, 'kakehi.sock'),
  }),
);
const cli = resolve(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const kakehi = spawn(process.execPath, [cli, 'run', '-c', join(dir, 'config.yaml')], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
await new Promise<void>((ready, fail) => {
  let log = '';
  kakehi.stderr.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.includes('kakehi ready')) ready();
  });
  kakehi.once('exit', (code) => fail(new Error(`kakehi exited (${code}) before it was ready:\n${log}`)));
});
try {
  for (const [name, sigalgs] of Object.entries(KEY_TYPES)) {
    const full: number[] = [];
    const resumed: number[] = [];
    for (let i = 0; i < RUNS; i++) full.push((await handshake(sigalgs, undefined)).ms);
    let ticket = (await handshake(sigalgs, undefined)).ticket;
    for (let i = 0; i < RUNS; i++) {
      const r = await handshake(sigalgs, ticket);
      if (!r.reused) throw new Error(`resumption ${i} fell back to a full handshake`);
      resumed.push(r.ms);
      ticket = r.ticket;
    }
    const f = median(full);
    const r = median(resumed);
    console.log(
      `${name}: full median ${f.toFixed(2)} ms, resumed median ${r.toFixed(2)} ms (${RUNS} each, each resumption with the previous one's ticket), full / resumed ${(f / r).toFixed(2)}`,
    );
  }
} finally {
  kakehi.kill('SIGTERM');
}
