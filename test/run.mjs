#!/usr/bin/env node
// The whole suite, as `npm test` runs it: finds the compiled test files under
// dist/test, starts the services they need (see startServices), then hands
// them to node:test. Exit code is node:test's own.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..');
// KAKEHI_TEST_DIR: another tree of compiled tests (the runner's self-test uses it).
const testDir = process.env.KAKEHI_TEST_DIR ?? join(root, 'dist', 'test');

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

// Services the suite needs that the tests should not each start: each entry
// returns { env, stop } and is started once before node:test runs.
async function startServices() {
  const started = [];
  // Tests drive real Debian tools (promtool and prometheus, testssl, pebble and
  // certbot, varnishtest and slowhttptest, haproxy, curl, systemd's notify and
  // analyze): on a fresh machine, install the ones missing first (as .ci/run does).
  const tools = new Set();
  if (files.some((f) => f.includes('prometheus-'))) for (const t of ['promtool', 'prometheus']) tools.add(t);
  if (files.some((f) => f.includes('testssl'))) tools.add('testssl');
  if (files.some((f) => f.includes('acme'))) for (const t of ['pebble', 'certbot']) tools.add(t);
  if (files.some((f) => f.includes(join('test', 'hostile', ''))))
    for (const t of ['varnishtest', 'slowhttptest']) tools.add(t);
  if (files.some((f) => f.includes('haproxy'))) tools.add('haproxy');
  if (files.some((f) => f.includes('upgrades.test'))) tools.add('curl');
  if (files.some((f) => f.includes('console-browser'))) tools.add('chromium');
  if (files.some((f) => f.includes('upgrade-main'))) tools.add('systemd-notify');
  if (files.some((f) => f.includes('packaging'))) tools.add('systemd-analyze');
  if (tools.size > 0) {
    const install = spawnSync('bash', [join(root, 'scripts', 'debian-tools.sh'), ...tools], {
      stdio: 'inherit',
    });
    if (install.status !== 0) {
      console.error(
        `could not install ${[...tools].join(', ')}: run scripts/debian-tools.sh as root, then npm test again`,
      );
      process.exit(1);
    }
  }
  // Pulsar: one standalone broker (own JVM, free loopback ports, temp dir) for the
  // whole run, unless PULSAR_URL points at an existing one (docs/pulsar-client.md).
  if (!process.env.PULSAR_URL && files.some((f) => f.includes(join('test', 'pulsar', '')))) {
    const { Broker, PULSAR_VERSION } = await import('../scripts/pulsar/broker.mjs');
    // First run on a fresh machine: fetch the broker jars and the interop client.
    const classpath = join(homedir(), '.m2', 'kakehi', `pulsar-${PULSAR_VERSION}.classpath`);
    const python = spawnSync('python3', ['-c', 'import pulsar'], { stdio: 'ignore' });
    if (!existsSync(classpath) || python.status !== 0) {
      console.error('installing the Pulsar broker jars and interop client (scripts/pulsar/install.sh)');
      const install = spawnSync('bash', [join(root, 'scripts', 'pulsar', 'install.sh')], {
        stdio: 'inherit',
      });
      if (install.status !== 0) {
        console.error('scripts/pulsar/install.sh failed; see docs/pulsar-client.md');
        process.exit(1);
      }
    }
    const broker = new Broker();
    const ms = await broker.start();
    console.error(
      `pulsar broker ready in ${ms} ms, RSS ${Math.round(broker.rssBytes() / 1048576)} MiB, dir ${broker.dir}`,
    );
    const stop = () => broker.destroy();
    // Don't orphan the JVM if the run is interrupted.
    for (const sig of ['SIGINT', 'SIGTERM']) {
      process.once(sig, () => stop().finally(() => process.exit(130)));
    }
    started.push({ env: broker.env, stop });
  }
  return started;
}

const filter = process.argv.slice(2);
let files = findTests(testDir);
if (filter.length > 0) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files matched under ${testDir}`);
  process.exit(2);
}

const services = await startServices();
const env = { ...process.env };
for (const s of services) Object.assign(env, s.env);

// When run.mjs itself runs under node:test (the runner's self-test), node --test
// must not take itself for one of that run's file processes.
delete env.NODE_TEST_CONTEXT;

// A test that never settles, or a file whose process never exits (a loop or a
// child process a failed test left behind), must fail the run, not stall it:
// each test has a deadline, the watchdog preloaded into each file's process stops
// and fails one that outlives its tests (not --test-force-exit, which can drop the
// end of a file's report and still pass: see file-watchdog.mjs), and the whole run
// has a budget after which it is stopped with a message.
const TEST_TIMEOUT_MS = 600_000;
const RUN_BUDGET_MS = Number(process.env.KAKEHI_TEST_BUDGET_MS ?? 45 * 60_000);
const watchdog = pathToFileURL(join(import.meta.dirname, 'file-watchdog.mjs')).href;
const child = spawn(
  process.execPath,
  ['--import', watchdog, '--test', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files],
  { stdio: 'inherit', env, detached: true },
);
// The file processes are in their own group (so the budget can stop them all);
// an interrupted run takes them down with it.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
  });
}
const started = Date.now();
const budget = setTimeout(() => {
  console.error(
    `\nthe test run exceeded its budget of ${Math.round(RUN_BUDGET_MS / 60_000)} min (KAKEHI_TEST_BUDGET_MS); stopping it`,
  );
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {}
  setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }, 10_000).unref();
}, RUN_BUDGET_MS);
const code = await new Promise((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 1 : 0))));
clearTimeout(budget);
console.error(`tests took ${Math.round((Date.now() - started) / 1000)} s`);
for (const s of services.reverse()) await s.stop();
process.exit(code);
