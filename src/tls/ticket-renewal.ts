// A fresh session ticket on every resumed handshake, as nginx sends. Node
// encrypts tickets with the 48-byte keys through a callback that tells OpenSSL
// "decrypted, keep using it", so a resumed TLS 1.3 handshake gets no new
// ticket and a client that uses each ticket once (RFC 8446 §C.4) falls back to
// a full handshake every third connection. Node's own ticket-key callback hook
// (the native context's enableTicketKeyCallback, undocumented but what Node's
// tests use) lets the answer be "renew" instead.

import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';

/** The native half of a SecureContext, as far as the ticket key callback goes. */
interface NativeContext {
  enableTicketKeyCallback?: () => void;
  /**
   * (name, iv, encrypting) => [result, hmacKey, aesKey, name?, iv?]. The keys must
   * be there whatever the result: Node reads them unconditionally and aborts
   * the process on a missing one (tried: returning [0] alone).
   */
  onticketkeycallback?: (
    name: Buffer,
    iv: Buffer,
    enc: boolean,
  ) => [number, Buffer, Buffer, Buffer?, Buffer?];
}

/** OpenSSL's ticket key callback results: 0 no such key (full handshake), 1 use, 2 use and issue a new ticket. */
const UNKNOWN_KEY = 0;
const USE = 1;
const USE_AND_RENEW = 2;

/**
 * Makes `context` encrypt tickets with `keys()` (name | HMAC key | AES key, the
 * layout Node's `ticketKeys` uses, so tickets stay valid across workers and
 * versions) and renew each one it resumes. Returns false where Node lacks the
 * hook: the context then keeps its `ticketKeys` behaviour, without renewal.
 */
export function renewTicketsOnResumption(context: SecureContext, keys: () => Buffer): boolean {
  // SecureContext types `context` as any: it is the native binding.
  const native = context.context as NativeContext;
  if (typeof native.enableTicketKeyCallback !== 'function') return false;
  native.onticketkeycallback = (name, _iv, enc) => {
    const k = keys();
    const hmac = k.subarray(16, 32);
    const aes = k.subarray(32, 48);
    if (enc) return [USE, hmac, aes, k.subarray(0, 16), randomBytes(16)];
    // A ticket from other keys (before a rotation) resumes nothing.
    if (!name.equals(k.subarray(0, 16))) return [UNKNOWN_KEY, hmac, aes];
    return [USE_AND_RENEW, hmac, aes];
  };
  native.enableTicketKeyCallback();
  return true;
}
