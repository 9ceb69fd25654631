// What every worker's HTTPS listeners share, held by main: the self-signed
// default certificate (made once an https listener appears) and the session
// ticket keys with their rotation timer. Main sends them; this decides them.

import { randomBytes } from 'node:crypto';
import type { TlsSetupMessage } from '../ipc/messages.js';
import type { Logger } from '../log/logger.js';
import { keyOf, terminatesTls } from '../model/objects.js';
import type { ProxyState } from '../state/proxy-state.js';
import type { Applied } from '../state/transaction.js';
import { TICKET_KEY_ROTATION_MS } from '../tls/policy.js';

export class TlsMaterial {
  /** Sent whole in every worker's init: a worker started later has the current material. */
  readonly setup: TlsSetupMessage = { ticketKeys: newTicketKeys() };
  #rotation: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger) {}

  /**
   * The self-signed default certificate, made once the state has an https
   * listener (an RSA key takes up to a second to generate, so HTTP-only proxies
   * never pay it); undefined when there is nothing new to send.
   */
  async selfSignedFor(state: ProxyState): Promise<{ certificate: string; key: string } | undefined> {
    if (this.setup.selfSigned !== undefined) return undefined;
    if (![...state.listeners.values()].some((l) => terminatesTls(l.protocol))) return undefined;
    // node-forge is loaded only by proxies that serve HTTPS.
    const { selfSignedCertificateAsync } = await import('../tls/self-signed.js');
    const made = await selfSignedCertificateAsync(['localhost']);
    this.setup.selfSigned = made;
    return made;
  }

  /** New ticket keys, in the setup from now on; the caller sends them to the workers. */
  rotateTicketKeys(): string {
    this.setup.ticketKeys = newTicketKeys();
    return this.setup.ticketKeys;
  }

  /** Calls `rotate` every TICKET_KEY_ROTATION_MS from now (restarted by an operator's rotation). */
  scheduleRotation(rotate: () => void): void {
    clearInterval(this.#rotation);
    this.#rotation = setInterval(rotate, TICKET_KEY_ROTATION_MS);
    this.#rotation.unref();
  }

  stopRotation(): void {
    clearInterval(this.#rotation);
  }

  /** An https listener with no default certificate answers SNI-less and unknown names with a self-signed one. */
  warnSelfSignedDefaults(state: ProxyState, only?: ReadonlySet<string>): void {
    if (only !== undefined && only.size === 0) return;
    for (const [key, l] of state.listeners) {
      if (!terminatesTls(l.protocol) || (only !== undefined && !only.has(key))) continue;
      const hasDefault = [...state.certificates.values()].some(
        (c) => c.default && keyOf('listener', { address: c.listener }) === key,
      );
      if (!hasDefault)
        this.log.warn(
          { listener: key },
          'https listener has no default certificate: clients without SNI or with an unknown name get a self-signed one',
        );
    }
  }
}

function newTicketKeys(): string {
  return randomBytes(48).toString('base64');
}

/** Listeners a change may have left without a default certificate: new ones, and those that lost a certificate. */
export function listenersLosingDefaults(applied: readonly Applied[]): Set<string> {
  const out = new Set<string>();
  for (const a of applied) {
    if (a.op === 'put_listener' && a.effect === 'created') out.add(a.key);
    // A certificate's key is "<listener> <fingerprint>".
    if (a.op === 'delete_certificate' && a.effect === 'deleted')
      out.add(a.key.slice(0, a.key.lastIndexOf(' ')));
  }
  return out;
}
