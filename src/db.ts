import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { AppError, ErrorCode } from "./errors.js";
import { PrismaClient as PostgresClient } from "./generated/postgres/client.js";
import { PrismaClient } from "./generated/sqlite/client.js";

/** The Prisma client type shared by both providers (their generated APIs are identical). */
export type Prisma = InstanceType<typeof PrismaClient>;

/** The client inside `prisma.$transaction(async (tx) => ...)`. */
export type PrismaTransaction = Omit<Prisma, "$connect" | "$disconnect" | "$on" | "$transaction" | "$extends">;

/** A change to stored configuration, checked and ready to be written as part of a transaction. */
export interface StagedChange {
  /** Writes the change; throws (which rolls the whole transaction back) when it can no longer be made. */
  write(tx: PrismaTransaction): Promise<void>;
  /** Makes the change visible in memory and tells the listeners; only once the transaction committed. */
  committed(): void;
}

/**
 * Writes changes in one transaction, all or none, then makes them visible, in order. Nothing is
 * visible (in memory, to listeners, to other instances) before the transaction commits.
 */
export async function writeTogether(prisma: Prisma, changes: readonly StagedChange[], options: { timeout?: number } = {}): Promise<void> {
  await prisma.$transaction(
    async (tx) => {
      for (const change of changes) await change.write(tx);
    },
    { timeout: options.timeout },
  );
  for (const change of changes) change.committed();
}

/** An open database: the Prisma client plus what the server needs to run and report on it. */
export interface Database {
  readonly prisma: Prisma;
  readonly provider: "sqlite" | "postgresql";
  /**
   * What lies beneath Prisma, for the few statements run too often to pay Prisma's cost per query
   * (the state steps of triggers, see triggers/state/statements.ts): PostgreSQL's connection pool,
   * which Prisma queries through as well, or the SQLite file.
   */
  readonly driver: { readonly provider: "postgresql"; readonly pool: pg.Pool } | { readonly provider: "sqlite"; readonly file: string };
  /** True when a trivial query succeeds. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Prisma's codes for a database it cannot reach, or that dropped or timed out the connection. */
const UNREACHABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017"]);
/** The same, as the driver adapter names them (raw queries report these under P2010, "raw query failed"). */
const UNREACHABLE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout"]);

/** PostgreSQL's codes for a server shutting down or starting up (57P01 to 57P03). */
const POSTGRES_UNAVAILABLE_CODES = new Set(["57P01", "57P02", "57P03"]);

/** True for PostgreSQL's connection error classes: 08 (connection exception) and 57P01-3 (shutting down or starting). */
function isPostgresUnavailableCode(code: string): boolean {
  return POSTGRES_UNAVAILABLE_CODES.has(code) || code.startsWith("08");
}

/**
 * True when an error means the database could not be reached (down, restarting, too slow), as
 * opposed to a query that failed: such errors go away by themselves and are worth retrying.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { name, code, meta } = error as {
    name?: unknown;
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
  };
  if (name === "PrismaClientInitializationError" || (typeof code === "string" && UNREACHABLE_CODES.has(code))) return true;
  const cause = meta?.driverAdapterError?.cause;
  if (typeof cause?.kind === "string" && UNREACHABLE_KINDS.has(cause.kind)) return true;
  // A PostgreSQL server that is starting up or shutting down answers with its own code, which the adapter passes on.
  return cause?.kind === "postgres" && typeof cause.originalCode === "string" && isPostgresUnavailableCode(cause.originalCode);
}

/** Socket errors, and the codes of a PostgreSQL server that cannot serve the connection. */
const DRIVER_UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"]);

/**
 * True when an error of the database driver itself (node-postgres, used without Prisma for trigger
 * state) means the database could not be reached, like {@link isDatabaseUnreachable} for Prisma's.
 */
export function isDriverUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (DRIVER_UNREACHABLE_CODES.has(code) || isPostgresUnavailableCode(code))) return true;
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(error.message);
}

/** Prisma's codes for a connection lost, or timed out, while a statement was under way. */
const LOST_DURING_CODES = new Set(["P1008", "P1017"]);
const LOST_DURING_KINDS = new Set(["ConnectionClosed", "SocketTimeout"]);

/**
 * True when the database connection was lost (or timed out) while a statement was under way, as
 * opposed to one that could not be opened: a write that fails so may have committed or not.
 */
export function isLostDuringStatement(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, meta } = error as { code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } };
  if (typeof code === "string" && LOST_DURING_CODES.has(code)) return true;
  const kind = meta?.driverAdapterError?.cause?.kind;
  return typeof kind === "string" && LOST_DURING_KINDS.has(kind);
}

/**
 * Runs a write whose outcome a client is told. When the connection is lost while it is under way, the
 * database may have committed it or not, and nobody can tell until it answers again: that is
 * refused as `SERVICE_UNAVAILABLE` with `extensions.outcome: "UNKNOWN"`, so the client knows that
 * what it sent may have been stored (it was not delivered live). Other failures pass through.
 */
export async function writeWithKnownOutcome<T>(write: () => Promise<T>, what: string): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!isLostDuringStatement(error)) throw error;
    throw new AppError(
      ErrorCode.ServiceUnavailable,
      `The database connection was lost while ${what} was being stored: it may have been stored (it was not delivered live); try again shortly`,
      { outcome: "UNKNOWN" },
    );
  }
}

/**
 * True when an error is a unique constraint violation, on `field` when given (Prisma's `P2002`; the
 * driver adapters name the fields in `meta.driverAdapterError`).
 */
export function isUniqueViolation(error: unknown, field?: string): boolean {
  if (typeof error !== "object" || error === null || (error as { code?: unknown }).code !== "P2002") return false;
  if (field === undefined) return true;
  const { meta } = error as { meta?: { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown } } } } };
  const fields = meta?.driverAdapterError?.cause?.constraint?.fields ?? meta?.target;
  return Array.isArray(fields) ? fields.includes(field) : typeof fields === "string" && fields.includes(field);
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

type SqliteAdapter = Awaited<ReturnType<PrismaBetterSQLite3["connect"]>>;

/**
 * Holds back queries made outside a transaction while one is open or waiting (see
 * {@link ExclusiveTransactionsSqlite}), and transactions behind one another.
 */
class TransactionGate {
  private last: Promise<void> = Promise.resolve();
  /** Transactions open or waiting for the ones before them. */
  private held = 0;

  /** Waits for the transactions started before, then holds the gate until the returned function is called. */
  async enter(): Promise<() => void> {
    const previous = this.last;
    let leave!: () => void;
    this.last = new Promise((resolve) => (leave = resolve));
    this.held++;
    await previous;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.held--;
      leave();
    };
  }

  /** Resolves once no transaction is open or waiting. */
  async idle(): Promise<void> {
    while (this.held > 0) await this.last;
  }

  get open(): boolean {
    return this.held > 0;
  }
}

/**
 * The SQLite driver adapter with transactions that nothing else runs inside. Upstream runs every
 * query on one connection and serializes transactions only with one another, so a query made outside
 * an open interactive transaction runs inside it, and is undone with it when it rolls back: a write
 * acknowledged to a client, lost. Here queries outside a transaction wait until it ends (a writer
 * waits for the open write transaction on SQLite anyway). Code inside a transaction must use the
 * transaction's client only, or it waits for itself until the transaction times out.
 */
class ExclusiveTransactionsSqlite extends PrismaBetterSQLite3 {
  override async connect(): Promise<SqliteAdapter> {
    const adapter = await super.connect();
    const gate = new TransactionGate();
    const { queryRaw, executeRaw, executeScript, startTransaction } = adapter;
    // Each checks the gate and starts its statement in one synchronous step (better-sqlite3 is synchronous).
    adapter.queryRaw = async (query) => {
      if (gate.open) await gate.idle();
      return queryRaw.call(adapter, query);
    };
    adapter.executeRaw = async (query) => {
      if (gate.open) await gate.idle();
      return executeRaw.call(adapter, query);
    };
    adapter.executeScript = async (script) => {
      if (gate.open) await gate.idle();
      return executeScript.call(adapter, script);
    };
    adapter.startTransaction = async (isolationLevel) => {
      const leave = await gate.enter();
      try {
        const transaction = await startTransaction.call(adapter, isolationLevel);
        // Prisma runs COMMIT or ROLLBACK through the transaction, then calls one of these.
        const { commit, rollback } = transaction;
        transaction.commit = () => commit.call(transaction).finally(leave);
        transaction.rollback = () => rollback.call(transaction).finally(leave);
        return transaction;
      } catch (error) {
        leave();
        throw error;
      }
    };
    return adapter;
  }
}

/**
 * Opens the database named by `url` (see {@link resolveDatabaseUrl}): SQLite for `file:` URLs, PostgreSQL
 * for `postgres://` ones (see {@link postgresConfig}). SQLite runs in WAL mode, which keeps the file
 * consistent if the process is killed at any point.
 */
export async function openDatabase(url: string): Promise<Database> {
  const provider = providerOf(url);
  let prisma: Prisma;
  let driver: Database["driver"];
  if (provider === "postgresql") {
    const { pool: config, schema } = postgresConfig(url);
    const pool = new pg.Pool(config);
    // An idle connection that drops (a restart of PostgreSQL) is replaced; the next query on it reports the failure.
    pool.on("error", () => {});
    driver = { provider, pool };
    // The two generated clients have the same API; the shared type is the SQLite one's.
    prisma = new PostgresClient({ adapter: new PrismaPg(pool, { schema }) }) as unknown as Prisma;
  } else {
    driver = { provider, file: url.slice("file:".length) };
    prisma = new PrismaClient({ adapter: new ExclusiveTransactionsSqlite({ url }) });
    await prisma.$queryRawUnsafe("PRAGMA journal_mode = WAL");
    await prisma.$executeRawUnsafe("PRAGMA busy_timeout = 5000");
  }
  return {
    prisma,
    provider,
    driver,
    async ping() {
      try {
        await prisma.$queryRawUnsafe("SELECT 1");
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await prisma.$disconnect();
      if (driver.provider === "postgresql" && !driver.pool.ended) await driver.pool.end();
    },
  };
}
