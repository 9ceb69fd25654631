// `backend_tls.verify: false` is a choice an operator must keep seeing: main
// logs a warning for each cluster that has it whenever a state is loaded (at
// start) and whenever a change puts such a cluster, even unchanged (a reload).

import type { Logger } from '../log/logger.js';
import type { Cluster } from '../model/objects.js';
import type { ProxyState } from '../state/proxy-state.js';
import type { Applied } from '../state/transaction.js';

/** Warns for the clusters of `state` without verification: all, or those `applied` put. */
export function warnUnverifiedBackendTls(log: Logger, state: ProxyState, applied?: readonly Applied[]): void {
  const put =
    applied === undefined
      ? undefined
      : new Set(applied.filter((a) => a.op === 'put_cluster').map((a) => a.key));
  for (const c of state.clusters.values()) {
    if (c.backend_tls?.verify !== false || (put !== undefined && !put.has(c.id))) continue;
    log.warn(
      { event: 'backend_tls_unverified', cluster: c.id, ...serverName(c) },
      "backend_tls.verify is false: the backends' certificates are not checked, so anyone on the path can pose as them",
    );
  }
}

function serverName(c: Cluster): { server_name?: string } {
  return c.backend_tls?.server_name === undefined ? {} : { server_name: c.backend_tls.server_name };
}
