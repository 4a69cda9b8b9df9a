import { readFileSync } from "node:fs";
import jsonata from "jsonata";

/** One case of a corpus (hostile-corpus.json, heavy-corpus.json). */
export interface HostileCase {
  readonly name: string;
  readonly stack: unknown[];
  /** A JSONata expression building the client's payload. */
  readonly payload: string;
  /** `ok`, the bound the run fails on (`a|b`: either), or `refused: regex` (the stack may not be saved). */
  readonly expect: string;
}

/** A corpus of cases, read from its data file beside the tests. */
function readCorpus(file: string): readonly HostileCase[] {
  return (JSON.parse(readFileSync(new URL(file, import.meta.url), "utf8")) as { cases: HostileCase[] }).cases;
}

/** Stacks and payloads meant to stall, bloat or crash the server (hostile-corpus.json). */
export const HOSTILE_CASES = readCorpus("./hostile-corpus.json");

/** Valid stacks that do a lot of work in few steps (heavy-corpus.json). */
export const HEAVY_CASES = readCorpus("./heavy-corpus.json");

/** The payload a case's client sends. */
export async function hostilePayload(hostile: HostileCase): Promise<unknown> {
  return jsonata(hostile.payload).evaluate(undefined);
}
