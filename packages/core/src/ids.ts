import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const RANDOM_CHARS = 10;

// Random bytes are drawn 4 KiB at a time: one crypto call per ~400 ids instead of one per id,
// which matters on the per-prompt hot path.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/**
 * A time-ordered unique id (`<prefix>_<time><random>`), so ids sort by creation in logs and
 * tables without a separate timestamp index.
 */
export function newId(prefix: string): string {
  let time = Date.now();
  let timePart = "";
  for (let i = 0; i < 9; i++) {
    timePart = ALPHABET[time % 32] + timePart;
    time = Math.floor(time / 32);
  }
  if (poolOffset + RANDOM_CHARS > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let randomPart = "";
  for (let i = 0; i < RANDOM_CHARS; i++) randomPart += ALPHABET[(pool[poolOffset++] as number) % 32];
  return `${prefix}_${timePart}${randomPart}`;
}
