// What connectors (pki, pulsar, prometheus…) last said about themselves, so an
// operator sees a connector's problems (an invalid certificate pair, a topic it
// cannot read) with `kakehi ctl connectors`, next to the proxy's own state.
// Bounded: a few dozen connectors, a hundred problems each, short strings.

import type { ConnectorProblem, ConnectorReport } from '../../command/protocol.js';
import { KakehiError } from '../../errors.js';
import { sourceProblem } from '../../state/transaction.js';

export const MAX_CONNECTORS = 64;
export const MAX_PROBLEMS = 100;
const MAX_TEXT = 512;

export type { ConnectorProblem, ConnectorReport };

function text(v: unknown, path: string): string {
  if (typeof v !== 'string')
    throw new KakehiError('KKH_REQUEST_INVALID', `${path}: expected a string`, {
      issues: [{ path, reason: 'expected a string' }],
    });
  return v.length > MAX_TEXT ? `${v.slice(0, MAX_TEXT - 1)}…` : v;
}

/** Validates a report_connector_status body; every mistake names its field. */
export function parseReport(b: Record<string, unknown>, now = Date.now()): ConnectorReport {
  const connector = b['connector'];
  const problem = sourceProblem(connector);
  if (problem !== undefined)
    throw new KakehiError('KKH_REQUEST_INVALID', `connector: ${problem}`, {
      issues: [{ path: 'connector', reason: problem }],
    });
  if (typeof b['healthy'] !== 'boolean')
    throw new KakehiError('KKH_REQUEST_INVALID', 'healthy: expected true or false', {
      issues: [{ path: 'healthy', reason: 'expected true or false' }],
    });
  const raw = b['problems'] ?? [];
  if (!Array.isArray(raw))
    throw new KakehiError('KKH_REQUEST_INVALID', 'problems: expected a list', {
      issues: [{ path: 'problems', reason: 'expected a list of {item, reason}' }],
    });
  // More than the bound are summarized, not refused: the connector's own status has them all.
  const problems = raw.slice(0, MAX_PROBLEMS).map((p, i) => {
    const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
    return {
      item: text(o['item'], `problems[${i}].item`),
      reason: text(o['reason'], `problems[${i}].reason`),
    };
  });
  if (raw.length > MAX_PROBLEMS)
    problems.push({ item: '…', reason: `${raw.length - MAX_PROBLEMS} more problems not shown` });
  const pid = b['pid'];
  return {
    connector: connector as string,
    healthy: b['healthy'],
    summary: text(b['summary'] ?? '', 'summary'),
    problems,
    pid: typeof pid === 'number' && Number.isInteger(pid) ? pid : undefined,
    reported_at: new Date(now).toISOString(),
  };
}

export class ConnectorReports {
  private readonly reports = new Map<string, ConnectorReport>();

  put(r: ConnectorReport): void {
    if (!this.reports.has(r.connector) && this.reports.size >= MAX_CONNECTORS) {
      throw new KakehiError(
        'KKH_REQUEST_INVALID',
        `at most ${MAX_CONNECTORS} connectors can report; "${r.connector}" is one too many`,
      );
    }
    this.reports.set(r.connector, r);
  }

  list(): ConnectorReport[] {
    return [...this.reports.values()].sort((a, b) => (a.connector < b.connector ? -1 : 1));
  }
}
