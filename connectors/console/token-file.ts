// The console's login tokens: an editor token and a read-only token, made with
// crypto.randomBytes at first start and shown once; the file keeps only their
// scrypt hashes (with salts), mode 0600, so reading it gives no way in.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

export type Role = 'editor' | 'viewer';
export const ROLES: readonly Role[] = ['editor', 'viewer'];

interface HashedToken {
  role: Role;
  salt: string;
  hash: string;
}

const HASH_BYTES = 32;
const TOKEN_BYTES = 24;
// A token longer than this is no token of ours: refused before hashing, so a
// huge body cannot make scrypt chew on it.
const MAX_TOKEN_LENGTH = 256;

function hashOf(token: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(token, salt, HASH_BYTES, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export class TokenFile {
  readonly #tokens: HashedToken[];

  private constructor(tokens: HashedToken[]) {
    this.#tokens = tokens;
  }

  /**
   * Reads the file, or creates it with fresh tokens: `created` then holds the
   * tokens in clear, for the caller to print once.
   */
  static async open(path: string): Promise<{ file: TokenFile; created?: Record<Role, string> }> {
    if (existsSync(path)) return { file: new TokenFile(readTokens(path)) };
    const created = {} as Record<Role, string>;
    const tokens: HashedToken[] = [];
    for (const role of ROLES) {
      const token = `${role === 'editor' ? 'kce' : 'kcv'}_${randomBytes(TOKEN_BYTES).toString('base64url')}`;
      const salt = randomBytes(16);
      created[role] = token;
      tokens.push({
        role,
        salt: salt.toString('base64'),
        hash: (await hashOf(token, salt)).toString('base64'),
      });
    }
    // wx: never overwrite a file another console wrote meanwhile; 0600 from the start.
    writeFileSync(path, `${JSON.stringify({ version: 1, tokens }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return { file: new TokenFile(tokens), created };
  }

  /** The role a token grants, or undefined. Every hash is checked, so time says nothing about which failed. */
  async roleOf(token: string): Promise<Role | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    let found: Role | undefined;
    for (const t of this.#tokens) {
      const want = Buffer.from(t.hash, 'base64');
      const got = await hashOf(token, Buffer.from(t.salt, 'base64'));
      if (got.length === want.length && timingSafeEqual(got, want)) found ??= t.role;
    }
    return found;
  }
}

function readTokens(path: string): HashedToken[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: cannot read the token file: ${(err as Error).message}`);
  }
  const tokens = (doc as { tokens?: unknown } | null)?.tokens;
  const valid =
    Array.isArray(tokens) &&
    tokens.length > 0 &&
    tokens.every(
      (t: unknown) =>
        typeof t === 'object' &&
        t !== null &&
        ROLES.includes((t as HashedToken).role) &&
        typeof (t as HashedToken).salt === 'string' &&
        typeof (t as HashedToken).hash === 'string',
    );
  if (!valid) {
    throw new Error(
      `${path}: not a console token file (tokens: [{role, salt, hash}]); delete it to start afresh`,
    );
  }
  return tokens as HashedToken[];
}
