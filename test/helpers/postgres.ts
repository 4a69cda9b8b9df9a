import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, inject } from "vitest";

/**
 * The database test runs make their schemas in: `TEST_POSTGRES_URL`, else the local server's `test`
 * database. Each run works in schemas of its own (see {@link createTestSchema}), never in `public`.
 */
export const POSTGRES_BASE_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * True when the PostgreSQL suites must run: `TEST_DATABASE=postgres` (CI sets it) or an explicit
 * `TEST_POSTGRES_URL`. Otherwise they run when {@link POSTGRES_BASE_URL} answers and are skipped, by
 * name, when it does not.
 */
export const POSTGRES_REQUIRED = process.env.TEST_DATABASE === "postgres" || process.env.TEST_POSTGRES_URL !== undefined;

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Whether {@link POSTGRES_BASE_URL} accepts a connection and a query. */
export async function postgresReachable(): Promise<boolean> {
  try {
    await withClient(POSTGRES_BASE_URL, (client) => client.query("SELECT 1"));
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates an empty schema `t_<random>` in {@link POSTGRES_BASE_URL}'s database and returns its
 * Prisma-style URL (`...?schema=t_<random>`) with a function that drops it and everything in it.
 */
export async function createTestSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString("hex")}`;
  await withClient(POSTGRES_BASE_URL, (client) => client.query(`CREATE SCHEMA "${schema}"`));
  const url = new URL(POSTGRES_BASE_URL);
  url.searchParams.set("schema", schema);
  return {
    url: url.href,
    drop: () => withClient(POSTGRES_BASE_URL, (client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).then(() => {}),
  };
}

/**
 * `describe` for suites that need PostgreSQL. When the global setup found it unreachable (and not
 * required), the suite is skipped and named in a warning.
 */
export function describePostgres(name: string, suite: () => void): void {
  const reachable = inject("postgresReachable");
  if (!reachable) console.warn(`skipped, PostgreSQL unreachable at ${POSTGRES_BASE_URL}: ${name}`);
  describe.skipIf(!reachable)(name, suite);
}

/** A database's URL in the same server as {@link POSTGRES_BASE_URL}. */
function databaseUrl(name: string): string {
  const url = new URL(POSTGRES_BASE_URL);
  url.pathname = `/${name}`;
  url.search = "";
  return url.href;
}

/**
 * Creates an empty database `tmpl_<random>` for migrating once per run; copies of it (see
 * {@link createDatabaseFrom}) give each test server a migrated database in a fraction of the time.
 */
export async function createTemplateDatabase(): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `tmpl_${randomBytes(6).toString("hex")}`;
  await withClient(POSTGRES_BASE_URL, (client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: databaseUrl(name),
    drop: () => withClient(POSTGRES_BASE_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

/** Creates database `t_<random>` as a copy of a (migrated) template database and returns its URL. */
export async function createDatabaseFrom(template: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `t_${randomBytes(6).toString("hex")}`;
  await withClient(POSTGRES_BASE_URL, (client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  return {
    url: databaseUrl(name),
    drop: () => withClient(POSTGRES_BASE_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

/** A PostgreSQL server of a test's own, which the test may stop and start again. */
export interface PrivatePostgres {
  /** The `postgres` database of this server. */
  readonly url: string;
  /** Stops the server at once, as a crash would (`pg_ctl stop -m immediate`). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

const run = (command: string, args: string[]) =>
  new Promise<void>((resolve, reject) => {
    execFile(command, args, (error, _stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(" ")}: ${stderr || error.message}`)) : resolve(),
    );
  });

/**
 * Whether this machine can run a {@link startPrivatePostgres} server: PostgreSQL's `initdb` and
 * `pg_ctl` on the PATH and, when the tests run as root (which PostgreSQL refuses), `runuser` and a
 * `postgres` user to run them as. Returns the reason when it cannot.
 */
export async function privatePostgresUnavailable(): Promise<string | null> {
  try {
    await run("initdb", ["--version"]);
    await run("pg_ctl", ["--version"]);
  } catch {
    return "PostgreSQL's initdb and pg_ctl are not on the PATH";
  }
  if (process.getuid?.() !== 0) return null;
  try {
    await run("runuser", ["-u", "postgres", "--", "true"]);
    return null;
  } catch {
    return "running as root without a postgres user to run PostgreSQL as";
  }
}

/**
 * Starts a PostgreSQL server of the test's own: `initdb` in a temporary folder, listening on a free
 * port of 127.0.0.1 only, with trust authentication and without fsync (its data is thrown away).
 */
export async function startPrivatePostgres(port: number): Promise<PrivatePostgres> {
  const folder = mkdtempSync(join(tmpdir(), "realtime-pg-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot)
    chownSync(folder, Number(execFileSync("id", ["-u", "postgres"]).toString()), Number(execFileSync("id", ["-g", "postgres"]).toString()));
  const pgRun = (command: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", command, ...args]) : run(command, args);
  const data = join(folder, "data");
  await pgRun("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const start = () =>
    pgRun("pg_ctl", [
      "-D",
      data,
      "-l",
      join(folder, "log"),
      "-w",
      "-o",
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${folder} -c fsync=off`,
      "start",
    ]);
  const stop = () => pgRun("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    destroy: async () => {
      await stop().catch(() => {});
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
