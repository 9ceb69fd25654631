// The ids kakehi gives requests that came without a valid X-Request-Id: random
// (version 4) UUIDs, as crypto.randomUUID makes them, from a batch of random
// bytes, but written as one flat string: randomUUID builds each of its 36
// characters into a chain of joined strings, which the head then copies again.

import { randomFillSync } from 'node:crypto';

/** UUIDs per refill of the random bytes. */
const BATCH = 128;
const random = Buffer.alloc(16 * BATCH);
let used = BATCH;
const text = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** A new random UUID (RFC 9562 version 4), lowercase. */
export function newRequestId(): string {
  if (used === BATCH) {
    randomFillSync(random);
    used = 0;
  }
  const from = 16 * used++;
  let p = 0;
  for (let i = 0; i < 16; i++) {
    let b = random[from + i]!;
    if (i === 6)
      b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10
    text[p++] = HEX[b >> 4]!;
    text[p++] = HEX[b & 15]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) text[p++] = 45; // '-'
  }
  return text.toString('latin1', 0, 36);
}
