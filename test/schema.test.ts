import { readFileSync } from "node:fs";
import { buildSchema, lexicographicSortSchema, printSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../src/schema/index.js";

describe("schema.graphql", () => {
  it("matches the schema the server serves (run `npm run codegen` after changing the schema)", () => {
    const committed = buildSchema(readFileSync(new URL("../schema.graphql", import.meta.url), "utf8"));
    expect(printSchema(lexicographicSortSchema(committed))).toBe(printSchema(lexicographicSortSchema(schema)));
  });
});
