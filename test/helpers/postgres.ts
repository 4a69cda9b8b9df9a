import { randomBytes } from "node:crypto";
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
