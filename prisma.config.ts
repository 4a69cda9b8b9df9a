import { defineConfig } from "prisma/config";

const url = process.env.DATABASE_URL ?? "file:./data/realtime.db";
const postgres = /^postgres(ql)?:\/\//.test(url);

/**
 * Prisma CLI configuration. Migrations run through the WebAssembly schema engine over a driver
 * adapter, so no native engine binary is needed (see README, "Toolchain notes"). `DATABASE_URL`
 * picks the provider: `postgres://` or `postgresql://` selects the derived PostgreSQL schema and its
 * migrations, anything else SQLite.
 */
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: postgres ? "prisma/postgres/schema.prisma" : "schema.prisma",
  migrations: { path: postgres ? "prisma/migrations/postgres" : "prisma/migrations/sqlite" },
  adapter: async () => {
    if (postgres) {
      // Works around prisma/orm#27403 and two more WebAssembly-engine problems; see the module.
      const { pgMigrateAdapter } = await import("./prisma/pg-migrate-adapter.js");
      return pgMigrateAdapter(url);
    }
    const { PrismaBetterSQLite3 } = await import("@prisma/adapter-better-sqlite3");
    return new PrismaBetterSQLite3({ url });
  },
});
