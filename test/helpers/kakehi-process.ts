// Starts a real kakehi process (the compiled CLI) on a configuration, waits for
// its listeners, and collects its JSON log and access log lines for asserts.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const CLI = resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

export interface LogLine {
  [key: string]: unknown;
  msg?: string;
}

export interface Kakehi {
  proc: ChildProcess;
  /** Bound ports of the listeners, in config order. */
  ports: number[];
  port: number;
  configPath: string;
  /** The command socket, when the test did not write its own config text. */
  socketPath: string;
  /** Pids of the workers that reported ready so far. */
  workerPids(): number[];
  logs: LogLine[];
  /** The process log (stderr) as written, one string per line, for format checks. */
  rawLogs: string[];
  access: LogLine[];
  /** Resolves with the exit code after the signal. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** Resolves when `count` access lines have arrived. */
  waitAccess(count: number): Promise<LogLine[]>;
  waitLog(pred: (l: LogLine) => boolean): Promise<LogLine>;
  waitAccessLine(pred: (l: LogLine) => boolean): Promise<LogLine>;
}

function lineReader(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    rest += chunk;
    let nl = rest.indexOf('\n');
    while (nl >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
      nl = rest.indexOf('\n');
    }
  });
}

export async function startKakehi(
  config: object | string,
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Kakehi> {
  const dir = mkdtempSync(join(tmpdir(), 'kakehi-test-'));
  const configPath = join(dir, 'config.yaml');
  // Each kakehi gets its own command socket, and one worker unless the test asks for more.
  const socketPath = join(dir, 'kakehi.sock');
  const full =
    typeof config === 'string' ? config : stringify({ workers: 1, command_socket: socketPath, ...config });
  writeFileSync(configPath, full);
  const proc = spawn(process.execPath, [CLI, 'run', '-c', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  const logs: LogLine[] = [];
  const access: LogLine[] = [];
  const raw: string[] = [];
  const rawLogs: string[] = [];
  const waiters: (() => void)[] = [];
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  const parse = (line: string, into: LogLine[]) => {
    raw.push(line);
    try {
      into.push(JSON.parse(line) as LogLine);
    } catch {
      into.push({ msg: line, unparsed: true });
    }
    notify();
  };
  lineReader(proc.stderr!, (l) => {
    rawLogs.push(l);
    parse(l, logs);
  });
  lineReader(proc.stdout!, (l) => parse(l, access));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((res) =>
    proc.on('exit', (code) => {
      exitCode = code;
      notify();
      res(code);
    }),
  );

  const until = <T>(check: () => T | undefined, what: string, ms: number): Promise<T> =>
    new Promise((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`timed out waiting for ${what}; output:\n${raw.join('\n')}`)),
        ms,
      );
      const test = () => {
        const v = check();
        if (v !== undefined) {
          clearTimeout(timer);
          res(v);
        } else if (exitCode !== undefined) {
          clearTimeout(timer);
          rej(new Error(`kakehi exited (${exitCode}) before ${what}; output:\n${raw.join('\n')}`));
        } else waiters.push(test);
      };
      test();
    });

  try {
    await until(() => logs.find((l) => l.msg === 'kakehi ready'), 'kakehi ready', opts.timeoutMs ?? 15_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  const ports = logs.filter((l) => l.msg === 'listening').map((l) => Number(l.port));
  return {
    proc,
    ports,
    port: ports[0] ?? 0,
    configPath,
    socketPath,
    workerPids: () => logs.filter((l) => l.msg === 'worker ready').map((l) => Number(l['worker_pid'])),
    logs,
    rawLogs,
    access,
    exited,
    stop(signal = 'SIGTERM') {
      if (exitCode === undefined) proc.kill(signal);
      return exited;
    },
    waitAccess(count) {
      return until(
        () => (access.length >= count ? access.slice(0, count) : undefined),
        `${count} access log lines`,
        10_000,
      );
    },
    waitLog(pred) {
      return until(() => logs.find(pred), 'a log line', 10_000);
    },
    waitAccessLine(pred) {
      return until(() => access.find(pred), 'an access log line', 10_000);
    },
  };
}
