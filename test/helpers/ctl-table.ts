// `kakehi ctl` run as an operator runs it (the compiled CLI, a real socket), and
// its plain tables read back by column name for asserts.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { CLI } from './kakehi-process.js';

export interface Ctl {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function ctl(socket: string, ...args: string[]): Promise<Ctl> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'ctl', '-s', socket, ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The row whose cell `column` is `id` in a ctl table, as column name → cell. */
export function ctlRow(stdout: string, id: string, column = 1): Record<string, string> {
  const [head, ...lines] = stdout.trim().split('\n');
  const names = head!.trim().split(/\s{2,}/);
  const line = lines.find((l) => l.split(/\s{2,}/)[column] === id);
  assert.ok(line !== undefined, `no row for ${id} in:\n${stdout}`);
  const cells = line.split(/\s{2,}/);
  return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
}
