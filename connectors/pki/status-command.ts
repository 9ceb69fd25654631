// `kakehi pki status`: what a running connector says about its pairs, as a table
// (or its JSON), read from the connector's /status. Exit codes: 0 healthy and every
// pair fine, 1 unhealthy or some pair invalid/refused/unfinished, 2 wrong usage,
// 4 the connector cannot be reached.

import { parseArgs } from 'node:util';
import { DEFAULT_LISTEN } from './options.js';

export const STATUS_HELP = `kakehi pki status — ask a running PKI connector about its pairs

Usage: kakehi pki status [--listen HOST:PORT] [--json]

      --listen HOST:PORT   the connector's HTTP address (default ${DEFAULT_LISTEN})
      --json               print the connector's /status JSON as it is
  -h, --help               this text

Exit codes: 0 healthy and every pair serving (or ignored), 1 unhealthy or some pair invalid,
refused or unfinished, 2 wrong usage, 4 the connector is unreachable.
`;

interface StatusPair {
  pair: string;
  layout?: string;
  state: string;
  serving: { names: string[]; not_after: string; fingerprint: string } | null;
  last_error: string | null;
}

interface Status {
  healthy: boolean;
  reason: string;
  socket: string;
  last_sync: { at: string; ok: boolean; puts: number; deletes: number; error?: string } | null;
  directories: { path: string; error?: string; notes: string[]; unpaired: string[] }[];
  pairs: StatusPair[];
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

export async function runPkiStatus(argv: string[]): Promise<number> {
  let values: { listen?: string; json?: boolean; help?: boolean };
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: {
        listen: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`kakehi pki status: ${(err as Error).message}\n\n${STATUS_HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(STATUS_HELP);
    return 0;
  }
  const listen = values.listen ?? DEFAULT_LISTEN;
  const url = `http://${listen}/status`;
  let status: Status;
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    text = await res.text();
    status = JSON.parse(text) as Status;
  } catch (err) {
    process.stderr.write(`kakehi pki status: no answer from ${url}: ${(err as Error).message}\n`);
    return 4;
  }
  const fine = (p: StatusPair) => p.state === 'ok' || p.state === 'ignored';
  const code = status.healthy && status.pairs.every(fine) ? 0 : 1;
  if (values.json) {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    return code;
  }
  const sync = status.last_sync;
  const lines = [
    `connector: ${status.healthy ? 'healthy' : `unhealthy (${status.reason})`}; proxy socket ${status.socket}`,
    `last reconcile: ${sync ? `${sync.ok ? 'ok' : `failed: ${sync.error}`} at ${sync.at} (puts ${sync.puts}, deletes ${sync.deletes})` : 'none yet'}`,
  ];
  for (const d of status.directories) {
    const extra = [
      d.error ? `error ${d.error}` : '',
      ...d.notes,
      d.unpaired.length ? `unpaired: ${d.unpaired.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    lines.push(`directory ${d.path}${extra ? `: ${extra}` : ''}`);
  }
  const rows = [['PAIR', 'LAYOUT', 'STATE', 'NAMES', 'NOT AFTER', 'LAST ERROR']];
  for (const p of status.pairs) {
    rows.push([
      p.pair,
      p.layout ?? '',
      p.state,
      p.serving?.names.join(',') ?? '-',
      p.serving?.not_after ?? '-',
      p.last_error ?? '',
    ]);
  }
  lines.push('', table(rows));
  process.stdout.write(`${lines.join('\n')}\n`);
  return code;
}
