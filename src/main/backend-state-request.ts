// set_backend_state: the operator's drain, maintenance or ready (HAProxy's `set
// server state`) as a put of the backend with only its `state` changed. The put
// is made from the state when the transaction's turn comes, so a change queued
// ahead of it (a new address, say) is kept, not overwritten by an older copy.

import type { TransactionResult } from '../command/protocol.js';
import { type FieldIssue, KakehiError } from '../errors.js';
import { BACKEND_STATES, type BackendState, keyOf } from '../model/objects.js';
import type { Supervisor } from './supervisor.js';

function invalid(issue: FieldIssue): KakehiError {
  return new KakehiError('KKH_REQUEST_INVALID', `${issue.path}: ${issue.reason}`, { issues: [issue] });
}

function name(b: Record<string, unknown>, field: string): string {
  const v = b[field];
  if (typeof v !== 'string' || v === '')
    throw invalid({ path: field, reason: 'expected a non-empty string' });
  return v;
}

export function setBackendState(sup: Supervisor, b: Record<string, unknown>): Promise<TransactionResult> {
  const cluster = name(b, 'cluster');
  const id = name(b, 'backend');
  const state = b['state'];
  if (!(BACKEND_STATES as readonly unknown[]).includes(state)) {
    throw invalid({ path: 'state', reason: `expected one of ${BACKEND_STATES.join(', ')}` });
  }
  const expect = b['expect_generation'];
  if (expect !== undefined && (typeof expect !== 'number' || !Number.isInteger(expect))) {
    throw invalid({ path: 'expect_generation', reason: 'expected a whole number' });
  }
  const key = keyOf('backend', { cluster, id });
  return sup.transact(
    (current) => {
      const backend = current.backends.get(key);
      if (backend === undefined) {
        const reason = `backend "${key}" does not exist`;
        throw new KakehiError('KKH_CHANGE_INVALID', `the change was refused: ${reason}`, {
          issues: [{ path: 'backend', reason }],
        });
      }
      return [{ op: 'put_backend', backend: { ...backend, state: state as BackendState } }];
    },
    {
      // Like any runtime put, it takes the backend over from the config file:
      // a reload leaves it be, and a restart with a state file brings it back.
      source: typeof b['source'] === 'string' ? b['source'] : 'runtime',
      dryRun: b['dry_run'] === true,
      expectGeneration: expect as number | undefined,
    },
  );
}
