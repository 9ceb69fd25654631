// Summarises a load-benchmark run written by bench/load/run.sh.
// `node report.js RESULTS_DIR` reads meta.txt, targets.tsv and the r<round>-<target>.{wrk,cpu}
// files (.h2load and .h2log instead of .wrk for SCHEME=h2), prints a table (req/s, p99,
// errors, CPU use, kakehi's ratio to each target) and writes summary.json and summary.md next to them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One measured run of the load generator (wrk or h2load). */
export interface LoadResult {
  requestsPerSecond: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  socketErrors: number;
  non2xx: number;
}

const unitToMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationMs(value: string, unit: string): number {
  const factor = unitToMs[unit];
  if (factor === undefined) throw new Error(`unknown wrk time unit "${unit}"`);
  return Number(value) * factor;
}

/** Parses the text output of `wrk --latency`. Throws if a figure is missing. */
export function parseWrk(text: string): LoadResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const total = /^\s*(\d+) requests in /m.exec(text);
  const p50 = /^\s+50(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(text);
  const p99 = /^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(text);
  if (!rps || !total || !p50 || !p99) throw new Error('not a complete `wrk --latency` output');
  const errors = /^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/m.exec(text);
  const non2xx = /^\s*Non-2xx or 3xx responses: (\d+)/m.exec(text);
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    p50Ms: durationMs(p50[1]!, p50[2]!),
    p99Ms: durationMs(p99[1]!, p99[2]!),
    socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/**
 * Parses h2load's text output, with p50/p99 from its `--log-file` (tab-separated: start time,
 * status, microseconds to the end of the response), since h2load prints no percentiles.
 * Errors are failed, errored and timed-out requests plus non-2xx answers. Throws if a figure is missing.
 */
export function parseH2load(text: string, log: string | undefined): LoadResult {
  const finished = /^finished in [^,]+, ([\d.]+) req\/s/m.exec(text);
  const requests =
    /^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(
      text,
    );
  const codes = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(text);
  if (!finished || !requests || !codes) throw new Error('not a complete h2load output');
  const n = (i: number): number => Number(requests[i]);
  const micros = (log ?? '')
    .split('\n')
    .map((line) => Number(line.split('\t')[2]))
    .filter((v) => Number.isFinite(v))
    .sort((x, y) => x - y);
  const percentileMs = (p: number): number =>
    micros.length ? micros[Math.min(micros.length - 1, Math.floor(micros.length * p))]! / 1000 : Number.NaN;
  return {
    requestsPerSecond: Number(finished[1]),
    requests: n(3),
    p50Ms: percentileMs(0.5),
    p99Ms: percentileMs(0.99),
    socketErrors: n(4) + n(5) + n(6),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
  };
}

/** The measured run of one target in one round, from whichever load generator wrote it. */
function readResult(dir: string, round: string, target: string): LoadResult {
  const base = join(dir, `r${round}-${target}`);
  if (!existsSync(`${base}.h2load`)) return parseWrk(readFileSync(`${base}.wrk`, 'utf8'));
  const log = existsSync(`${base}.h2log`) ? readFileSync(`${base}.h2log`, 'utf8') : undefined;
  return parseH2load(readFileSync(`${base}.h2load`, 'utf8'), log);
}

export interface CpuUse {
  /** Share of core 0 (the proxy's core) that was busy, 0..1. */
  core0: number;
  /** Share of core 1 (wrk and the backend) that was busy, 0..1. */
  core1: number;
  /** Share of both cores stolen by the hypervisor, 0..1. */
  steal: number;
  /** CPU used by the proxy's processes, in cores (1 = one full core). */
  proxy: number;
  /** CPU used by the backend's worker, in cores. */
  backend: number;
  /** CPU used by every other process on the machine (not the proxy, backend or wrk), in cores. */
  others: number;
}

interface Snapshot {
  time: number;
  cores: Map<string, number[]>;
  ticks: Map<string, number>;
  /** CPU ticks of every process on the machine, by pid. */
  pids: Map<string, number>;
}

function parseSnapshot(block: string): Snapshot {
  const snapshot: Snapshot = { time: Number.NaN, cores: new Map(), ticks: new Map(), pids: new Map() };
  for (const line of block.split('\n')) {
    const [key, ...fields] = line.trim().split(/\s+/);
    if (!key) continue;
    if (key === 't') snapshot.time = Number(fields[0]);
    else if (key === 'pid') snapshot.pids.set(fields[0] ?? '', Number(fields[1] ?? 0));
    else if (/^cpu\d+$/.test(key)) snapshot.cores.set(key, fields.map(Number));
    else snapshot.ticks.set(key, Number(fields[0] ?? 0));
  }
  return snapshot;
}

/** Parses a .cpu file: two /proc snapshots ("before", "after") written around the measured run. */
export function parseCpu(text: string, clockTicks: number): CpuUse {
  const [, before, after] = text.split(/^(?:before|after)$/m);
  if (before === undefined || after === undefined) throw new Error('cpu file lacks before/after');
  const a = parseSnapshot(before);
  const b = parseSnapshot(after);
  const busy = (core: string): { busy: number; steal: number } => {
    const x = a.cores.get(core);
    const y = b.cores.get(core);
    if (!x || !y) return { busy: Number.NaN, steal: Number.NaN };
    // user nice system idle iowait irq softirq steal
    const delta = y.slice(0, 8).map((v, i) => v - (x[i] ?? 0));
    const total = delta.reduce((sum, v) => sum + v, 0);
    const idle = (delta[3] ?? 0) + (delta[4] ?? 0);
    return {
      busy: total > 0 ? 1 - idle / total : Number.NaN,
      steal: total > 0 ? (delta[7] ?? 0) / total : 0,
    };
  };
  const seconds = b.time - a.time;
  const cores = (key: string): number => {
    const x = a.ticks.get(key);
    const y = b.ticks.get(key);
    return x === undefined || y === undefined || !(seconds > 0) ? Number.NaN : (y - x) / clockTicks / seconds;
  };
  const c0 = busy('cpu0');
  const c1 = busy('cpu1');
  const proxy = cores('proxy');
  const backend = cores('backend');
  // Processes present at both snapshots count their difference, new ones all their time;
  // ones that exited during the window are missed, so this is a lower bound.
  let allTicks = 0;
  for (const [pid, ticks] of b.pids) allTicks += ticks - (a.pids.get(pid) ?? 0);
  const all = seconds > 0 && b.pids.size > 0 ? allTicks / clockTicks / seconds : Number.NaN;
  const others = all - (Number.isNaN(proxy) ? 0 : proxy) - backend;
  return { core0: c0.busy, core1: c1.busy, steal: (c0.steal + c1.steal) / 2, proxy, backend, others };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface TargetSummary {
  target: string;
  label: string;
  status: 'ok' | 'not available' | 'failed';
  note: string;
  rounds: number;
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
  cpu: CpuUse | undefined;
  kakehiRatio: number | undefined;
  /** Highest req/s of any round: other work on the machine only ever lowers a figure. */
  bestRequestsPerSecond: number;
  kakehiBestRatio: number | undefined;
  /** req/s divided by the CPU the proxy itself used (median of rounds), in cores. */
  perProxyCore: number;
  kakehiPerCoreRatio: number | undefined;
  perRound: { round: string; requestsPerSecond: number; p99Ms: number }[];
}

const pct = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? '—' : `${Math.round(v * 100)}%`;
const fmtMs = (v: number): string => (v < 10 ? v.toFixed(2) : v.toFixed(1)) + ' ms';

export function summarise(dir: string): { text: string; json: unknown } {
  const meta = new Map<string, string>();
  for (const line of readFileSync(join(dir, 'meta.txt'), 'utf8').split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) meta.set(line.slice(0, at), line.slice(at + 1));
  }
  const clockTicks = Number(meta.get('clk_tck') ?? '100');
  const rows = readFileSync(join(dir, 'targets.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [round, target, status, note] = line.split('\t');
      return { round: round ?? '', target: target ?? '', status: status ?? '', note: note ?? '' };
    });
  const order = [...new Set(rows.map((row) => row.target))];
  const summaries: TargetSummary[] = order.map((target) => {
    const mine = rows.filter((row) => row.target === target);
    const ok = mine.filter((row) => row.status === 'ok');
    const results = ok.map((row) => readResult(dir, row.round, target));
    const cpuByRound = ok.map((row) => {
      const file = join(dir, `r${row.round}-${target}.cpu`);
      return existsSync(file) ? parseCpu(readFileSync(file, 'utf8'), clockTicks) : undefined;
    });
    const cpus = cpuByRound.filter((cpu) => cpu !== undefined);
    const perCore = results
      .map((r, i) => r.requestsPerSecond / (cpuByRound[i]?.proxy ?? Number.NaN))
      .filter((v) => Number.isFinite(v));
    const failed = mine.find((row) => row.status !== 'ok');
    const medianOf = (pick: (cpu: CpuUse) => number): number => median(cpus.map(pick));
    return {
      target,
      label: meta.get(`label.${target}`) ?? target,
      status: ok.length > 0 ? 'ok' : failed?.status === 'not available' ? 'not available' : 'failed',
      note: failed?.note ?? '',
      rounds: ok.length,
      requestsPerSecond: results.length ? median(results.map((r) => r.requestsPerSecond)) : Number.NaN,
      p99Ms: results.length ? median(results.map((r) => r.p99Ms)) : Number.NaN,
      errors: results.reduce((sum, r) => sum + r.socketErrors + r.non2xx, 0),
      cpu: cpus.length
        ? {
            core0: medianOf((c) => c.core0),
            core1: medianOf((c) => c.core1),
            steal: medianOf((c) => c.steal),
            proxy: medianOf((c) => c.proxy),
            backend: medianOf((c) => c.backend),
            others: medianOf((c) => c.others),
          }
        : undefined,
      kakehiRatio: undefined,
      bestRequestsPerSecond: results.length
        ? Math.max(...results.map((r) => r.requestsPerSecond))
        : Number.NaN,
      kakehiBestRatio: undefined,
      perProxyCore: perCore.length ? median(perCore) : Number.NaN,
      kakehiPerCoreRatio: undefined,
      perRound: results.map((r, i) => ({
        round: ok[i]?.round ?? '',
        requestsPerSecond: r.requestsPerSecond,
        p99Ms: r.p99Ms,
      })),
    };
  });
  const kakehi = summaries.find((s) => s.target === 'kakehi' && s.status === 'ok');
  for (const s of summaries) {
    if (kakehi && s.status === 'ok') {
      s.kakehiRatio = kakehi.requestsPerSecond / s.requestsPerSecond;
      s.kakehiBestRatio = kakehi.bestRequestsPerSecond / s.bestRequestsPerSecond;
      if (s.target !== 'direct') s.kakehiPerCoreRatio = kakehi.perProxyCore / s.perProxyCore;
    }
  }

  const header = [
    'target',
    'req/s',
    'best req/s',
    'p99',
    'errors',
    'kakehi ÷ target',
    'kakehi ÷ target (best)',
    'req/s per core of proxy CPU',
    'kakehi ÷ target (per core)',
    'proxy CPU',
    'core 0 busy',
    'core 1 busy (wrk + backend)',
    'backend CPU',
    'other processes CPU',
  ];
  const table = summaries.map((s) =>
    s.status === 'ok'
      ? [
          s.label,
          Math.round(s.requestsPerSecond).toLocaleString('en-US'),
          Math.round(s.bestRequestsPerSecond).toLocaleString('en-US'),
          fmtMs(s.p99Ms),
          String(s.errors),
          s.kakehiRatio === undefined ? 'n/a' : `${s.kakehiRatio.toFixed(2)}x`,
          s.kakehiBestRatio === undefined ? 'n/a' : `${s.kakehiBestRatio.toFixed(2)}x`,
          Number.isNaN(s.perProxyCore) ? '—' : Math.round(s.perProxyCore).toLocaleString('en-US'),
          s.kakehiPerCoreRatio === undefined ? '—' : `${s.kakehiPerCoreRatio.toFixed(2)}x`,
          s.target === 'direct' ? '—' : pct(s.cpu?.proxy),
          pct(s.cpu?.core0),
          pct(s.cpu?.core1),
          pct(s.cpu?.backend),
          pct(s.cpu?.others),
        ]
      : [s.label, s.status, ...header.slice(2).map(() => '')],
  );
  const lines = [header, header.map(() => '---'), ...table].map((cells) => `| ${cells.join(' | ')} |`);
  const notes = summaries.filter((s) => s.status !== 'ok').map((s) => `- ${s.label}: ${s.status}: ${s.note}`);
  for (const row of rows) {
    const summary = summaries.find((s) => s.target === row.target);
    if (row.status !== 'ok' && summary?.status === 'ok') {
      notes.push(
        `- ${summary.label}, round ${row.round}: ${row.status}: ${row.note} (left out of its figures)`,
      );
    }
  }
  const noisy = summaries.filter((s) => (s.cpu?.others ?? 0) > 0.05);
  if (noisy.length) {
    notes.push(
      `- the machine was not quiet: other processes used more than 5% of a core during ${noisy.map((s) => s.target).join(', ')}; those figures are lower bounds`,
    );
  }
  const rounds = Number(meta.get('rounds') ?? '1');
  if (rounds > 1) {
    notes.push(
      `- req/s, p99 and CPU are medians over ${rounds} rounds (targets interleaved per round); "best" is the highest round`,
    );
  }
  const nodePeers = summaries.filter(
    (s) => (s.target === 'reply-from' || s.target === 'http-proxy') && s.status === 'ok',
  );
  const haproxy = summaries.find((s) => s.target === 'haproxy' && s.status === 'ok');
  const aims: string[] = [];
  const perRoundRatios = (peer: TargetSummary): string => {
    if (!kakehi || kakehi.perRound.length < 2) return '';
    const ratios = kakehi.perRound.flatMap((k) => {
      const p = peer.perRound.find((r) => r.round === k.round);
      return p ? [(k.requestsPerSecond / p.requestsPerSecond).toFixed(2)] : [];
    });
    return ratios.length ? `; per round: ${ratios.join(', ')}` : '';
  };
  if (kakehi && nodePeers.length) {
    const best = nodePeers.reduce((x, y) => (y.requestsPerSecond > x.requestsPerSecond ? y : x));
    const ratio = kakehi.requestsPerSecond / best.requestsPerSecond;
    aims.push(
      `- kakehi ÷ best Node peer (${best.label}): ${ratio.toFixed(2)}x (aim ≥ 1.5x: ${ratio >= 1.5 ? 'met' : 'not met'}${perRoundRatios(best)})`,
    );
  }
  if (kakehi && haproxy) {
    const ratio = kakehi.requestsPerSecond / haproxy.requestsPerSecond;
    // TCP pass-through does less per byte than HTTP, so the aim against HAProxy is higher.
    const aim = meta.get('mode') === 'tcp' ? 0.7 : 0.5;
    aims.push(
      `- kakehi ÷ HAProxy: ${ratio.toFixed(2)}x (aim ≥ ${aim}x: ${ratio >= aim ? 'met' : 'not met'}${perRoundRatios(haproxy)})`,
    );
  }
  // The other native proxies have no aim; their ratios sit beside HAProxy's to be read together.
  for (const target of ['nginx', 'sozu', 'node-h2']) {
    const peer = summaries.find((s) => s.target === target && s.status === 'ok');
    if (!kakehi || !peer) continue;
    const ratio = kakehi.requestsPerSecond / peer.requestsPerSecond;
    aims.push(`- kakehi ÷ ${peer.label}: ${ratio.toFixed(2)}x (no aim${perRoundRatios(peer)})`);
  }
  const context = [
    `command: ${meta.get('command') ?? '?'}`,
    `machine: ${meta.get('machine') ?? '?'}`,
    `kakehi: ${meta.get('kakehi_tree') ?? '?'}; started at ${meta.get('date') ?? '?'}`,
    `client: ${meta.get('client_args') ?? meta.get('wrk_args') ?? '?'} (pinned to core 1, with the backend); proxies pinned to core 0; nice ${meta.get('nice') ?? '0'}`,
    `CPU columns: share of one core; "proxy CPU" is the proxy's own processes, "core N busy" everything on that core`,
  ];
  const text = [
    ...context,
    '',
    ...lines,
    ...(notes.length ? ['', ...notes] : []),
    ...(aims.length ? ['', ...aims] : []),
  ].join('\n');
  const json = { meta: Object.fromEntries(meta), targets: summaries };
  return { text, json };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node report.js RESULTS_DIR');
    process.exit(2);
  }
  const { text, json } = summarise(dir);
  writeFileSync(join(dir, 'summary.md'), text + '\n');
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(json, null, 2) + '\n');
  console.log(text);
}
