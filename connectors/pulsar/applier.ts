// Sends a plan of changes to the proxy as transactions, and survives refusals: a
// transaction the proxy refuses names the changes at fault (`changes[3]…`), so
// the messages they came from are dropped whole and the rest is sent again. A
// good message is never held back by a bad one beside it, and a transaction
// message lands whole or not at all. A plan larger than one command frame is
// split, parents first, so each part leaves a valid state.

import { CommandError } from '../../src/client/command-errors.js';
import type { ChangeResult } from '../../src/command/protocol.js';
import type { Change } from '../../src/state/change.js';
import type { PlannedChange } from './sync-plan.js';

/**
 * Sent without dry_run, so the proxy answers the protocol's ChangeResult; the
 * applier reads only its generation and the effects (a stand-in may leave them out).
 */
export type SendTransaction = (
  changes: Change[],
  expectGeneration: number | undefined,
) => Promise<Pick<ChangeResult, 'generation'> & { applied?: readonly { effect: string }[] | undefined }>;

export interface ApplyOutcome {
  /** Changes the proxy took, and those of them that changed something. */
  applied: number;
  effective: number;
  refused: { group: string; reason: string }[];
  generation: number | undefined;
}

/** Rounds of dropping refused messages before the rest is given up as refused too. */
const MAX_ROUNDS = 10;
const CHANGE_PATH = /^changes\[(\d+)\]/;

export async function applyPlan(
  plan: readonly PlannedChange[],
  send: SendTransaction,
  opts: { maxBytes: number; expectGeneration?: number | undefined },
): Promise<ApplyOutcome> {
  const out: ApplyOutcome = { applied: 0, effective: 0, refused: [], generation: undefined };
  let expect = opts.expectGeneration;
  for (const part of split(plan, opts.maxBytes)) {
    let rest = part;
    for (let round = 0; rest.length > 0; round++) {
      try {
        const answer = await send(rest.map(tolerant), expect);
        out.applied += rest.length;
        out.effective += (answer.applied ?? []).filter((a) => a.effect !== 'unchanged').length;
        out.generation = answer.generation;
        break;
      } catch (err) {
        if (!(err instanceof CommandError) || err.code === 'KKH_GENERATION_MISMATCH') throw err;
        const faults = new Map<string, string[]>();
        for (const issue of err.issues) {
          const m = CHANGE_PATH.exec(issue.path);
          const p = m === null ? undefined : rest[Number(m[1])];
          if (p === undefined) continue;
          const reasons = faults.get(p.group) ?? [];
          reasons.push(`${issue.path}: ${issue.reason}`);
          faults.set(p.group, reasons);
        }
        // Refused without naming a change, or still refused after many rounds: the
        // rest goes as refused, with the proxy's own words.
        if (faults.size === 0 || round + 1 >= MAX_ROUNDS) {
          for (const g of new Set(rest.map((p) => p.group)))
            out.refused.push({ group: g, reason: `${err.code}: ${err.message}` });
          break;
        }
        for (const [group, reasons] of faults)
          out.refused.push({ group, reason: reasons.slice(0, 3).join('; ') });
        rest = rest.filter((p) => !faults.has(p.group));
      }
    }
    // Only the first part is compared with the generation the plan was made at.
    expect = undefined;
  }
  return out;
}

/**
 * The topic's word may delete what is already gone (a delete after a delete, an
 * object another source removed meanwhile): that is the state wanted, not a fault.
 */
function tolerant(p: PlannedChange): Change {
  const c = p.change;
  switch (c.op) {
    case 'delete_listener':
    case 'delete_cluster':
    case 'delete_backend':
    case 'delete_frontend':
    case 'delete_certificate':
      return { ...c, if_exists: true };
    default:
      return c;
  }
}

function* split(plan: readonly PlannedChange[], maxBytes: number): Generator<PlannedChange[]> {
  let part: PlannedChange[] = [];
  let bytes = 0;
  for (const p of plan) {
    const size = Buffer.byteLength(JSON.stringify(p.change)) + 1;
    if (part.length > 0 && bytes + size > maxBytes) {
      yield part;
      part = [];
      bytes = 0;
    }
    part.push(p);
    bytes += size;
  }
  if (part.length > 0) yield part;
}
