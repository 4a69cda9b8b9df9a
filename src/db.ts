import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import type pg from "pg";
import { PrismaClient as PostgresClient } from "./generated/postgres/client.js";
import { PrismaClient } from "./generated/sqlite/client.js";

/** The Prisma client type shared by both providers (their generated APIs are identical). */
export type Prisma = InstanceType<typeof PrismaClient>;

/** An open database: the Prisma client plus what the server needs to run and report on it. */
export interface Database {
  readonly prisma: Prisma;
  readonly provider: "sqlite" | "postgresql";
  /** True when a trivial query succeeds. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Prisma's codes for a database it cannot reach, or that dropped or timed out the connection. */
const UNREACHABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017"]);
/** The same, as the driver adapter names them (raw queries report these under P2010, "raw query failed"). */
const UNREACHABLE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout"]);

/**
 * True when an error means the database could not be reached (down, restarting, too slow), as
 * opposed to a query that failed: such errors go away by themselves and are worth retrying.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { name, code, meta } = error as { name?: unknown; code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } };
  if (name === "PrismaClientInitializationError" || (typeof code === "string" && UNREACHABLE_CODES.has(code))) return true;
  const kind = meta?.driverAdapterError?.cause?.kind;
  return typeof kind === "string" && UNREACHABLE_KINDS.has(kind);
}

/** The folder holding package.json, found from this module's location (works from src/ and dist/). */
export const projectRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${import.meta.url}`);
    dir = parent;
  }
  return dir;
})();

/** Access for the data folder and the folders the server creates: the owner only. */
const OWNER_ONLY_DIR = 0o700;
/** Access for the SQLite database and its companion files: the owner only (they hold trigger stacks and history). */
const OWNER_ONLY_FILE = 0o600;
/** The files SQLite keeps next to a database: write-ahead log, shared memory index, rollback journal. */
const SQLITE_COMPANIONS = ["-wal", "-shm", "-journal"];

/** Makes the data folder accessible to its owner only, when it exists (it is created on demand, owner-only too). */
export function secureDataDir(dataDir: string): void {
  if (existsSync(dataDir)) chmodSync(dataDir, OWNER_ONLY_DIR);
}

/**
 * Resolves the database URL, making SQLite paths absolute and their folder present (created
 * owner-only). The SQLite file is created empty if missing, and it and its companion files are
 * made owner-only before anything opens them: SQLite gives the files it creates later the
 * database file's permissions.
 */
export function resolveDatabaseUrl(databaseUrl: string | undefined, dataDir: string): string {
  const url = databaseUrl ?? `file:${join(dataDir, "realtime.db")}`;
  if (!url.startsWith("file:")) return url;
  const file = resolve(url.slice("file:".length));
  mkdirSync(dirname(file), { recursive: true, mode: OWNER_ONLY_DIR });
  if (!existsSync(file)) writeFileSync(file, "", { mode: OWNER_ONLY_FILE, flag: "a" }); // an empty file is an empty database
  for (const path of [file, ...SQLITE_COMPANIONS.map((suffix) => file + suffix)]) {
    if (existsSync(path)) chmodSync(path, OWNER_ONLY_FILE);
  }
  return `file:${file}`;
}

function providerOf(url: string): Database["provider"] {
  return url.startsWith("file:") ? "sqlite" : "postgresql";
}

/**
 * Splits a `postgres://` URL into a node-postgres pool config and the Prisma schema it names with
 * `?schema=NAME` (Prisma's convention; default `public`). node-postgres does not know `schema`, so it
 * becomes the connection's `search_path`: raw SQL and migration scripts then resolve to it as well.
 */
export function postgresConfig(url: string): { pool: pg.PoolConfig & { connectionString: string }; schema: string } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get("schema") ?? "public";
  if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(schema)) throw new Error(`Unsupported schema name in DATABASE_URL: ${schema}`);
  parsed.searchParams.delete("schema");
  return { pool: { connectionString: parsed.href, options: `-c search_path="${schema}"` }, schema };
}

function migrationsDir(provider: Database["provider"]): string {
  return join(projectRoot, "prisma", "migrations", provider === "postgresql" ? "postgres" : "sqlite");
}

/** Names of the committed migrations for a provider, oldest first. */
function committedMigrations(provider: Database["provider"]): string[] {
  return readdirSync(migrationsDir(provider), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/**
 * Applies pending committed migrations with `prisma migrate deploy` (which takes the migration lock,
 * so several instances starting at once are safe). Skips the CLI when every committed migration is
 * already recorded as finished, which keeps restarts fast.
 */
export async function migrate(url: string): Promise<void> {
  // Look with a short-lived connection, closed before the CLI runs: SQLite allows one writer.
  const db = await openDatabase(url);
  let applied: Set<string>;
  try {
    applied = await appliedMigrations(db);
  } finally {
    await db.close();
  }
  const pending = committedMigrations(db.provider).filter((name) => !applied.has(name));
  if (pending.length === 0) return;
  const cli = createRequire(import.meta.url).resolve("prisma/build/index.js");
  try {
    await promisify(execFile)(process.execPath, [cli, "migrate", "deploy"], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: url, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
    });
  } catch (error) {
    const output = (error as { stdout?: string; stderr?: string }).stderr || (error as { stdout?: string }).stdout;
    throw new Error(`Database migration failed: ${String(output ?? error).trim()}`);
  }
}

async function appliedMigrations(db: Database): Promise<Set<string>> {
  // Unqualified: on PostgreSQL the search_path is the `?schema=` schema (see postgresConfig).
  try {
    const rows = await db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
      `SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    return new Set(rows.map((row) => row.migration_name));
  } catch {
    return new Set(); // no migrations table yet: a new database
  }
}

/** A time as Prisma stores it, for raw SQL: ISO text on SQLite (so that times sort), UTC on PostgreSQL. */
export function storedTime(time: Date, postgres: boolean): string {
  return postgres ? time.toISOString() : time.toISOString().replace("Z", "+00:00");
}

/**
 * Opens the database named by `url` (see {@link resolveDatabaseUrl}): SQLite for `file:` URLs, PostgreSQL
 * for `postgres://` ones (see {@link postgresConfig}). SQLite runs in WAL mode, which keeps the file
 * consistent if the process is killed at any point.
 */
export async function openDatabase(url: string): Promise<Database> {
  const provider = providerOf(url);
  let prisma: Prisma;
  if (provider === "postgresql") {
    const { pool, schema } = postgresConfig(url);
    // The two generated clients have the same API; the shared type is the SQLite one's.
    prisma = new PostgresClient({ adapter: new PrismaPg(pool, { schema }) }) as unknown as Prisma;
  } else {
    prisma = new PrismaClient({ adapter: new PrismaBetterSQLite3({ url }) });
    await prisma.$queryRawUnsafe("PRAGMA journal_mode = WAL");
    await prisma.$executeRawUnsafe("PRAGMA busy_timeout = 5000");
  }
  return {
    prisma,
    provider,
    async ping() {
      try {
        await prisma.$queryRawUnsafe("SELECT 1");
        return true;
      } catch {
        return false;
      }
    },
    close: () => prisma.$disconnect(),
  };
}
