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
