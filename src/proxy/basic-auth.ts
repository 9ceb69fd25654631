// Basic authentication of a frontend (RFC 7617) against scrypt hashes. scrypt
// is slow on purpose (tens of milliseconds), so it runs on libuv's thread pool,
// never on the worker's event loop, and a success is remembered per worker in a
// bounded LRU: the next request with the same credentials costs one HMAC. The
// cache key is an HMAC under a key made at start-up, so even this process's
// memory holds nothing a password can be guessed against faster than scrypt.
// Checks waiting on the pool are bounded: a flood of wrong passwords gets 503,
// it cannot queue work without end.

import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { parseScryptHash, type ScryptHash } from '../model/frontend-rules.js';

export interface BasicAuthSpec {
  realm: string;
  users: { name: string; password_hash: string }[];
}

/** Remembered successes per worker; each entry is 44 bytes of key. */
const CACHE_ENTRIES = 4096;
/** scrypt runs at once per worker; the pool has 4 threads by default. */
const MAX_VERIFYING = 16;
/** Longest Authorization value read (a base64 name:password pair). */
const MAX_CREDENTIALS = 4096;

const cacheKey = randomBytes(32);
const remembered = new Map<string, true>();
let verifying = 0;

/** What a request's credentials got: at once, or once scrypt has run. */
export type AuthOutcome = 'ok' | 'refused' | 'busy' | Promise<boolean>;

interface User {
  readonly stored: string;
  readonly hash: ScryptHash;
}

export class BasicAuth {
  /** The WWW-Authenticate value of a 401. */
  readonly challenge: string;
  private readonly users = new Map<string, User>();
  private readonly decoy: ScryptHash | undefined;

  constructor(spec: BasicAuthSpec) {
    this.challenge = `Basic realm="${spec.realm}", charset="UTF-8"`;
    for (const u of spec.users) {
      const hash = parseScryptHash(u.password_hash);
      // The schema refused any other; a bad one here matches nobody.
      if (typeof hash !== 'string') this.users.set(u.name, { stored: u.password_hash, hash });
    }
    this.decoy = this.users.values().next().value?.hash;
  }

  /** Checks an Authorization value (undefined: none was sent, or several). */
  check(authorization: string | undefined): AuthOutcome {
    if (authorization === undefined || authorization.length > MAX_CREDENTIALS) return 'refused';
    const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(authorization);
    if (m === null) return 'refused';
    const pair = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    if (colon < 0) return 'refused';
    const user = this.users.get(pair.slice(0, colon));
    const password = pair.slice(colon + 1);
    if (user !== undefined) {
      const key = createHmac('sha256', cacheKey)
        .update(user.stored)
        .update('\0')
        .update(password)
        .digest('base64');
      if (remembered.has(key)) {
        remembered.delete(key);
        remembered.set(key, true);
        return 'ok';
      }
      if (verifying >= MAX_VERIFYING) return 'busy';
      return verify(password, user.hash).then((ok) => {
        if (ok) remember(key);
        return ok;
      });
    }
    // An unknown name costs as much as a wrong password: timing tells no names.
    if (this.decoy === undefined) return 'refused';
    if (verifying >= MAX_VERIFYING) return 'busy';
    return verify(password, this.decoy).then(() => false);
  }
}

function remember(key: string): void {
  remembered.set(key, true);
  if (remembered.size > CACHE_ENTRIES) remembered.delete(remembered.keys().next().value!);
}

function verify(password: string, h: ScryptHash): Promise<boolean> {
  verifying++;
  const N = 2 ** h.ln;
  return new Promise((resolve) => {
    scrypt(password, h.salt, h.hash.length, { N, r: h.r, p: h.p, maxmem: 256 * N * h.r }, (err, derived) => {
      verifying--;
      resolve(err === null && timingSafeEqual(derived, h.hash));
    });
  });
}

/** Remembered successes and checks running, for the worker's metrics. */
export function basicAuthLoad(): { remembered: number; running: number } {
  return { remembered: remembered.size, running: verifying };
}

/** A password's hash in the PHC form kakehi reads: `$scrypt$ln=…,r=…,p=…$salt$hash`. */
export function hashPassword(password: string, ln = 15, r = 8, p = 1): Promise<string> {
  const salt = randomBytes(16);
  const N = 2 ** ln;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N, r, p, maxmem: 256 * N * r }, (err, derived) => {
      if (err !== null) reject(err);
      else {
        const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
        resolve(`$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(derived)}`);
      }
    });
  });
}
