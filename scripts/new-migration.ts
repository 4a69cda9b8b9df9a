/**
 * Authors the next migration for both providers from the change to `schema.prisma`:
 * `npm run db:migration NAME`. It diffs `prisma/migrations/schema.prisma` (the schema the latest
 * migrations were made from) against `schema.prisma` for SQLite, and their derived forms for
 * PostgreSQL; writes `prisma/migrations/{sqlite,postgres}/<UTC timestamp>_NAME/migration.sql`; then
 * updates that snapshot and the derived schema and regenerates both clients. No database is needed.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { derivePostgresSchema, POSTGRES_SCHEMA, SOURCE_SCHEMA } from "./derive-postgres-schema.js";

/** The copy of `schema.prisma` the latest migrations were made from, relative to the project root. */
export const MIGRATED_SCHEMA = "prisma/migrations/schema.prisma";

const SNAPSHOT_HEADER = `// ${SOURCE_SCHEMA} as of the latest migration in prisma/migrations/{sqlite,postgres}.
// Written by scripts/new-migration.ts, which diffs it against ${SOURCE_SCHEMA}; do not edit.
`;

const root = join(import.meta.dirname, "..");
const cli = createRequire(import.meta.url).resolve("prisma/build/index.js");

/**
 * Runs `prisma migrate diff` between two schema files and returns the SQL, or "" when they describe
 * the same database. The CLI opens prisma.config.ts's adapter even for this; an in-memory SQLite
 * database keeps it away from live databases and from needing ./data.
 */
export function diffSchemas(from: string, to: string): string {
  const env = { ...process.env, DATABASE_URL: "file::memory:" };
  const args = ["migrate", "diff", "--from-schema-datamodel", from, "--to-schema-datamodel", to, "--script", "--exit-code"];
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, env, encoding: "utf8" });
  if (result.status === 0) return "";
  if (result.status === 2) return result.stdout;
  throw new Error(`prisma migrate diff failed: ${result.stderr || result.stdout}`);
}

function latestMigration(provider: "sqlite" | "postgres"): string {
  const names = readdirSync(join(root, "prisma/migrations", provider), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return names.at(-1) ?? "";
}

function main(name: string | undefined): void {
  if (!name || !/^[a-z0-9_]+$/.test(name)) throw new Error("usage: npm run db:migration NAME (lowercase letters, digits, _)");
  const folder = `${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}_${name}`;
  for (const provider of ["sqlite", "postgres"] as const) {
    if (folder <= latestMigration(provider)) throw new Error(`${folder} would not sort after ${latestMigration(provider)}`);
  }

  const current = readFileSync(join(root, SOURCE_SCHEMA), "utf8");
  writeFileSync(join(root, POSTGRES_SCHEMA), derivePostgresSchema(current));
  const tmp = mkdtempSync(join(tmpdir(), "new-migration-"));
  let sql: Record<"sqlite" | "postgres", string>;
  try {
    const previous = readFileSync(join(root, MIGRATED_SCHEMA), "utf8");
    writeFileSync(join(tmp, "sqlite.prisma"), previous);
    writeFileSync(join(tmp, "postgres.prisma"), derivePostgresSchema(previous));
    sql = {
      sqlite: diffSchemas(join(tmp, "sqlite.prisma"), SOURCE_SCHEMA),
      postgres: diffSchemas(join(tmp, "postgres.prisma"), POSTGRES_SCHEMA),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!sql.sqlite && !sql.postgres) throw new Error(`${SOURCE_SCHEMA} has no database change since the latest migration`);

  for (const provider of ["sqlite", "postgres"] as const) {
    const dir = join(root, "prisma/migrations", provider, folder);
    mkdirSync(dir);
    writeFileSync(join(dir, "migration.sql"), sql[provider] || "-- No change for this provider.\n");
    console.log(`wrote prisma/migrations/${provider}/${folder}/migration.sql`);
  }
  writeFileSync(join(root, MIGRATED_SCHEMA), SNAPSHOT_HEADER + current);
  const generate = spawnSync("npm", ["run", "db:generate"], { cwd: root, stdio: "inherit" });
  if (generate.status !== 0) throw new Error("npm run db:generate failed");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    main(process.argv[2]);
  } catch (error) {
    console.error((error as Error).message);
    process.exitCode = 1;
  }
}
