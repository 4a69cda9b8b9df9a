import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { derivePostgresSchema, POSTGRES_SCHEMA, SOURCE_SCHEMA } from "../../scripts/derive-postgres-schema.js";
import { diffSchemas, MIGRATED_SCHEMA } from "../../scripts/new-migration.js";
import { projectRoot } from "../../src/db.js";
import { createTestSchema, describePostgres } from "../helpers/postgres.js";

const read = (path: string) => readFileSync(join(projectRoot, path), "utf8");

describe("database schema drift", () => {
  it(`${POSTGRES_SCHEMA} is what scripts/derive-postgres-schema.ts derives from ${SOURCE_SCHEMA} (fix: npm run db:derive)`, () => {
    expect(read(POSTGRES_SCHEMA)).toBe(derivePostgresSchema(read(SOURCE_SCHEMA)));
  });

  it(`${SOURCE_SCHEMA} has no database change without a migration (fix: npm run db:migration NAME)`, () => {
    expect(diffSchemas(MIGRATED_SCHEMA, SOURCE_SCHEMA)).toBe("");
  });
});

describePostgres("database schema drift on PostgreSQL", () => {
  it(`the committed PostgreSQL migrations produce ${POSTGRES_SCHEMA}`, async () => {
    // Replays prisma/migrations/postgres in a shadow database the tool creates and drops, and compares.
    const cli = createRequire(import.meta.url).resolve("prisma/build/index.js");
    const args = [
      "migrate",
      "diff",
      "--from-migrations",
      "prisma/migrations/postgres",
      "--to-schema-datamodel",
      POSTGRES_SCHEMA,
      "--exit-code",
    ];
    const schema = await createTestSchema();
    const env = { ...process.env, DATABASE_URL: schema.url };
    const result = await promisify(execFile)(process.execPath, [cli, ...args], { cwd: projectRoot, env })
      .then(
        ({ stdout }) => ({ code: 0, stdout }),
        (error: { code?: number; stdout?: string; stderr?: string }) => ({
          code: error.code,
          stdout: `${error.stdout ?? ""}${error.stderr ?? ""}`,
        }),
      )
      .finally(schema.drop);
    expect(result, "prisma migrate diff --from-migrations (exit 2: the migrations differ from the schema)").toEqual({
      code: 0,
      stdout: expect.stringContaining("No difference detected"),
    });
  });
});
