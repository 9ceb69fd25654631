// The process log and the access log as a log shipper reads them: every line
// JSON, one time format, level names, no key written twice in a line, and
// access log lines with the keys the operator chose, in that order.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { echoBackend } from '../helpers/backends.js';
import { ok } from '../helpers/command.js';
import { httpGet } from '../helpers/http.js';
import { CLI, startKakehi } from '../helpers/kakehi-process.js';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * The keys of a JSON object's top level, in the order written, duplicates kept
 * (JSON.parse keeps only the last of a duplicate, which is what hides them).
 */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && /^\s*:/.test(line.slice(j + 1)))
        keys.push(JSON.parse(line.slice(i, j + 1)) as string);
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

describe('log format', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('finds a duplicate key where JSON.parse would hide it', () => {
    assert.deepEqual(topLevelKeys('{"pid":1,"a":{"pid":2},"s":"x\\":","pid":3}'), ['pid', 'a', 's', 'pid']);
  });

  it('writes every process log line as JSON with ISO time, level names and no key twice, in main and workers', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      workers: 2,
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: '*', cluster: 'c' }],
    });
    cleanup.push(() => kakehi.stop());
    // The workers' own lines: each says so when a SIGUSR1 reopens its access log.
    const reopened = () => kakehi.logs.filter((l) => l.msg === 'access log reopened').length;
    process.kill(kakehi.proc.pid!, 'SIGUSR1');
    await kakehi.waitLog(() => reopened() === 2);
    // The lines that named a worker's pid next to main's own: a drain and a crash.
    await ok(kakehi.socketPath, 'upgrade');
    await kakehi.waitLog((l) => l.msg === 'worker drained');
    const [victim] = kakehi.workerPids().slice(-1);
    process.kill(victim!, 'SIGKILL');
    await kakehi.waitLog((l) => l.msg === 'worker restarted');
    assert.equal(kakehi.logs.filter((l) => l.msg === 'worker crashed; restarting it').length, 1);

    assert.ok(kakehi.rawLogs.length > 10, 'lines from main and workers');
    const names = new Set<string>();
    for (const raw of kakehi.rawLogs) {
      const line = JSON.parse(raw) as Record<string, unknown>;
      const keys = topLevelKeys(raw);
      assert.deepEqual(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        [],
        `no key twice: ${raw}`,
      );
      assert.match(String(line.time), ISO_UTC, raw);
      assert.ok(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(String(line.level)), raw);
      names.add(String(line.name));
    }
    assert.deepEqual([...names].sort(), ['kakehi', 'kakehi-worker']);
    const drained = kakehi.logs.find((l) => l.msg === 'worker drained')!;
    assert.equal(typeof drained['worker_pid'], 'number');
    assert.notEqual(drained['worker_pid'], drained['pid'], "the worker's pid is not main's");
  });

  it('writes the access log keys chosen by access_log_fields, in that order, leaving absent ones out', async () => {
    const be = await echoBackend('be');
    cleanup.push(() => be.close());
    const kakehi = await startKakehi({
      listeners: [{ address: '127.0.0.1:0' }],
      clusters: [{ id: 'c', backends: [{ id: 'b', address: be.address }] }],
      frontends: [{ hostname: 'known.test', cluster: 'c' }],
      access_log: 'stdout',
      access_log_fields: ['status', 'time', 'host', 'cluster', 'duration_ms'],
    });
    cleanup.push(() => kakehi.stop());
    await httpGet(kakehi.port, '/', { host: 'known.test' });
    await httpGet(kakehi.port, '/', { host: 'unknown.test' });
    const [served, unrouted] = await kakehi.waitAccess(2);
    assert.deepEqual(Object.keys(served!), ['status', 'time', 'host', 'cluster', 'duration_ms']);
    assert.equal(served!.cluster, 'c');
    assert.match(String(served!.time), ISO_UTC);
    assert.deepEqual(
      Object.keys(unrouted!),
      ['status', 'time', 'host', 'duration_ms'],
      'no cluster was chosen',
    );
  });

  it('refuses an unknown access log field, naming the valid ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-logfields-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'access_log_fields: [status, user_agent]\n');
    const proc = spawn(process.execPath, [CLI, 'validate', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const code = await new Promise<number | null>((res) => proc.on('close', res));
    assert.equal(code, 3);
    assert.match(
      stderr,
      /access_log_fields\[1\]: must be one of "time", "client", .*"error" \(got the string "user_agent"\)/,
    );
  });
});
