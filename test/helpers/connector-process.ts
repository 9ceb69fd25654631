// Runs a kakehi connector (`kakehi pki`, `kakehi pulsar`, …) as a real process
// with its HTTP face on a free port, keeps its JSON log lines for asserts, and
// puts the log tail in any error thrown by a test step wrapped in withLogs.

import { type ChildProcess, spawn } from 'node:child_process';
import { CLI } from './kakehi-process.js';

export interface LogLine {
  [key: string]: unknown;
  msg?: string;
}

export interface ConnectorProcess {
  proc: ChildProcess;
  /** Port of its /metrics, /healthz, /status server. */
  port: number;
  logs: LogLine[];
  get(path: string): Promise<{ status: number; text: string }>;
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Starts `kakehi <command>` with these arguments (plus --listen 127.0.0.1:0) and waits until it listens. */
export async function startConnector(
  command: string,
  args: string[],
  opts: { timeoutMs?: number; logLevel?: string } = {},
): Promise<ConnectorProcess> {
  const proc = spawn(process.execPath, [CLI, command, '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KAKEHI_LOG_LEVEL: opts.logLevel ?? process.env.KAKEHI_LOG_LEVEL ?? 'info' },
  });
  const logs: LogLine[] = [];
  const raw: string[] = [];
  let rest = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    rest += chunk;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      raw.push(line);
      if (raw.length > 5_000) raw.shift();
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
      if (logs.length > 20_000) logs.shift();
    }
  });
  proc.stdout?.resume();
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((res) =>
    proc.on('exit', (code) => {
      exitCode = code;
      res(code);
    }),
  );
  const port = await eventually(
    () => {
      // It may listen and then exit at once (a setting it cannot run with): the test judges that.
      const l = logs.find((x) => x.msg === 'listening');
      if (l) return Number(l['port']);
      if (exitCode !== undefined)
        throw new Error(`kakehi ${command} exited (${exitCode}):\n${raw.join('\n')}`);
      throw new Error(`kakehi ${command} did not listen:\n${raw.join('\n')}`);
    },
    {
      timeoutMs: opts.timeoutMs ?? 10_000,
      what: `kakehi ${command} listening`,
      bail: () => exitCode !== undefined,
    },
  );
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  };
  return {
    proc,
    port,
    logs,
    exited,
    get,
    async metrics() {
      return (await get('/metrics')).text;
    },
    stop(signal = 'SIGTERM') {
      if (exitCode === undefined) {
        proc.kill(signal);
        // One that does not stop is killed, so no test leaves a process behind; its
        // exit code is then null, which a test that asserts a clean stop catches.
        const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        exited.finally(() => clearTimeout(kill));
      }
      return exited;
    },
  };
}

/**
 * Runs `fn`; if it throws, the error carries the connector's last log lines, so a
 * failure on a CI machine says what the connector saw and did.
 */
export async function withLogs<T>(c: { logs: LogLine[] }, fn: () => Promise<T>, lines = 60): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const tail = c.logs.slice(-lines).map((l) => JSON.stringify(l));
    const message = `${err instanceof Error ? err.message : String(err)}\n--- last ${tail.length} connector log lines:\n${tail.join('\n')}`;
    throw Object.assign(new Error(message), { cause: err });
  }
}

/** Retries fn until it returns without throwing, or the deadline passes (then throws its last error). */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string; bail?: () => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline || opts.bail?.()) {
      const why = last instanceof Error ? last.message : String(last);
      throw new Error(`timed out waiting for ${opts.what ?? 'a condition'}: ${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
