import { readFileSync } from "node:fs";
import jsonata from "jsonata";

/** One case of the hostile corpus (hostile-corpus.json). */
export interface HostileCase {
  readonly name: string;
  readonly stack: unknown[];
  /** A JSONata expression building the client's payload. */
  readonly payload: string;
  /** `ok`, the bound the run fails on (`a|b`: either), or `refused: regex` (the stack may not be saved). */
  readonly expect: string;
}

/** The corpus, read from the data file beside the tests. */
export const HOSTILE_CASES: readonly HostileCase[] = (
  JSON.parse(readFileSync(new URL("./hostile-corpus.json", import.meta.url), "utf8")) as { cases: HostileCase[] }
).cases;

/** The payload a case's client sends. */
export async function hostilePayload(hostile: HostileCase): Promise<unknown> {
  return jsonata(hostile.payload).evaluate(undefined);
}

/**
 * Watches the event loop: the longest time a 5 ms timer waited past its due time while watching.
 * A run that held the event loop shows up here as the length of its longest stretch.
 */
export function watchEventLoop(): { stop(): number } {
  let longest = 0;
  let due = performance.now() + 5;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - due);
    due = now + 5;
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(longest, performance.now() - due);
    },
  };
}
