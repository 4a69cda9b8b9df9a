import { execFile } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { migrate, openDatabase, projectRoot, storedTime } from "../../src/db.js";
import { createDatabaseFrom, createTemplateDatabase, describePostgres } from "../helpers/postgres.js";
import { assertProperty } from "../helpers/property.js";

// Each case runs `prisma migrate deploy`: seconds each on a busy machine.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

/** The migration under test, which makes trigger names unique. */
const MIGRATION = "unique_trigger_names";
/** Names may have at most this many characters (src/triggers/store/config.ts). */
const MAX_NAME = 200;

type Provider = "sqlite" | "postgres";

/** The committed migrations of a provider, oldest first, and the index of {@link MIGRATION}. */
function migrations(provider: Provider): { names: string[]; index: number } {
  const names = readdirSync(join(projectRoot, "prisma/migrations", provider), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const index = names.findIndex((name) => name.endsWith(`_${MIGRATION}`));
  expect(index, `a ${provider} migration named *_${MIGRATION}`).toBeGreaterThan(0);
  return { names, index };
}

/** The committed migration just before {@link MIGRATION}. */
function previousMigration(provider: Provider): string {
  const { names, index } = migrations(provider);
  return names[index - 1]!;
}

/** The SQL of {@link MIGRATION}. */
function migrationSql(provider: Provider): string {
  const { names, index } = migrations(provider);
  return readFileSync(join(projectRoot, "prisma/migrations", provider, names[index]!, "migration.sql"), "utf8");
}

/**
 * Applies the committed migrations up to `last` (included) with `prisma migrate deploy`, through a
 * Prisma config of its own that points at a copy of just those; `migrate` applies the rest later.
 */
async function migrateUpTo(url: string, provider: Provider, last: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "realtime-migrations-"));
  try {
    const source = join(projectRoot, "prisma/migrations", provider);
    mkdirSync(join(dir, "migrations"));
    for (const name of readdirSync(source)) {
      if (name === "migration_lock.toml" || name <= last) cpSync(join(source, name), join(dir, "migrations", name), { recursive: true });
    }
    const config = join(dir, "prisma.config.ts");
    writeFileSync(
      config,
      [
        `import { join } from "node:path";`,
        `import base from ${JSON.stringify(join(projectRoot, "prisma.config.ts"))};`,
        `export default { ...base, schema: join(${JSON.stringify(projectRoot)}, base.schema!), migrations: { path: ${JSON.stringify(join(dir, "migrations"))} } };`,
        "",
      ].join("\n"),
    );
    const cli = createRequire(import.meta.url).resolve("prisma/build/index.js");
    await promisify(execFile)(process.execPath, [cli, "migrate", "deploy", "--config", config], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: url, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Row {
  readonly id: string;
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/**
 * The names the migration gives, as "Changing the database schema" in docs/development.md states the rule: in each
 * group of triggers sharing a name, the oldest by (createdAt, id) keeps it; the others, oldest first
 * and group by group (names in byte order), get the first free `<name> (n)`, n = 2, 3, ..., cut to
 * 200 characters, counting the names given before as taken.
 */
function expectedNames(rows: readonly Row[]): Record<string, string> {
  const bytes = (text: string) => Buffer.from(text, "utf8");
  const sorted = [...rows].sort(
    (a, b) => Buffer.compare(bytes(a.name), bytes(b.name)) || a.createdAt - b.createdAt || Buffer.compare(bytes(a.id), bytes(b.id)),
  );
  const taken = new Set(rows.map((row) => row.name));
  const names: Record<string, string> = Object.fromEntries(rows.map((row) => [row.id, row.name]));
  const numbered = (name: string, n: number) => `${name.slice(0, MAX_NAME - ` (${n})`.length)} (${n})`;
  sorted.forEach((row, index) => {
    if (index === 0 || sorted[index - 1]!.name !== row.name) return;
    let n = 2;
    while (taken.has(numbered(row.name, n))) n++;
    taken.add(numbered(row.name, n));
    names[row.id] = numbered(row.name, n);
  });
  return names;
}

const INSERT_COLUMNS = `"Trigger" ("id", "name", "tags", "actions", "channel", "stack", "createdAt", "updatedAt")`;

/** Inserts triggers as rows of the schema before the migration, then applies it; returns the names by id. */
async function migrateWith(url: string, provider: Provider, rows: readonly Row[]): Promise<Record<string, string>> {
  const db = await openDatabase(url);
  try {
    const postgres = provider === "postgres";
    const insert = postgres
      ? `INSERT INTO ${INSERT_COLUMNS} VALUES ($1, $2, '[]', '["MESSAGE"]', 'c', '[]', $3::timestamp, $3::timestamp)`
      : `INSERT INTO ${INSERT_COLUMNS} VALUES (?, ?, '[]', '["MESSAGE"]', 'c', '[]', ?, ?)`;
    for (const row of rows) {
      const time = storedTime(new Date(row.createdAt), postgres);
      await db.prisma.$executeRawUnsafe(insert, row.id, row.name, time, ...(postgres ? [] : [time]));
    }
  } finally {
    await db.close();
  }
  await migrate(url);
  const after = await openDatabase(url);
  try {
    const stored = await after.prisma.trigger.findMany({ select: { id: true, name: true } });
    // The unique index is there: a duplicate is refused.
    const duplicate = after.prisma.trigger.create({
      data: { id: "dup", name: stored[0]!.name, tags: [], actions: [], channel: "c", stack: [] },
    });
    await expect(duplicate).rejects.toMatchObject({ code: "P2002" });
    return Object.fromEntries(stored.map((row) => [row.id, row.name]));
  } finally {
    await after.close();
  }
}

const LONG = "x".repeat(MAX_NAME - 2);
const T = Date.parse("2026-11-01T00:00:00Z");

/** Duplicates of every kind the rule covers, and what becomes of them. */
const EXAMPLE: readonly (Row & { readonly renamed?: string })[] = [
  // Three "alert"s: the oldest keeps the name, a tie on createdAt goes by id, and the numbers taken
  // already ("alert (2)", "alert (3)") are skipped.
  { id: "a3", name: "alert", createdAt: T + 1000, renamed: "alert (5)" },
  { id: "a1", name: "alert", createdAt: T },
  { id: "a2", name: "alert", createdAt: T + 1000, renamed: "alert (4)" },
  { id: "a0", name: "alert (2)", createdAt: T + 5000 },
  // A duplicate of a numbered name gets a number of its own.
  { id: "b1", name: "alert (3)", createdAt: T + 3000 },
  { id: "b2", name: "alert (3)", createdAt: T + 4000, renamed: "alert (3) (2)" },
  // Two long names that differ only in their last characters: cut to 200, the second pair takes (3).
  { id: "l1", name: `${LONG}-1`, createdAt: T },
  { id: "l2", name: `${LONG}-1`, createdAt: T + 1000, renamed: `${LONG.slice(0, MAX_NAME - 4)} (2)` },
  { id: "l3", name: `${LONG}-2`, createdAt: T },
  { id: "l4", name: `${LONG}-2`, createdAt: T + 1000, renamed: `${LONG.slice(0, MAX_NAME - 4)} (3)` },
  // A name held once is left alone.
  { id: "c1", name: "calm", createdAt: T },
];

/** Trigger sets with many collisions: few names, numbered look-alikes, long names that cut alike, tied times. */
const rowsArbitrary = fc
  .array(
    fc.record({
      name: fc.constantFrom("a", "a (2)", "a (3)", "a (2) (2)", "b", `${LONG}-1`, `${LONG}-2`, `${LONG.slice(0, MAX_NAME - 4)} (2)`),
      createdAt: fc.integer({ min: 0, max: 3 }).map((seconds) => T + seconds * 1000),
    }),
    { minLength: 1, maxLength: 14 },
  )
  .map((rows) => rows.map((row, index) => ({ ...row, id: `t${String(index).padStart(2, "0")}` })));

/** The example's expected names by id. */
const exampleNames = () => Object.fromEntries(EXAMPLE.map((row) => [row.id, row.renamed ?? row.name]));

describe(`the ${MIGRATION} migration on SQLite`, () => {
  const dir = mkdtempSync(join(tmpdir(), "realtime-names-"));
  const template = join(dir, "template.db");
  let copies = 0;
  const copy = () => {
    const file = join(dir, `copy-${++copies}.db`);
    copyFileSync(template, file);
    return `file:${file}`;
  };
  beforeAll(() => migrateUpTo(`file:${template}`, "sqlite", previousMigration("sqlite")));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("renames duplicates as the rule says and adds the unique index", async () => {
    expect(expectedNames(EXAMPLE)).toEqual(exampleNames());
    expect(await migrateWith(copy(), "sqlite", EXAMPLE)).toEqual(exampleNames());
  });

  it("gives the names the rule gives, for any triggers (its SQL run as the migration tool runs it, then rolled back)", () => {
    const db = new Database(copy().slice("file:".length));
    const sql = migrationSql("sqlite");
    const insert = db.prepare(`INSERT INTO ${INSERT_COLUMNS} VALUES (?, ?, '[]', '["MESSAGE"]', 'c', '[]', ?, ?)`);
    try {
      assertProperty(
        fc.property(rowsArbitrary, (rows) => {
          db.exec("BEGIN");
          try {
            for (const row of rows) insert.run(row.id, row.name, storedTime(new Date(row.createdAt), false), storedTime(new Date(), false));
            db.exec(sql);
            const stored = db.prepare(`SELECT "id", "name" FROM "Trigger"`).all() as { id: string; name: string }[];
            expect(Object.fromEntries(stored.map((row) => [row.id, row.name]))).toEqual(expectedNames(rows));
          } finally {
            db.exec("ROLLBACK");
          }
        }),
        { numRuns: 200 },
      );
    } finally {
      db.close();
    }
  });
});

describePostgres(`the ${MIGRATION} migration on PostgreSQL`, () => {
  let template: Awaited<ReturnType<typeof createTemplateDatabase>>;
  const drops: (() => Promise<void>)[] = [];
  const copy = async () => {
    const database = await createDatabaseFrom(template.name);
    drops.push(database.drop);
    return database.url;
  };
  beforeAll(async () => {
    template = await createTemplateDatabase();
    await migrateUpTo(template.url, "postgres", previousMigration("postgres"));
  });
  afterAll(async () => {
    await Promise.all(drops.map((drop) => drop()));
    await template?.drop();
  });

  it("renames duplicates as the rule says (and as on SQLite) and adds the unique index", async () => {
    expect(await migrateWith(await copy(), "postgres", EXAMPLE)).toEqual(exampleNames());
  });

  it("gives the names the rule gives, for any triggers (its SQL run as the migration tool runs it, then rolled back)", async () => {
    const client = new pg.Client(await copy());
    await client.connect();
    const sql = migrationSql("postgres");
    try {
      await assertProperty(
        fc.asyncProperty(rowsArbitrary, async (rows) => {
          await client.query("BEGIN");
          try {
            for (const row of rows) {
              await client.query(`INSERT INTO ${INSERT_COLUMNS} VALUES ($1, $2, '[]', '["MESSAGE"]', 'c', '[]', $3, $3)`, [
                row.id,
                row.name,
                new Date(row.createdAt),
              ]);
            }
            await client.query(sql); // one query, as prisma/pg-migrate-adapter.ts runs migrations
            const { rows: stored } = await client.query<{ id: string; name: string }>(`SELECT "id", "name" FROM "Trigger"`);
            expect(Object.fromEntries(stored.map((row) => [row.id, row.name]))).toEqual(expectedNames(rows));
          } finally {
            await client.query("ROLLBACK");
          }
        }),
        { numRuns: 100 },
      );
    } finally {
      await client.end();
    }
  });
});
