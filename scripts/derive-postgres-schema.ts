/**
 * Derives the PostgreSQL Prisma schema from the one hand-edited schema, `schema.prisma` (SQLite), and
 * writes it to `prisma/postgres/schema.prisma`. Run with `npm run db:derive`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** The hand-edited (SQLite) schema, relative to the project root. */
export const SOURCE_SCHEMA = "schema.prisma";
/** The derived PostgreSQL schema, relative to the project root. */
export const POSTGRES_SCHEMA = "prisma/postgres/schema.prisma";

const HEADER = `// GENERATED from ../../${SOURCE_SCHEMA} by scripts/derive-postgres-schema.ts (npm run db:derive).
// Do not edit: change ${SOURCE_SCHEMA}, then run \`npm run db:migration NAME\`.
`;

/** Replaces exactly one match of `pattern` in `text`, failing loudly when the source's shape changed. */
function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`));
  if (matches?.length !== 1) throw new Error(`${SOURCE_SCHEMA}: expected one match of ${pattern}, found ${matches?.length ?? 0}`);
  return text.replace(pattern, replacement);
}

/**
 * The PostgreSQL schema for a SQLite schema's text: the same models and generator settings with the
 * provider, client output folder and URL changed, and the leading comment replaced by a header.
 */
export function derivePostgresSchema(source: string): string {
  let text = source.replace(/^(\/\/.*\n)*\n*/, "");
  text = replaceOnce(text, /^(\s*provider\s*=\s*)"sqlite"$/m, '$1"postgresql"');
  text = replaceOnce(text, /^(\s*output\s*=\s*)"\.\/src\/generated\/sqlite"$/m, '$1"../../src/generated/postgres"');
  // A literal, like the source's: connections come from the driver adapter, and an unset
  // env("DATABASE_URL") makes `prisma generate` try to download a query engine.
  text = replaceOnce(text, /^(\s*url\s*=\s*)"file:[^"]*"$/m, '$1"postgresql://localhost:5432/realtime"');
  return `${HEADER}\n${text}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = join(import.meta.dirname, "..");
  writeFileSync(join(root, POSTGRES_SCHEMA), derivePostgresSchema(readFileSync(join(root, SOURCE_SCHEMA), "utf8")));
  console.log(`wrote ${POSTGRES_SCHEMA}`);
}
