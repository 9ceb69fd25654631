// The audit trail: every change main applies or refuses — from the socket, a
// reload or SIGHUP, a connector, a state file — is one pino line, so an
// operator can tell from main's log alone who changed what, when and why a
// change did not happen. Supervisor.transact writes the line for everything
// that reaches it; a refusal before that (an unparsable change, a config file
// that does not load) is written where it happens, so each change has one line.

import type { FieldIssue } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Applied, Effect } from '../state/transaction.js';

/** Lines stay bounded: a 10,000-object load_state names its first changes and counts the rest. */
const MAX_LISTED = 50;

export interface AuditFacts {
  /** What asked: the request type (`add_backend`, `transaction`, `load_state`), `reload` or `SIGHUP`. */
  request: string;
  source: string;
  generationBefore: number;
}

export type AuditOutcome =
  | { applied: readonly Applied[]; generationAfter: number }
  | { refused: string; issues: readonly FieldIssue[]; keys?: readonly string[] };

export function auditChange(log: Logger, facts: AuditFacts, outcome: AuditOutcome): void {
  const base = {
    audit: 'change',
    request: facts.request,
    source: facts.source,
    generation_before: facts.generationBefore,
  };
  if ('refused' in outcome) {
    log.warn(
      {
        ...base,
        generation_after: facts.generationBefore,
        refused: outcome.refused,
        ...(outcome.keys === undefined ? {} : { keys: outcome.keys.slice(0, MAX_LISTED) }),
        // Paths only: a reason may echo what was sent (a key pasted in the wrong field);
        // the client got the reasons in its answer.
        issues: outcome.issues.slice(0, MAX_LISTED).map((i) => i.path),
        ...(outcome.issues.length > MAX_LISTED
          ? { issues_not_shown: outcome.issues.length - MAX_LISTED }
          : {}),
      },
      'change refused',
    );
    return;
  }
  const effects: Record<Effect, number> = { created: 0, updated: 0, deleted: 0, unchanged: 0 };
  for (const a of outcome.applied) effects[a.effect]++;
  log.info(
    {
      ...base,
      generation_after: outcome.generationAfter,
      ops: [...new Set(outcome.applied.map((a) => a.op))],
      effects,
      changes: outcome.applied.slice(0, MAX_LISTED),
      ...(outcome.applied.length > MAX_LISTED
        ? { changes_not_shown: outcome.applied.length - MAX_LISTED }
        : {}),
    },
    'change applied',
  );
}

/** The refusal code and issues of whatever a change threw. */
export function refusalOf(err: unknown): { refused: string; issues: readonly FieldIssue[] } {
  const e = err as { code?: unknown; issues?: unknown };
  const issues = Array.isArray(e.issues) ? (e.issues as FieldIssue[]) : [];
  return { refused: typeof e.code === 'string' ? e.code : 'KKH_INTERNAL', issues };
}
