// The data plane of one worker: its routing state, the DataPlane built from it
// and one HttpListener per listener. A new state is applied whole: routes swap
// at once, new listeners bind first, removed ones drain their connections.

import { type AccessLog, startAccessLog } from '../log/access-log.js';
import type { Logger } from '../log/logger.js';
import { listenerKey } from '../model/objects.js';
import type { HealthEvent } from '../proxy/backend-runtime.js';
import { DataPlane } from '../proxy/data-plane.js';
import { HttpListener } from '../proxy/http-listener.js';
import { backendHealth } from '../proxy/request-events.js';
import type { ProxyState } from '../state/proxy-state.js';

export interface BoundListener {
  key: string;
  address: string;
  port: number;
}

export class ProxyRuntime {
  private readonly plane: DataPlane;
  private readonly listeners = new Map<string, HttpListener>();
  private readonly access: AccessLog;
  private state: ProxyState;

  constructor(
    state: ProxyState,
    accessLog: string,
    private readonly log: Logger,
    onHealth: (e: HealthEvent) => void,
  ) {
    this.state = state;
    this.access = startAccessLog(accessLog);
    this.plane = new DataPlane(state, (e) => {
      log.warn(
        { event: e.type, cluster: e.cluster, backend: e.backend, address: e.address },
        e.type === 'backend_down' ? 'backend down' : 'backend up',
      );
      if (backendHealth.hasSubscribers) backendHealth.publish(e);
      onHealth(e);
    });
  }

  bound(): BoundListener[] {
    return [...this.listeners].map(([key, l]) => ({ key, address: l.spec.address, port: l.port }));
  }

  /**
   * Moves to `next`. New listeners are bound before routes switch, so a failure
   * to bind leaves the old state serving (and is thrown); removed listeners
   * stop accepting and finish what they carry.
   */
  async apply(next: ProxyState): Promise<void> {
    const added: HttpListener[] = [];
    try {
      for (const spec of next.listeners.values()) {
        const key = listenerKey(spec);
        if (this.listeners.has(key)) continue;
        const l = new HttpListener(spec, key, this.plane);
        await l.listen();
        added.push(l);
      }
    } catch (err) {
      for (const l of added) void l.drain(0);
      throw err;
    }
    for (const l of added) this.listeners.set(l.listenerKey, l);
    this.plane.update(next);
    for (const [key, l] of this.listeners) {
      if (!next.listeners.has(key)) {
        this.listeners.delete(key);
        void l.drain(60_000).then((cut) => {
          if (cut > 0)
            this.log.warn({ listener: key, connections: cut }, 'removed listener drained; connections cut');
        });
      }
    }
    this.state = next;
  }

  get current(): ProxyState {
    return this.state;
  }

  /** Stops accepting, drains every listener within the deadline; returns how many connections were cut. */
  async drain(timeoutMs: number): Promise<number> {
    const cut = (await Promise.all([...this.listeners.values()].map((l) => l.drain(timeoutMs)))).reduce(
      (a, b) => a + b,
      0,
    );
    this.plane.close();
    this.access.close();
    return cut;
  }
}
