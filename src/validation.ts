import type { z } from "zod";
import { badInput } from "./errors.js";

/**
 * Parses input with a zod schema, turning the first problem into a `BAD_USER_INPUT` error that
 * names the field (e.g. `input.name: must not be empty`).
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = ["input", ...issue.path].join(".");
  throw badInput(`${path}: ${issue.message}`, { path });
}

/** Something wrong with one field of an input, at its path in the input (`name`, `stack[1].value`). */
export interface InputProblem {
  readonly path: string;
  readonly message: string;
}

/** A path as text: names joined with dots, indexes in brackets (`triggers[2].stack[1].value`). */
export function formatPath(segments: readonly PropertyKey[]): string {
  return segments.reduce<string>(
    (path, segment) => (typeof segment === "number" ? `${path}[${segment}]` : path === "" ? String(segment) : `${path}.${String(segment)}`),
    "",
  );
}

/** A path inside the field at `prefix` (either may be empty). */
export function joinPath(prefix: string, path: string): string {
  return prefix === "" ? path : path === "" ? prefix : path.startsWith("[") ? prefix + path : `${prefix}.${path}`;
}

/** Every problem zod found, at its path. */
export function zodProblems(error: z.ZodError): InputProblem[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/** How deeply JSON values from clients (payloads, options, trigger stacks) may nest. */
export const MAX_JSON_DEPTH = 64;

/**
 * True when arrays and objects in `value` nest deeper than `max`. Walks with an explicit stack, so
 * a hostile value cannot overflow the call stack the way `JSON.stringify` would.
 */
export function nestsDeeperThan(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return false;
}

/** A lone UTF-16 surrogate (not Unicode text) or a NUL character (which PostgreSQL cannot store). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this refuses
const UNSTORABLE_TEXT = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\u0000/;

/**
 * What is wrong with a client's JSON value, if anything: `depth` when arrays and objects nest
 * deeper than `max`, `text` when a string (or key) holds a lone surrogate or a NUL character, which
 * no database here stores faithfully. Walks with an explicit stack, like {@link nestsDeeperThan}.
 */
export function clientJsonProblem(value: unknown, max: number = MAX_JSON_DEPTH): "depth" | "text" | null {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node === "string") {
      if (UNSTORABLE_TEXT.test(node)) return "text";
      continue;
    }
    if (typeof node !== "object" || node === null) continue;
    if (depth >= max) return "depth";
    for (const [key, child] of Object.entries(node)) {
      if (UNSTORABLE_TEXT.test(key)) return "text";
      pending.push([child, depth + 1]);
    }
  }
  return null;
}
