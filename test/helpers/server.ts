import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, inject } from "vitest";
import { parseEnv } from "../../src/env.js";
import { createLogger } from "../../src/logger.js";
import { type App, createApp } from "../../src/server.js";
import { createDatabaseFrom, createTestSchema } from "./postgres.js";

/**
 * Which database {@link startServer} gives a server when the test does not choose:
 * `TEST_SERVER_DATABASE=postgres` runs the suites on PostgreSQL (the `postgres` test project does).
 */
export const SERVER_DATABASE = process.env.TEST_SERVER_DATABASE === "postgres" ? "postgres" : "sqlite";

/**
 * Every test client connects from 127.0.0.1, so the per-address limits would treat a test file as
 * one busy host: they are raised here, and the tests of those limits set their own.
 */
export const LOOPBACK_LIMITS = {
  MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
  MAX_ADDRESS_JOINS_PER_SECOND: "1000000",
  MAX_CONNECTIONS_PER_ADDRESS: "1000000",
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000000",
};

/** The admin token test servers use. */
export const ADMIN_TOKEN = "test-admin-token-0123456789";

/** A server listening on a free loopback port, with its own data folder. */
export interface TestServer {
  readonly app: App;
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly dataDir: string;
  /** Stops the server; the data folder stays until the file's tests end. */
  stop(): Promise<void>;
}

const started = new Set<TestServer>();
const dataDirs = new Set<string>();
const schemaDrops = new Set<() => Promise<void>>();
/** In the postgres project, the database that belongs with each data folder (a restart reuses it). */
const databaseByDataDir = new Map<string, string>();

async function defaultDatabaseUrl(dataDir: string): Promise<string | undefined> {
  if (SERVER_DATABASE === "sqlite") return undefined;
  let url = databaseByDataDir.get(dataDir);
  if (!url) {
    const template = inject("postgresTemplate");
    if (!template) throw new Error("TEST_SERVER_DATABASE=postgres, but PostgreSQL is unreachable");
    const copy = await createDatabaseFrom(template);
    schemaDrops.add(copy.drop);
    url = copy.url;
    databaseByDataDir.set(dataDir, url);
  }
  return url;
}

afterAll(async () => {
  await Promise.all([...started].map((server) => server.stop()));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  await Promise.all([...schemaDrops].map((drop) => drop()));
});

/** Makes a fresh data folder holding a migrated copy of the template database. */
export function freshDataDir(options: { migrated?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "realtime-test-"));
  dataDirs.add(dir);
  if (options.migrated !== false) copyFileSync(inject("sqliteTemplate"), join(dir, "realtime.db"));
  return dir;
}

/**
 * Makes an empty PostgreSQL schema of this run's own and returns its `DATABASE_URL`
 * (`...?schema=t_<random>`); pass it to {@link startServer} as `{ DATABASE_URL }`. The schema is
 * dropped after the file's tests, once its servers have stopped.
 */
export async function freshPostgresUrl(): Promise<string> {
  const { url, drop } = await createTestSchema();
  schemaDrops.add(drop);
  return url;
}

/**
 * Starts a server on 127.0.0.1 and a free port. `env` overrides settings (`DATABASE_URL` picks the
 * database, e.g. {@link freshPostgresUrl}; SQLite in the data folder otherwise); the data folder
 * defaults to a fresh one. Every server started is stopped after the test file.
 */
export async function startServer(env: Record<string, string> = {}, dataDir = freshDataDir()): Promise<TestServer> {
  const DATABASE_URL = env.DATABASE_URL ?? (await defaultDatabaseUrl(dataDir));
  const settings = parseEnv({
    DATA_DIR: dataDir,
    ADMIN_TOKEN,
    LOG_LEVEL: "silent",
    ...LOOPBACK_LIMITS,
    ...(DATABASE_URL ? { DATABASE_URL } : {}),
    ...env,
  });
  const app = await createApp(settings, createLogger(settings.LOG_LEVEL));
  const { port } = await app.start(0, "127.0.0.1");
  const server: TestServer = {
    app,
    dataDir,
    httpUrl: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    stop: async () => {
      started.delete(server);
      await app.stop();
    },
  };
  started.add(server);
  return server;
}
