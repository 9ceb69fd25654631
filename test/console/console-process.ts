// Runs `kakehi console` as a real process on a fresh token file: the tokens it
// prints once at first start, its port from its `listening` log line, its JSON
// log for asserts, and a fetch that keeps one session's cookie.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/kakehi-process.js';

export interface ConsoleProcess {
  proc: ChildProcess;
  port: number;
  origin: string;
  /** As printed at first start; empty strings when the token file existed already. */
  tokens: { editor: string; viewer: string };
  tokenFile: string;
  logs: Record<string, unknown>[];
  stdout(): string;
  stop(): Promise<number | null>;
}

export async function startConsole(
  socketPath: string,
  args: string[] = [],
  tokenFile = join(mkdtempSync(join(tmpdir(), 'kakehi-console-')), 'kakehi-console.json'),
): Promise<ConsoleProcess> {
  const proc = spawn(
    process.execPath,
    [CLI, 'console', '-s', socketPath, '--listen', '127.0.0.1:0', '--token-file', tokenFile, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: Record<string, unknown>[] = [];
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let listening: Record<string, unknown> | undefined;
  let settle = () => {};
  const ready = new Promise<number>((resolve, reject) => {
    // Tokens go to stdout, the log to stderr: wait for both when tokens were made.
    settle = () => {
      if (listening && (listening.tokens_created !== true || out.includes('read-only:'))) {
        resolve(listening.port as number);
      }
    };
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      settle();
    });
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      for (let nl = err.indexOf('\n'); nl >= 0; nl = err.indexOf('\n')) {
        const line = err.slice(0, nl);
        err = err.slice(nl + 1);
        try {
          const l = JSON.parse(line) as Record<string, unknown>;
          logs.push(l);
          if (l.msg === 'listening') listening = l;
          settle();
        } catch {
          logs.push({ msg: line });
        }
      }
    });
    void exited.then((code) => reject(new Error(`kakehi console exited ${code}: ${JSON.stringify(logs)}`)));
  });
  const port = await ready;
  const token = (role: string) => new RegExp(`^\\s+${role}:\\s+(\\S+)$`, 'm').exec(out)?.[1] ?? '';
  return {
    proc,
    port,
    origin: `http://127.0.0.1:${port}`,
    tokens: { editor: token('editor'), viewer: token('read-only') },
    tokenFile,
    logs,
    stdout: () => out,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** One logged-in API session over plain fetch: its cookie and CSRF token. */
export async function apiLogin(c: ConsoleProcess, token: string): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${c.origin}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: c.origin },
    body: JSON.stringify({ token }),
  });
  if (res.status !== 200) throw new Error(`login answered ${res.status}: ${await res.text()}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
  const { csrf } = (await res.json()) as { csrf: string };
  return { cookie, csrf };
}
