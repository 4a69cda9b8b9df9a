import { randomBytes } from "node:crypto";

let lastTime = 0;
let counter = 0;

/**
 * A unique id that sorts by creation time, including between ids made in the same millisecond by
 * this process: 12 hex digits of milliseconds, 6 of a per-millisecond counter, 8 random.
 */
export function sortableId(): string {
  const now = Date.now();
  counter = now === lastTime ? counter + 1 : 0;
  lastTime = now;
  return now.toString(16).padStart(12, "0") + counter.toString(16).padStart(6, "0") + randomBytes(4).toString("hex");
}
