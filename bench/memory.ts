// What a proxy holds in memory at rest and per idle keep-alive connection:
// kakehi (main + one worker) against HAProxy and nginx in the same run, each
// in front of the same backend, each given N client connections that complete
// one request and then stay open, idle.
//
//   [N=10000 CONCURRENCY=64 PEERS="haproxy nginx" KAKEHI="label=path/to/cli/main.js ..."] npm run bench:memory
//
// Memory is read from /proc/<pid>/smaps_rollup of every process of the proxy:
// RSS (what `ps` shows; the pages of the node binary that main and the worker
// share are counted in each), USS (private pages: what the process alone
// costs), anonymous pages, and PSS (shared pages divided between their users,
// so other Node processes on the machine lower it: read it with care), and
// "shared once": USS of every process plus the shared pages of the largest,
// i.e. the binary and libraries counted once (about what the group costs).
// Figures: at rest (started, one request answered, 5 s quiet), then 5 s and 25 s
// after the last of the N connections got its response. Per connection is
// (figure − figure at rest) ÷ N. KAKEHI names one or more builds to compare
// (label=cli path, space-separated; default: this tree's dist); a proxy not
// installed is skipped with the apt-get line to install it.
//
// File descriptors: the bench process holds N client sockets and the proxies N
// plus their backend connections; N must stay below `ulimit -n` (checked at start),
// and HAProxy wants two per connection (it is skipped when N does not fit).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ok } from '../test/helpers/command.js';
import { CLI } from '../test/helpers/kakehi-process.js';

const N = Number(process.env.N ?? 10_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const PEERS = (process.env.PEERS ?? 'haproxy nginx').split(/\s+/).filter(Boolean);
const BUILDS = (process.env.KAKEHI ?? `kakehi=${CLI}`)
  .split(/\s+/)
  .filter(Boolean)
  .map((b) => {
    const at = b.indexOf('=');
    return at < 0
      ? { label: 'kakehi', cli: resolve(b) }
      : { label: b.slice(0, at), cli: resolve(b.slice(at + 1)) };
  });
const REST_QUIET_MS = 5_000;
const AFTER_S = [5, 25];
const BODY = 'memory-bench\n';

/** kB, from smaps_rollup. */
interface Usage {
  rss: number;
  uss: number;
  anon: number;
  pss: number;
  /** Private pages of every process plus the largest one's shared pages: the node or nginx binary counted once. */
  once: number;
}

function usageOf(pid: number): Usage {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  const rss = field('Rss');
  const uss = field('Private_Clean') + field('Private_Dirty');
  return { rss, uss, anon: field('Anonymous'), pss: field('Pss'), once: rss };
}

function total(pids: number[]): Usage {
  const t: Usage = { rss: 0, uss: 0, anon: 0, pss: 0, once: 0 };
  let shared = 0;
  for (const pid of pids) {
    const u = usageOf(pid);
    t.rss += u.rss;
    t.uss += u.uss;
    t.anon += u.anon;
    t.pss += u.pss;
    shared = Math.max(shared, u.rss - u.uss);
  }
  t.once = t.uss + shared;
  return t;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (list !== '') out.push(...list.split(' ').map(Number));
  }
  return out;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `check` holds; for process start-up, where there is no event to await. */
async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await delay(50);
  }
}

interface Target {
  name: string;
  port: number;
  proc: ChildProcess;
  pids(): number[];
  /** Resolves once the proxy itself counts `n` open client connections (kakehi only). */
  counted?(n: number): Promise<void>;
}

function backend(): Promise<{ server: Server; port: number }> {
  const server = createServer({ keepAliveTimeout: 600_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, port: (server.address() as { port: number }).port })),
  );
}

function freePort(): Promise<number> {
  const s = createServer();
  return new Promise((r) =>
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => r(port));
    }),
  );
}

function installed(bin: string): boolean {
  try {
    execFileSync('which', [bin], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function spawnLogged(dir: string, name: string, cmd: string, args: string[]): ChildProcess {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  const log: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  proc.on('exit', () => writeFileSync(join(dir, `${name}.log`), log.join('')));
  return proc;
}

async function startKakehi(dir: string, label: string, cli: string, backendPort: number): Promise<Target> {
  const port = await freePort();
  const socket = join(dir, `${label}.sock`);
  const config = join(dir, `${label}.yaml`);
  writeFileSync(
    config,
    `workers: 1
command_socket: ${socket}
access_log: off
listeners:
  - address: 127.0.0.1:${port}
    protocol: http
    keepalive_timeout_ms: 600000
clusters:
  - id: bench
    backends:
      - id: b1
        address: 127.0.0.1:${backendPort}
frontends:
  - hostname: "*"
    path: /
    path_type: prefix
    cluster: bench
`,
  );
  const proc = spawnLogged(dir, label, process.execPath, [cli, 'run', '-c', config]);
  await until(`${label} answers`, () => get(port));
  const connections = async () => {
    const r = (await ok(socket, 'query_metrics')) as {
      families?: { name: string; samples: { value?: number }[] }[];
    };
    const f = r.families?.find((x) => x.name === 'kakehi_connections_active');
    return f?.samples.reduce((a, s) => a + (s.value ?? 0), 0) ?? 0;
  };
  return {
    name: label,
    port,
    proc,
    pids: () => [proc.pid!, ...childrenOf(proc.pid!)],
    counted: (n) => until(`${label} counts ${n} connections`, async () => (await connections()) >= n, 60_000),
  };
}

/** HAProxy refuses to start unless it has two descriptors per maxconn (its maxsock = 2 × maxconn + 14). */
function haproxyMaxconn(fdLimit: number): number {
  return Math.min(N + 100, Math.floor((fdLimit - 14) / 2));
}

async function startHaproxy(dir: string, backendPort: number, fdLimit: number): Promise<Target> {
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
    nbthread 1
    maxconn ${haproxyMaxconn(fdLimit)}
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
frontend bench
    bind 127.0.0.1:${port}
    default_backend bench
backend bench
    server b1 127.0.0.1:${backendPort}
`,
  );
  const proc = spawnLogged(dir, 'haproxy', 'haproxy', ['-db', '-f', cfg]);
  await until('haproxy answers', () => get(port));
  return { name: 'HAProxy', port, proc, pids: () => [proc.pid!, ...childrenOf(proc.pid!)] };
}

async function startNginx(dir: string, backendPort: number): Promise<Target> {
  const port = await freePort();
  const cfg = join(dir, 'nginx.conf');
  const tmp = join(dir, 'nginx-tmp');
  mkdirSync(tmp, { recursive: true });
  writeFileSync(
    cfg,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.error.log warn;
events { worker_connections ${N + 200}; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_body_temp_path ${tmp}/body;
    proxy_temp_path ${tmp}/proxy;
    fastcgi_temp_path ${tmp}/fastcgi;
    uwsgi_temp_path ${tmp}/uwsgi;
    scgi_temp_path ${tmp}/scgi;
    upstream bench { server 127.0.0.1:${backendPort}; keepalive 128; }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`,
  );
  const proc = spawnLogged(dir, 'nginx', 'nginx', ['-c', cfg, '-e', join(dir, 'nginx.error.log')]);
  await until('nginx answers', () => get(port));
  return { name: 'nginx', port, proc, pids: () => [proc.pid!, ...childrenOf(proc.pid!)] };
}

/** One request on a new connection; resolves with the open socket once the whole response is in. */
function request(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = '';
    const fail = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.setTimeout(30_000, () => fail(new Error('no response within 30 s')));
    s.on('error', fail);
    s.on('data', function onData(d: Buffer) {
      got += d.toString('latin1');
      const head = got.indexOf('\r\n\r\n');
      if (head < 0 || got.length < head + 4 + BODY.length) return;
      if (!got.startsWith('HTTP/1.1 200') || !got.endsWith(BODY))
        return fail(new Error(`unexpected answer: ${got.slice(0, 80)}`));
      s.off('data', onData);
      s.setTimeout(0);
      s.off('error', fail);
      s.on('error', () => {});
      resolve(s);
    });
    s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');
  });
}

async function get(port: number): Promise<boolean> {
  try {
    (await request(port)).destroy();
    return true;
  } catch {
    return false;
  }
}

async function openIdle(port: number, n: number): Promise<Socket[]> {
  const open: Socket[] = [];
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      open.push(await request(port));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, lane));
  return open;
}

function stop(t: Target): Promise<void> {
  return new Promise((r) => {
    if (t.proc.exitCode !== null) return r();
    const kill = setTimeout(() => t.proc.kill('SIGKILL'), 10_000);
    t.proc.once('exit', () => {
      clearTimeout(kill);
      r();
    });
    t.proc.kill(t.name === 'nginx' ? 'SIGQUIT' : 'SIGTERM');
  });
}

interface Row {
  name: string;
  processes: number;
  rest: Usage;
  after: Usage[];
}

async function measure(t: Target): Promise<Row> {
  await delay(REST_QUIET_MS);
  const rest = total(t.pids());
  const t0 = Date.now();
  const sockets = await openIdle(t.port, N);
  await t.counted?.(N);
  const openedS = (Date.now() - t0) / 1000;
  const after: Usage[] = [];
  const start = Date.now();
  for (const s of AFTER_S) {
    await delay(start + s * 1000 - Date.now());
    after.push(total(t.pids()));
  }
  const processes = t.pids().length;
  for (const s of sockets) s.destroy();
  process.stderr.write(`${t.name}: ${N} connections opened in ${openedS.toFixed(1)} s\n`);
  return { name: t.name, processes, rest, after };
}

const mb = (kb: number) => (kb / 1024).toFixed(1);
const perConn = (kb: number) => ((kb * 1024) / N / 1024).toFixed(2);

function report(rows: Row[], bare: Usage): string {
  const lines = [
    `N=${N} idle keep-alive connections (one request each, ${CONCURRENCY} at a time); MB = MiB, per connection in KiB`,
    '',
    `| proxy | processes | RSS at rest | shared once at rest | USS at rest | ${AFTER_S.map((s) => `RSS +${s} s | USS +${s} s`).join(' | ')} | ${AFTER_S.map((s) => `per conn RSS +${s} s | per conn USS +${s} s`).join(' | ')} |`,
    `|---|---|---|---|---|${AFTER_S.map(() => '---|---|').join('')}${AFTER_S.map(() => '---|---|').join('')}`,
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${r.processes} | ${mb(r.rest.rss)} MB | ${mb(r.rest.once)} MB | ${mb(r.rest.uss)} MB | ${r.after.map((a) => `${mb(a.rss)} MB | ${mb(a.uss)} MB`).join(' | ')} | ${r.after.map((a) => `${perConn(a.rss - r.rest.rss)} | ${perConn(a.uss - r.rest.uss)}`).join(' | ')} |`,
    );
  }
  lines.push(
    '',
    `A bare \`node -e 'setInterval(() => {}, 1e3)'\` here: RSS ${mb(bare.rss)} MB, USS ${mb(bare.uss)} MB, anonymous ${mb(bare.anon)} MB.`,
  );
  lines.push('', 'Anonymous and PSS, same points (MB):', '');
  for (const r of rows) {
    lines.push(
      `- ${r.name}: anon ${[r.rest, ...r.after].map((u) => mb(u.anon)).join(' / ')}, PSS ${[r.rest, ...r.after].map((u) => mb(u.pss)).join(' / ')}`,
    );
  }
  return lines.join('\n');
}

async function bareNode(): Promise<Usage> {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e3)'], { stdio: 'ignore' });
  await delay(REST_QUIET_MS);
  const u = total([p.pid!]);
  p.kill();
  return u;
}

async function main(): Promise<void> {
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  if (limit < N + CONCURRENCY + 100) {
    process.stderr.write(
      `memory bench: N=${N} needs more than ulimit -n (${limit}); lower N or raise the limit\n`,
    );
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kakehi-memory-'));
  const { server, port: backendPort } = await backend();
  const rows: Row[] = [];
  const starts: (() => Promise<Target>)[] = BUILDS.map(
    (b) => () => startKakehi(dir, b.label, b.cli, backendPort),
  );
  for (const peer of PEERS) {
    if (!installed(peer)) {
      process.stderr.write(
        `memory bench: ${peer} is not installed (apt-get install -y ${peer === 'nginx' ? 'nginx-light' : peer}); skipped\n`,
      );
      continue;
    }
    if (peer === 'haproxy' && haproxyMaxconn(limit) < N) {
      process.stderr.write(
        `memory bench: HAProxy needs 2 descriptors per connection: N <= ${haproxyMaxconn(limit)} with ulimit -n ${limit}; skipped\n`,
      );
      continue;
    }
    starts.push(() =>
      peer === 'nginx' ? startNginx(dir, backendPort) : startHaproxy(dir, backendPort, limit),
    );
  }
  for (const start of starts) {
    let t: Target;
    try {
      t = await start();
    } catch (err) {
      process.stderr.write(`memory bench: ${(err as Error).message}; skipped (logs in ${dir})\n`);
      continue;
    }
    try {
      rows.push(await measure(t));
    } finally {
      await stop(t);
    }
  }
  const bare = await bareNode();
  server.closeAllConnections();
  server.close();
  const out = report(rows, bare);
  writeFileSync(join(dir, 'summary.md'), `${out}\n`);
  process.stdout.write(`${out}\n\n(logs and summary in ${dir})\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `memory bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
