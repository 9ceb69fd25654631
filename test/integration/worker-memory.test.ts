// What a worker carries for memory's sake (issue 14, bench:memory): it loads
// only the data plane (not the configuration parser or ctl, which main or the
// CLI need), runs with a small young generation, and its client sessions keep
// their idle and body deadlines on shared lists instead of a timer each; the
// deadlines still end idle and stalled connections.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Backend, echoBackend } from '../helpers/backends.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { rawExchange } from '../helpers/raw-client.js';

/** A module hook (node --import) that appends "<pid> <url>" for every module a process resolves. */
function moduleLogHook(dir: string, logFile: string): string {
  const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(logFile)}, process.pid + ' ' + r.url + '\\n');
  return r;
}`;
  const file = join(dir, 'module-log.mjs');
  writeFileSync(
    file,
    `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});\n`,
  );
  return file;
}

describe('worker memory', () => {
  let backend: Backend;
  let kakehi: Kakehi;
  let moduleLog: string;

  before(async () => {
    backend = await echoBackend('b');
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-worker-memory-'));
    moduleLog = join(dir, 'modules.log');
    writeFileSync(moduleLog, '');
    const hook = moduleLogHook(dir, moduleLog);
    // The hook reaches main through NODE_OPTIONS, and the worker through main's environment.
    const saved = process.env['NODE_OPTIONS'];
    process.env['NODE_OPTIONS'] = `--import=${hook}`;
    try {
      kakehi = await startKakehi({
        listeners: [
          { address: '127.0.0.1:0', keepalive_timeout_ms: 300, front_timeout_ms: 300 },
          { address: '127.0.0.2:0', keepalive_timeout_ms: 60_000 },
        ],
        clusters: [{ id: 'c', backends: [{ id: 'b', address: `127.0.0.1:${backend.port}` }] }],
        frontends: [{ hostname: '*', path: '/', path_type: 'prefix', cluster: 'c' }],
      });
    } finally {
      if (saved === undefined) delete process.env['NODE_OPTIONS'];
      else process.env['NODE_OPTIONS'] = saved;
    }
  });

  after(async () => {
    await kakehi?.stop();
    await backend?.close();
  });

  test('a worker loads neither the YAML parser nor ctl, which main and the CLI use', () => {
    const [worker] = kakehi.workerPids();
    assert.ok(worker !== undefined);
    const byPid = (pid: number) =>
      readFileSync(moduleLog, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith(`${pid} `));
    const main = byPid(kakehi.proc.pid!);
    // The hook sees main's modules: without this the assertions below would pass on nothing.
    assert.ok(
      main.some((l) => l.includes('/node_modules/yaml/')),
      'main loads yaml (the hook works)',
    );
    const loaded = byPid(worker);
    assert.ok(
      loaded.some((l) => l.includes('/src/proxy/client-session.js')),
      'the worker loads the data plane',
    );
    assert.deepEqual(
      loaded.filter((l) =>
        /\/node_modules\/yaml\/|\/src\/cli\/ctl\.js|\/src\/config\/load-config\.js/.test(l),
      ),
      [],
    );
  });

  test('a worker runs with a 1 MB semi-space', () => {
    const [worker] = kakehi.workerPids();
    const argv = readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('--max-semi-space-size=1'), argv.join(' '));
  });

  test('closes an idle keep-alive connection after its listener keepalive_timeout_ms, not one with a longer timeout', async () => {
    const short = connect(kakehi.ports[0]!, '127.0.0.1');
    const long = connect(kakehi.ports[1]!, '127.0.0.2');
    for (const s of [short, long]) {
      s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      const [first] = (await once(s, 'data')) as [Buffer];
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 /);
    }
    await once(short, 'close');
    // The 60 s listener's connection is still there and still serves.
    long.write('GET /again HTTP/1.1\r\nHost: a\r\n\r\n');
    const [again] = (await once(long, 'data')) as [Buffer];
    assert.match(again.toString('latin1'), /^HTTP\/1\.1 200 /);
    long.destroy();
  });

  test('answers 408 and closes when a request body stalls past front_timeout_ms', async () => {
    const r = await rawExchange(
      kakehi.ports[0]!,
      'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc',
      { timeoutMs: 10_000 },
    );
    assert.equal(r.closed, true);
    assert.match(r.text, /^HTTP\/1\.1 408 /);
    assert.equal(
      backend.seen.filter((s) => s.url === '/upload').length,
      0,
      'the backend never saw a complete request',
    );
  });
});
