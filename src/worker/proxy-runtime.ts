// The data plane of one worker: its routing state, the DataPlane built from it
// and one listener per listener spec (HttpListener for http and https,
// TcpListener for tcp and tls). A new state is applied whole: routes swap
// at once, new listeners bind first, removed ones drain their connections.

import { RETIRED_LISTENER_DRAIN_MS } from '../defaults.js';
import type { BoundListener, ListeningHandle } from '../ipc/messages.js';
import type { AccessLog } from '../log/access-log.js';
import type { Logger } from '../log/logger.js';
import { type Certificate, carriesBytes, keyOf, type Listener } from '../model/objects.js';
import type { BackendLive } from '../proxy/backend-runtime.js';
import { DataPlane } from '../proxy/data-plane.js';
import { HttpListener, type TlsSetup } from '../proxy/http-listener.js';
import { backendHealth, type HealthEvent } from '../proxy/request-events.js';
import { TcpListener } from '../proxy/tcp-listener.js';
import type { ProxyState } from '../state/proxy-state.js';

/** What the runtime does with a listener, whatever its protocol. */
type AnyListener = HttpListener | TcpListener;

function createListener(
  spec: Listener,
  key: string,
  plane: DataPlane,
  tls: TlsSetup,
  certificates: Certificate[],
): AnyListener {
  return carriesBytes(spec.protocol)
    ? new TcpListener(spec, key, plane, tls, certificates)
    : new HttpListener(spec, key, plane, tls, certificates);
}

export class ProxyRuntime {
  private readonly plane: DataPlane;
  private readonly listeners = new Map<string, AnyListener>();
  private readonly access: AccessLog;
  private state: ProxyState;
  /** Listening sockets a previous main handed over, by listener key, until the first apply takes them. */
  private readonly adopted = new Map<string, ListeningHandle>();

  constructor(
    state: ProxyState,
    /** Started by the caller, which knows its settings; closed by this runtime. */
    access: AccessLog,
    private readonly log: Logger,
    onHealth: (e: HealthEvent) => void,
    private readonly tls: TlsSetup,
  ) {
    this.state = state;
    this.access = access;
    this.plane = new DataPlane(state, (e) => {
      log.warn(
        { event: e.type, cluster: e.cluster, backend: e.backend, address: e.address },
        e.type === 'backend_down' ? 'backend down' : 'backend up',
      );
      if (backendHealth.hasSubscribers) backendHealth.publish(e);
      onHealth(e);
    });
  }

  /** SIGUSR1: the access log file opened again, for logrotate's rename-then-signal. */
  reopenLogs(): void {
    this.access.reopen();
  }

  get requestsInFlight(): number {
    return this.plane.requestsInFlight;
  }

  /** Main's health checks: the backend keys down now. */
  setHealthDown(keys: readonly string[]): void {
    this.plane.setCheckedDown(keys);
  }

  /** Answers query_backends: what this worker's data plane sees of each backend. */
  backendsLive(): BackendLive[] {
    return this.plane.backendsLive();
  }

  /** A handed-over listening socket for the listener `key` (ctl upgrade --main). */
  adopt(key: string, handle: ListeningHandle): void {
    this.adopted.get(key)?.close?.();
    this.adopted.set(key, handle);
  }

  /** The listening sockets, to hand to a new main. */
  listeningHandles(): { key: string; handle: ListeningHandle }[] {
    const out: { key: string; handle: ListeningHandle }[] = [];
    for (const [key, l] of this.listeners) {
      const handle = l.listeningHandle;
      if (handle !== undefined) out.push({ key, handle });
    }
    return out;
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
    const added: AnyListener[] = [];
    const certs = certificatesByListener(next);
    // A listener switching protocol (between http, https, tcp and tls) is a new server on the
    // same listening socket, handed from the old one, which then only finishes what it carries.
    const switched = new Map<AnyListener, ListeningHandle | undefined>();
    for (const [key, l] of this.listeners) {
      const spec = next.listeners.get(key);
      if (spec !== undefined && spec.protocol !== l.spec.protocol) switched.set(l, l.releaseListening());
    }
    const replacing = new Map<AnyListener, AnyListener>();
    try {
      for (const spec of next.listeners.values()) {
        const key = keyOf('listener', spec);
        const have = this.listeners.get(key);
        if (have !== undefined && !switched.has(have)) continue;
        const l = createListener(spec, key, this.plane, this.tls, certs.get(key) ?? []);
        const handed = have === undefined ? this.adopted.get(key) : switched.get(have);
        this.adopted.delete(key);
        await l.listen(handed);
        added.push(l);
        if (have !== undefined) replacing.set(l, have);
      }
    } catch (err) {
      // Back as it was: each switched socket returns to its old listener; every new one closes.
      for (const l of added) {
        const old = replacing.get(l);
        if (old !== undefined) switched.set(old, l.releaseListening());
        void l.drain(0);
      }
      for (const [l, handle] of switched) await l.listen(handle).catch(() => undefined);
      throw err;
    }
    // A handed-over socket the state no longer has must not hold its port bound.
    for (const h of this.adopted.values()) h.close?.();
    this.adopted.clear();
    for (const l of switched.keys()) this.retire(l.listenerKey, l, 'replaced');
    for (const l of added) this.listeners.set(l.listenerKey, l);
    this.plane.update(next);
    if (next.certificates !== this.state.certificates || next.listeners !== this.state.listeners) {
      for (const [key, l] of this.listeners) {
        const spec = next.listeners.get(key);
        if (spec !== undefined && !added.includes(l)) l.update(spec, certs.get(key) ?? []);
      }
    }
    for (const [key, l] of this.listeners) {
      if (!next.listeners.has(key)) {
        this.listeners.delete(key);
        this.retire(key, l, 'removed');
      }
    }
    this.state = next;
  }

  /** A listener the new state no longer has (removed) or has anew (replaced): it drains in the background. */
  private retire(key: string, l: AnyListener, why: 'removed' | 'replaced'): void {
    void l.drain(RETIRED_LISTENER_DRAIN_MS).then((cut) => {
      if (cut > 0)
        this.log.warn({ listener: key, connections: cut }, `${why} listener drained; connections cut`);
    });
  }

  setSelfSigned(selfSigned: { certificate: string; key: string }): void {
    this.tls.selfSigned = selfSigned;
  }

  /** Same keys in every worker at once: main rotates them. */
  setTicketKeys(keys: Buffer): void {
    this.tls.ticketKeys = keys;
    for (const l of this.listeners.values()) l.setTicketKeys(keys);
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

function certificatesByListener(state: ProxyState): Map<string, Certificate[]> {
  const out = new Map<string, Certificate[]>();
  for (const c of state.certificates.values()) {
    const key = keyOf('listener', { address: c.listener });
    const list = out.get(key);
    if (list) list.push(c);
    else out.set(key, [c]);
  }
  return out;
}
