import { randomUUID } from "node:crypto";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { postgresConfig } from "../src/db.js";

/** Catalog column types the engine cannot read: `"char"` (18) and `name` (19). Both hold text. */
const CATALOG_TEXT_OIDS = new Set([18, 19]);
const TEXT_OID = 25;
const ADVISORY_LOCK_TIMEOUT_MS = 10_000;

/**
 * Works around prisma/orm#27403 (https://github.com/prisma/prisma/issues/27403): Prisma 6.19's
 * WebAssembly schema engine fails on PostgreSQL with "Column type 'name' could not be deserialized"
 * (and, when it describes foreign keys, the same for `char`) because catalog queries return columns of
 * those types. This pool reports them as `text`. For the migration tooling only; the server's client
 * does not need it.
 */
class CatalogTextPool extends pg.Pool {
  override async query(...args: unknown[]): Promise<pg.QueryResult> {
    const result = await (pg.Pool.prototype.query as (...args: unknown[]) => Promise<pg.QueryResult>).apply(this, args);
    for (const field of result.fields ?? []) {
      if (CATALOG_TEXT_OIDS.has(field.dataTypeID)) field.dataTypeID = TEXT_OID;
    }
    return result;
  }
}

/*
 * The WebAssembly engine bounds its wait for the migration advisory lock (`pg_advisory_lock`) with a
 * 10 s `setTimeout` that it never clears (its JS glue has no `clearTimeout`), so `prisma migrate
 * deploy` on PostgreSQL sits idle for 10 s after finishing. Unreferenced, that timer still fires while
 * the lock query keeps the connection open, but no longer keeps the finished CLI alive. Only the Prisma
 * CLI process imports this module (through prisma.config.ts), so the patch stays there.
 */
const setTimeout = globalThis.setTimeout;
globalThis.setTimeout = Object.assign((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const timer = setTimeout(callback, ms, ...args);
  if (ms === ADVISORY_LOCK_TIMEOUT_MS) timer.unref();
  return timer;
}, setTimeout);

type MigrateAdapter = Awaited<ReturnType<PrismaPg["connect"]>>;

/**
 * Makes an adapter run each migration script as one query, as `psql -f` would: PostgreSQL runs its
 * statements in order, as one implicit transaction. Upstream's `executeScript` splits the script at
 * every `;` (statements then also go to different pooled connections), which breaks a `DO $$ ... $$`
 * block, and any comment or string holding a semicolon.
 */
function wholeScripts<T extends MigrateAdapter>(adapter: T): T {
  adapter.executeScript = async (script: string) => {
    try {
      await adapter.underlyingDriver().query(script);
    } catch (error) {
      // The upstream path's error conversion, so the engine reports the database's message.
      (adapter as unknown as { onError(error: unknown): never }).onError(error);
    }
  };
  return adapter;
}

/**
 * PrismaPg over {@link CatalogTextPool}, with a shadow database (for `migrate diff --from-migrations`)
 * that is shimmed too and really used: upstream's shadow pool spreads the main pool's config, in which
 * the connection string wins over the shadow `database`, so it replays migrations in the main database.
 * Both run migration scripts whole (see {@link wholeScripts}).
 */
class MigratePg extends PrismaPg {
  constructor(
    private readonly pool: pg.PoolConfig & { connectionString: string },
    private readonly schema: string,
  ) {
    super(new CatalogTextPool(pool), { schema });
  }

  override async connect() {
    return wholeScripts(await super.connect());
  }

  override async connectToShadowDb() {
    const database = `prisma_migrate_shadow_db_${randomUUID()}`;
    const admin = new CatalogTextPool(this.pool);
    await admin.query(`CREATE DATABASE "${database}"`);
    const url = new URL(this.pool.connectionString);
    url.pathname = `/${database}`;
    const shadow = wholeScripts(
      await new PrismaPg(new CatalogTextPool({ ...this.pool, connectionString: url.href }), { schema: this.schema }).connect(),
    );
    return Object.assign(shadow, {
      dispose: async () => {
        await shadow.underlyingDriver().end();
        await admin.query(`DROP DATABASE "${database}"`);
        await admin.end();
      },
    });
  }
}

/**
 * The driver adapter `prisma.config.ts` gives the Prisma CLI for a `postgres://` URL, honouring
 * `?schema=NAME` (see {@link postgresConfig}).
 */
export function pgMigrateAdapter(url: string): PrismaPg {
  const { pool, schema } = postgresConfig(url);
  // The CLI never ends the pool; without allowExitOnIdle its idle connections hold the process 10 s.
  return new MigratePg({ ...pool, allowExitOnIdle: true }, schema);
}
