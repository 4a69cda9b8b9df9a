import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { migrate } from "../../src/db.js";

/**
 * Migrates one SQLite template database per run; test servers start from copies of it, so each
 * gets a fresh database without paying for `prisma migrate deploy` every time.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), "realtime-template-"));
  const file = join(dir, "template.db");
  await migrate(`file:${file}`);
  project.provide("sqliteTemplate", file);
  return () => rmSync(dir, { recursive: true, force: true });
}

declare module "vitest" {
  export interface ProvidedContext {
    sqliteTemplate: string;
  }
}
