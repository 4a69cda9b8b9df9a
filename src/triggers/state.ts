import type { Prisma } from "../db.js";
import { GuardFailure } from "./guard.js";

/**
 * Trigger state: keys a trigger's `get`, `put`, `incr` and `delete` steps read and write, scoped to
 * the trigger, with JSON values and an optional expiry. An expired key reads as null at once; the
 * stores purge expired keys in the background. {@link DatabaseStateStore} keeps state in the
 * database (embedded mode), `RedisStateStore` (./redis-state.ts) in Redis so every instance shares it.
 */

/** One stored key as the admin API lists it. */
export interface TriggerStateEntry {
  readonly key: string;
  readonly value: unknown;
  /** When the key expires; null for never. */
  readonly expiresAt: Date | null;
}

/** Why a state write was refused: the step fails with this message and the trigger's `onError` applies. */
export class StateBoundError extends Error {}

/** Where trigger state lives. Values cross this interface as JSON text; `ttlMs` is absent for no expiry. */
export interface TriggerStateStore {
  /** The key's value as JSON text, or null when it is absent or expired. */
  get(triggerId: string, key: string): Promise<string | null>;
  /**
   * Stores a value, replacing the key's value and expiry.
   * @throws StateBoundError when the key is new and the trigger holds `maxKeys` keys already
   */
  put(triggerId: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number): Promise<void>;
  /**
   * Adds `by` to the key's whole number atomically and returns the result. A key that is absent or
   * expired is created with the value `by`, expiring after `ttlMs` (an existing key keeps its expiry).
   * @throws StateBoundError when the key is new and the trigger holds `maxKeys` keys already, or when
   * it holds a value that is not a whole number
   */
  incr(triggerId: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number): Promise<number>;
  /** Removes a key; true when it was there (and not expired). */
  delete(triggerId: string, key: string): Promise<boolean>;
  /** Up to `first` live keys starting with `prefix`, in key order. */
  list(triggerId: string, prefix: string, first: number): Promise<TriggerStateEntry[]>;
  /** Removes the live keys starting with `prefix` (every key for ""), returning how many there were. */
  clear(triggerId: string, prefix: string): Promise<number>;
  /** Removes everything a deleted trigger kept. */
  forget(triggerId: string): Promise<void>;
  /** Stops the background purge. */
  close(): Promise<void>;
}

/** The bounds on trigger state. */
export interface StateLimits {
  /** Bytes of one value as JSON. */
  readonly maxValueBytes: number;
  /** Live keys one trigger may hold. */
  readonly maxKeys: number;
}

/** The bounds when none are configured (`TRIGGER_STATE_MAX_VALUE_BYTES`, `TRIGGER_STATE_MAX_KEYS`). */
export const DEFAULT_STATE_LIMITS: StateLimits = { maxValueBytes: 16 * 1024, maxKeys: 100_000 };

/** Characters a key may have. */
export const MAX_STATE_KEY_LENGTH = 200;
/** The longest expiry a step may give, in seconds (one year). */
export const MAX_STATE_TTL_SECONDS = 365 * 24 * 3600;
/** Entries listed at most per request. */
export const MAX_STATE_LISTED = 1000;

/** What a running stack's state steps call: one trigger's state, with the bounds applied. */
export interface StateAccess {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown, ttlSeconds: number | undefined): Promise<void>;
  incr(key: string, by: number, ttlSeconds: number | undefined): Promise<number>;
  delete(key: string): Promise<void>;
}

/** The value as JSON text, or a `size` failure when it is over the bound. */
function encode(value: unknown, limits: StateLimits): string {
  const json = JSON.stringify(value === undefined ? null : value);
  const bytes = Buffer.byteLength(json);
  if (bytes > limits.maxValueBytes) {
    throw new GuardFailure("size", `a state value of ${bytes} bytes as JSON is over the limit of ${limits.maxValueBytes}`);
  }
  return json;
}

const toMs = (ttlSeconds: number | undefined) => (ttlSeconds === undefined ? undefined : Math.ceil(ttlSeconds * 1000));

/** Triggers whose live state access is kept at most. */
const MAX_LIVE_ACCESS = 10_000;

/** Trigger state, with bounds, for the trigger runs of a server. */
export class TriggerState {
  /** Each trigger's live state access, made once (every run of a trigger is handed one). */
  private readonly liveAccess = new Map<string, StateAccess>();

  constructor(
    readonly store: TriggerStateStore,
    readonly limits: StateLimits = DEFAULT_STATE_LIMITS,
  ) {}

  /** One trigger's state as its runs see it: reads and writes go to the store. */
  live(triggerId: string): StateAccess {
    let access = this.liveAccess.get(triggerId);
    if (!access) {
      const { store, limits } = this;
      access = {
        get: async (key) => parse(await store.get(triggerId, key)),
        put: (key, value, ttl) => store.put(triggerId, key, encode(value, limits), toMs(ttl), limits.maxKeys),
        incr: (key, by, ttl) => store.incr(triggerId, key, by, toMs(ttl), limits.maxKeys),
        delete: async (key) => void (await store.delete(triggerId, key)),
      };
      if (this.liveAccess.size >= MAX_LIVE_ACCESS) this.liveAccess.clear(); // deleted triggers' entries go too
      this.liveAccess.set(triggerId, access);
    }
    return access;
  }

  /**
   * One trigger's state for a test run: reads see the store, writes are kept in the run only (a
   * `get` after a `put` sees the new value), and nothing is stored. Bounds on values still apply.
   */
  dry(triggerId: string): StateAccess {
    const { store, limits } = this;
    const written = new Map<string, string | null>();
    const read = async (key: string) => (written.has(key) ? written.get(key)! : store.get(triggerId, key));
    return {
      get: async (key) => parse(await read(key)),
      put: async (key, value) => void written.set(key, encode(value, limits)),
      incr: async (key, by) => {
        // A stored JSON null is a value, not an absent key: like the stores, incr refuses it.
        const json = await read(key);
        if (json !== null && !WHOLE_NUMBER.test(json)) throw notWholeNumber(key);
        const next = (json === null ? 0 : Number(json)) + by;
        written.set(key, JSON.stringify(next));
        return next;
      },
      delete: async (key) => void written.set(key, null),
    };
  }

  /** Lists a trigger's live keys (at most {@link MAX_STATE_LISTED}). */
  list(triggerId: string, prefix: string, first: number): Promise<TriggerStateEntry[]> {
    return this.store.list(triggerId, prefix, Math.max(0, Math.min(first, MAX_STATE_LISTED)));
  }
}

/** The JSON text of a whole number, as the stores' incr accepts it. */
const WHOLE_NUMBER = /^-?\d+$/;

function parse(json: string | null): unknown {
  return json === null ? null : JSON.parse(json);
}

/** The failure of an `incr` on a key that holds something other than a whole number. */
export function notWholeNumber(key: string): StateBoundError {
  return new StateBoundError(`state key "${key}" holds a value that is not a whole number`);
}

/** The failure of a write that would give a trigger more keys than it may hold. */
export function tooManyKeys(maxKeys: number): StateBoundError {
  return new StateBoundError(`the trigger holds ${maxKeys} state keys already (TRIGGER_STATE_MAX_KEYS); delete some or let them expire`);
}

/** How often expired keys are purged from the database. */
const PURGE_INTERVAL_MS = 60_000;
/** Rows fetched per round when listing or clearing by prefix. */
const PAGE = 500;

/**
 * Trigger state in the database (the `TriggerState` table). `incr` is one `INSERT ... ON CONFLICT
 * DO UPDATE ... RETURNING` statement, atomic on SQLite and PostgreSQL alike; expired rows are
 * ignored by every read and deleted once a minute. The key count bound is checked before a new key
 * is written, so concurrent writers of new keys may pass it by a few.
 */
export class DatabaseStateStore implements TriggerStateStore {
  private readonly timer: NodeJS.Timeout;
  private readonly incrSql: string;

  constructor(
    private readonly prisma: Prisma,
    private readonly provider: "sqlite" | "postgresql",
  ) {
    this.incrSql = provider === "postgresql" ? POSTGRES_INCR : SQLITE_INCR;
    this.timer = setInterval(() => void this.purge().catch(() => {}), PURGE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Deletes every expired row; returns how many. */
  async purge(): Promise<number> {
    const { count } = await this.prisma.triggerState.deleteMany({ where: { expiresAt: { lte: Date.now() } } });
    return count;
  }

  async get(triggerId: string, key: string): Promise<string | null> {
    const row = await this.prisma.triggerState.findUnique({ where: { triggerId_key: { triggerId, key } } });
    return row && live(row.expiresAt) ? row.value : null;
  }

  async put(triggerId: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number): Promise<void> {
    await this.checkRoom(triggerId, key, maxKeys);
    const now = Date.now();
    const fields = { value: json, expiresAt: ttlMs === undefined ? null : now + ttlMs, updatedAt: now };
    await this.prisma.triggerState.upsert({
      where: { triggerId_key: { triggerId, key } },
      create: { triggerId, key, ...fields },
      update: fields,
    });
  }

  async incr(triggerId: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number): Promise<number> {
    await this.checkRoom(triggerId, key, maxKeys);
    const now = Date.now();
    const expiresAt = ttlMs === undefined ? null : now + ttlMs;
    const args =
      this.provider === "postgresql"
        ? [triggerId, key, JSON.stringify(by), expiresAt, now, by]
        : [triggerId, key, JSON.stringify(by), expiresAt, now, now, by, now, now, now];
    const rows = await this.prisma.$queryRawUnsafe<{ value: string }[]>(this.incrSql, ...args);
    if (rows.length === 0) throw notWholeNumber(key);
    return Number(rows[0]!.value);
  }

  async delete(triggerId: string, key: string): Promise<boolean> {
    const { count } = await this.prisma.triggerState.deleteMany({ where: { triggerId, key, ...liveWhere() } });
    return count > 0;
  }

  async list(triggerId: string, prefix: string, first: number): Promise<TriggerStateEntry[]> {
    const found: TriggerStateEntry[] = [];
    // `startsWith` ignores case on SQLite, so rows are checked again here and fetched page by page.
    for (let skip = 0; found.length < first; skip += PAGE) {
      const rows = await this.prisma.triggerState.findMany({
        where: { triggerId, key: { startsWith: prefix }, ...liveWhere() },
        orderBy: { key: "asc" },
        skip,
        take: PAGE,
      });
      for (const row of rows) {
        if (row.key.startsWith(prefix) && found.length < first) {
          found.push({
            key: row.key,
            value: JSON.parse(row.value),
            expiresAt: row.expiresAt === null ? null : new Date(Number(row.expiresAt)),
          });
        }
      }
      if (rows.length < PAGE) break;
    }
    return found;
  }

  async clear(triggerId: string, prefix: string): Promise<number> {
    if (prefix === "") {
      const [live] = await this.prisma.$transaction([
        this.prisma.triggerState.count({ where: { triggerId, ...liveWhere() } }),
        this.prisma.triggerState.deleteMany({ where: { triggerId } }),
      ]);
      return live;
    }
    let removed = 0;
    // Paged by key: `startsWith` ignores case on SQLite, so a page may hold only keys that differ in case.
    for (let after: string | undefined; ; ) {
      const rows = await this.prisma.triggerState.findMany({
        where: { triggerId, key: { startsWith: prefix, ...(after === undefined ? {} : { gt: after }) } },
        orderBy: { key: "asc" },
        select: { key: true },
        take: PAGE,
      });
      const keys = rows.map((row) => row.key).filter((key) => key.startsWith(prefix));
      if (keys.length > 0) {
        removed += (await this.prisma.triggerState.deleteMany({ where: { triggerId, key: { in: keys }, ...liveWhere() } })).count;
        await this.prisma.triggerState.deleteMany({ where: { triggerId, key: { in: keys } } });
      }
      if (rows.length < PAGE) return removed;
      after = rows.at(-1)!.key;
    }
  }

  async forget(triggerId: string): Promise<void> {
    // Foreign keys remove a deleted trigger's rows; this covers a trigger deleted by hand.
    await this.prisma.triggerState.deleteMany({ where: { triggerId } });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }

  /** @throws StateBoundError when `key` is not live and the trigger holds `maxKeys` live keys */
  private async checkRoom(triggerId: string, key: string, maxKeys: number): Promise<void> {
    const row = await this.prisma.triggerState.findUnique({ where: { triggerId_key: { triggerId, key } }, select: { expiresAt: true } });
    if (row && live(row.expiresAt)) return;
    const count = await this.prisma.triggerState.count({ where: { triggerId, ...liveWhere() } });
    if (count >= maxKeys) throw tooManyKeys(maxKeys);
  }
}

function live(expiresAt: bigint | null): boolean {
  return expiresAt === null || Number(expiresAt) > Date.now();
}

function liveWhere() {
  return { OR: [{ expiresAt: null }, { expiresAt: { gt: Date.now() } }] };
}

/*
 * One statement per provider: create the key with `by`, or add `by` to a live whole number, or
 * start over from `by` (with the new expiry) when the key has expired. No row comes back when the
 * stored value is not a whole number.
 */
const SQLITE_INCR = `
INSERT INTO "TriggerState" ("triggerId", "key", "value", "expiresAt", "updatedAt") VALUES (?, ?, ?, ?, ?)
ON CONFLICT ("triggerId", "key") DO UPDATE SET
  "value" = CASE WHEN "TriggerState"."expiresAt" <= ? THEN excluded."value"
                 ELSE CAST(CAST("TriggerState"."value" AS INTEGER) + CAST(? AS INTEGER) AS TEXT) END,
  "expiresAt" = CASE WHEN "TriggerState"."expiresAt" <= ? THEN excluded."expiresAt" ELSE "TriggerState"."expiresAt" END,
  "updatedAt" = ?
WHERE "TriggerState"."expiresAt" <= ? OR json_type("TriggerState"."value") = 'integer'
RETURNING "value"`;

const POSTGRES_INCR = `
INSERT INTO "TriggerState" ("triggerId", "key", "value", "expiresAt", "updatedAt") VALUES ($1, $2, $3, $4::bigint, $5::bigint)
ON CONFLICT ("triggerId", "key") DO UPDATE SET
  "value" = CASE WHEN "TriggerState"."expiresAt" <= $5::bigint THEN EXCLUDED."value"
                 ELSE ("TriggerState"."value"::bigint + $6::bigint)::text END,
  "expiresAt" = CASE WHEN "TriggerState"."expiresAt" <= $5::bigint THEN EXCLUDED."expiresAt" ELSE "TriggerState"."expiresAt" END,
  "updatedAt" = $5::bigint
WHERE "TriggerState"."expiresAt" <= $5::bigint OR "TriggerState"."value" ~ '^-?[0-9]+$'
RETURNING "value"`;
