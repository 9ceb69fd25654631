// HAProxy (Debian's package, installed by scripts/debian-tools.sh) as a real peer:
// a PROXY-protocol sender in front of kakehi or a receiver behind it. Started in
// the foreground on a configuration the test writes, stopped with SIGTERM.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './prometheus.js';

export const HAPROXY = '/usr/sbin/haproxy';

/** The start of every test configuration: errors to stderr (output()), timeouts well past a test's. */
export const HAPROXY_PREAMBLE = `global
  log stderr format raw local0 err
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s`;

export interface Haproxy {
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts HAProxy on `config` and resolves once every port in `ports` accepts a connection. */
export async function startHaproxy(config: string, ports: number[]): Promise<Haproxy> {
  if (!existsSync(HAPROXY)) {
    throw new Error(`${HAPROXY} not found: install Debian's haproxy package (scripts/debian-tools.sh does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kakehi-haproxy-'));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const proc = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const accepts = (port: number) =>
    new Promise<boolean | undefined>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(undefined));
    });
  try {
    for (const port of ports) {
      await until(`haproxy listening on ${port}`, async () => {
        if (gone) throw new Error(`haproxy exited: ${out}`);
        return accepts(port);
      });
    }
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\nhaproxy said: ${out}`);
  }
  return {
    proc,
    output: () => out,
    async stop() {
      if (!gone) proc.kill('SIGTERM');
      await exited;
    },
  };
}
