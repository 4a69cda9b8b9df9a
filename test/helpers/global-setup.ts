import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { migrate } from "../../src/db.js";
import { createTemplateDatabase, POSTGRES_BASE_URL, POSTGRES_REQUIRED, postgresReachable } from "./postgres.js";
import { REDIS_BASE_URL, REDIS_REQUIRED, redisReachable } from "./redis.js";

/**
 * Migrates one SQLite template database per run; test servers start from copies of it, so each
 * gets a fresh database without paying for `prisma migrate deploy` every time. Checks once whether
 * PostgreSQL and Redis are there for the suites that need them, and fails the run when it is required but absent.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await postgresReachable();
  if (!postgres && POSTGRES_REQUIRED) {
    throw new Error(`PostgreSQL is required (TEST_DATABASE=postgres or TEST_POSTGRES_URL) but unreachable at ${POSTGRES_BASE_URL}`);
  }
  if (!postgres) console.warn(`PostgreSQL unreachable at ${POSTGRES_BASE_URL}: the suites that need it are skipped`);
  project.provide("postgresReachable", postgres);
  const redis = await redisReachable();
  if (!redis && REDIS_REQUIRED)
    throw new Error(`Redis is required (TEST_REDIS=required or TEST_REDIS_URL) but unreachable at ${REDIS_BASE_URL}`);
  if (!redis) console.warn(`Redis unreachable at ${REDIS_BASE_URL}: the suites that need it are skipped`);
  project.provide("redisReachable", redis);

  const dir = mkdtempSync(join(tmpdir(), "realtime-template-"));
  const file = join(dir, "template.db");
  await migrate(`file:${file}`);
  project.provide("sqliteTemplate", file);
  let dropTemplate = async () => {};
  if (postgres) {
    const template = await createTemplateDatabase();
    await migrate(template.url);
    project.provide("postgresTemplate", template.name);
    dropTemplate = template.drop;
  }
  return async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropTemplate();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    sqliteTemplate: string;
    postgresReachable: boolean;
    redisReachable: boolean;
    /** A migrated database to copy, when PostgreSQL is reachable. */
    postgresTemplate?: string;
  }
}
