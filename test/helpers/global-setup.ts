import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { migrate } from "../../src/db.js";
import { POSTGRES_BASE_URL, POSTGRES_REQUIRED, postgresReachable } from "./postgres.js";

/**
 * Migrates one SQLite template database per run; test servers start from copies of it, so each
 * gets a fresh database without paying for `prisma migrate deploy` every time. Checks once whether
 * PostgreSQL is there for the suites that need it, and fails the run when it is required but absent.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const postgres = await postgresReachable();
  if (!postgres && POSTGRES_REQUIRED) {
    throw new Error(`PostgreSQL is required (TEST_DATABASE=postgres or TEST_POSTGRES_URL) but unreachable at ${POSTGRES_BASE_URL}`);
  }
  if (!postgres) console.warn(`PostgreSQL unreachable at ${POSTGRES_BASE_URL}: the suites that need it are skipped`);
  project.provide("postgresReachable", postgres);

  const dir = mkdtempSync(join(tmpdir(), "realtime-template-"));
  const file = join(dir, "template.db");
  await migrate(`file:${file}`);
  project.provide("sqliteTemplate", file);
  return () => rmSync(dir, { recursive: true, force: true });
}

declare module "vitest" {
  export interface ProvidedContext {
    sqliteTemplate: string;
    postgresReachable: boolean;
  }
}
