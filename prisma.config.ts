import { defineConfig } from "prisma/config";

/**
 * Prisma CLI configuration. Migrations run through the WebAssembly schema engine over a driver
 * adapter, so no native engine binary is needed (see README, "Database").
 */
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "schema.prisma",
  migrations: { path: "prisma/migrations/sqlite" },
  adapter: async () => {
    const { PrismaBetterSQLite3 } = await import("@prisma/adapter-better-sqlite3");
    return new PrismaBetterSQLite3({ url: process.env.DATABASE_URL ?? "file:./data/realtime.db" });
  },
});
