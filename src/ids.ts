import { randomBytes } from "node:crypto";

let lastTime = 0;
let counter = 0;

/** Random hex digits drawn in bulk: one `randomBytes` call per id costs more than the rest of making it. */
const RANDOM_POOL_BYTES = 4096;
let pool = "";
let poolOffset = 0;

/** `digits` cryptographically random hex digits. */
function randomHex(digits: number): string {
  if (poolOffset + digits > pool.length) {
    pool = randomBytes(RANDOM_POOL_BYTES).toString("hex");
    poolOffset = 0;
  }
  poolOffset += digits;
  return pool.slice(poolOffset - digits, poolOffset);
}

/**
 * A unique id that sorts by creation time, including between ids made in the same millisecond by
 * this process: 12 hex digits of milliseconds, 6 of a per-millisecond counter, 8 random.
 */
export function sortableId(): string {
  const now = Date.now();
  counter = now === lastTime ? counter + 1 : 0;
  lastTime = now;
  return now.toString(16).padStart(12, "0") + counter.toString(16).padStart(6, "0") + randomHex(8);
}

/**
 * `text` as one flat string. A string built by concatenation, as `randomUUID()`'s is, holds its
 * parts (a dozen objects for a UUID) for as long as it is kept: this copy holds none. For text
 * that is valid UTF-16 (no lone surrogates), which it returns unchanged.
 */
export function flatString(text: string): string {
  return Buffer.from(text).toString();
}
