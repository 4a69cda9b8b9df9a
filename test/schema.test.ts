import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { buildSchema, lexicographicSortSchema, printSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../src/schema/index.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Every file under a folder, as paths relative to `base`. */
function filesUnder(dir: string, base: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(base, join(entry.parentPath, entry.name)))
    .sort();
}

describe("schema.graphql", () => {
  it("matches the schema the server serves (run `npm run codegen` after changing the schema)", () => {
    const committed = buildSchema(readFileSync(new URL("../schema.graphql", import.meta.url), "utf8"));
    expect(printSchema(lexicographicSortSchema(committed))).toBe(printSchema(lexicographicSortSchema(schema)));
  });
});

describe("codegen outputs", () => {
  it("schema.graphql, web/generated/ and packages/client/src/generated/ equal a fresh codegen run (run `npm run codegen` after changing the schema or an operation)", async () => {
    const out = mkdtempSync(join(tmpdir(), "codegen-"));
    try {
      await promisify(execFile)(join(root, "node_modules", ".bin", "graphql-codegen"), ["--config", "codegen.ts"], {
        cwd: root,
        env: { ...process.env, NODE_OPTIONS: "--import tsx", CODEGEN_OUT_DIR: out },
      });
      const fresh = filesUnder(out, out);
      expect(fresh).toContain("schema.graphql");
      expect(fresh).toContain(join("web", "generated", "graphql.ts"));
      expect(fresh).toContain(join("packages", "client", "src", "generated", "graphql.ts"));
      // No committed generated file that codegen no longer writes, and none missing.
      for (const folder of [join("web", "generated"), join("packages", "client", "src", "generated")]) {
        expect(filesUnder(join(root, folder), root)).toEqual(fresh.filter((file) => file.startsWith(folder)));
      }
      for (const file of fresh) {
        expect(readFileSync(join(root, file), "utf8"), `${file} is stale: run \`npm run codegen\``).toBe(
          readFileSync(join(out, file), "utf8"),
        );
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
