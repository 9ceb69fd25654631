// What the PKI connector costs while nothing changes, with its 2 s stat check on
// and off (the peer measured in the same run), over a thousand pairs; and how long
// a connector restart takes when the proxy already holds every certificate.
//
//   [PAIRS=1000 ROUNDS=3 WINDOW_S=20 QUIET_S=10] npm run bench:pki
//
// CPU is read from /proc/<pid>/stat (user + system) over a window in which no file
// changes, so it is the idle cost: timers, rescans (every 60 s, so at most one per
// window) and the stat check. Modes alternate so that machine noise hits both.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa } from '../test/helpers/certs.js';
import { ok } from '../test/helpers/command.js';
import { startKakehi } from '../test/helpers/kakehi-process.js';
import { eventually, issueMany, type PkiProcess, startPki } from '../test/helpers/pki.js';
import { median } from './load/report.js';

const PAIRS = Number(process.env.PAIRS ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WINDOW_S = Number(process.env.WINDOW_S ?? 20);
/** Quiet time after the connector is in sync, before the window: start-up garbage is collected by then. */
const QUIET_S = Number(process.env.QUIET_S ?? 10);
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function cpuMs(pid: number): number {
  // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / TICKS;
}

interface Round {
  mode: string;
  inSyncMs: number;
  puts: number;
  cpuMsPerS: number;
}

async function main(): Promise<void> {
  const ca = makeCa({ keyType: 'rsa' });
  const dir = mkdtempSync(join(tmpdir(), 'pki-idle-'));
  for (const [i, leaf] of issueMany(ca, PAIRS, (n) => `c${n}.idle.pki.test`).entries()) {
    writeFileSync(join(dir, `c${i}.crt`), leaf.certPem);
    writeFileSync(join(dir, `c${i}.key`), leaf.keyPem);
  }
  const kakehi = await startKakehi({ listeners: [{ address: '127.0.0.1:0', protocol: 'https' }] });
  const held = async () =>
    ((await ok(kakehi.socketPath, 'list_certificates'))['certificates'] as { source: string }[]).filter(
      (c) => c.source === 'pki',
    ).length;
  const run = async (mode: string, args: string[]): Promise<Round> => {
    const t0 = Date.now();
    const c: PkiProcess = await startPki(['-s', kakehi.socketPath, ...args, dir]);
    try {
      await eventually(
        async () => {
          const s = await c.status();
          const sync = s['last_sync'] as { ok: boolean } | null;
          if (!sync?.ok || s.pairs.filter((p) => p.state === 'ok').length !== PAIRS)
            throw new Error('not yet');
          if ((await held()) !== PAIRS) throw new Error('proxy not there yet');
        },
        { timeoutMs: 300_000, intervalMs: 100, what: 'the connector in sync' },
      );
      const inSyncMs = Date.now() - t0;
      const puts = Number(
        /kakehi_pki_changes_total\{op="put_certificate"\} (\d+)/.exec(await c.metrics())?.[1],
      );
      const pid = c.proc.pid as number;
      await new Promise((r) => setTimeout(r, QUIET_S * 1000));
      const before = cpuMs(pid);
      await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
      const cpuMsPerS = (cpuMs(pid) - before) / WINDOW_S;
      return { mode, inSyncMs, puts, cpuMsPerS };
    } finally {
      await c.stop();
    }
  };
  try {
    // The first start puts all of them; every later one finds them held.
    const first = await run('first start (check on)', []);
    const rounds: Round[] = [first];
    for (let i = 0; i < ROUNDS; i++) {
      const order = i % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      for (const m of order) {
        rounds.push(await run(`restart, check ${m}`, m === 'on' ? [] : ['--check-interval-ms', '0']));
      }
    }
    console.log(`PKI connector idle cost, ${PAIRS} pairs, ${WINDOW_S} s windows, ${ROUNDS} rounds`);
    console.log('| start | in sync after | puts sent | CPU while idle |');
    console.log('|---|---|---|---|');
    for (const r of rounds) {
      console.log(
        `| ${r.mode} | ${(r.inSyncMs / 1000).toFixed(1)} s | ${r.puts} | ${r.cpuMsPerS.toFixed(1)} ms/s |`,
      );
    }
    const on = median(rounds.filter((r) => r.mode === 'restart, check on').map((r) => r.cpuMsPerS));
    const off = median(rounds.filter((r) => r.mode === 'restart, check off').map((r) => r.cpuMsPerS));
    console.log(
      `median CPU while idle: check on ${on.toFixed(1)} ms/s, off ${off.toFixed(1)} ms/s; on ÷ off = ${(on / off).toFixed(2)}x, ` +
        `i.e. ${((on - off) / 10).toFixed(2)}% of one core for the check`,
    );
  } finally {
    await kakehi.stop();
  }
}

await main();
