import { type Database, isDatabaseUnreachable, isDriverUnreachable, type Prisma } from "../../db.js";
import { AppError, ErrorCode } from "../../errors.js";
import { isRedisUnreachable } from "../../realtime/redis.js";
import { GuardFailure } from "../guard/guard.js";
import { jsonPrefix } from "../guard/values.js";
import { isCountable, MAX_COUNT, type StateStatements, stateStatements } from "./statements.js";

/**
 * Trigger state: keys a trigger's `get`, `put`, `incr` and `delete` steps read and write, scoped to
 * the trigger, with JSON values and an optional expiry. An expired key reads as null at once; the
 * stores purge expired keys in the background. {@link DatabaseStateStore} keeps state in the
 * database (embedded mode), `RedisStateStore` (./redis.ts) in Redis so every instance shares it.
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
   * Whole numbers are JavaScript's safe integers (±{@link MAX_COUNT}): a key holding a number
   * beyond them does not count as one, and an increment that would leave them writes nothing.
   * @throws StateBoundError when the key is new and the trigger holds `maxKeys` keys already, when
   * it holds a value that is not a whole number, or when the result would pass ±{@link MAX_COUNT}
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
  /** Stops the background purge (and closes what the store opened). */
  close(): Promise<void>;
}

/** A store's background purge of expired keys. */
export interface StatePurgeOptions {
  /** Whether the store purges every minute (default true); one store per process needs to. */
  readonly background?: boolean;
  /**
   * Told of each failure of a purge: of one trigger's keys (the purge goes on with the others), or of
   * the whole round (`triggerId` null).
   */
  readonly onFailure?: (failure: { readonly triggerId: string | null; readonly error: unknown }) => void;
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
  // Written only up to a few times the bound: a value may be far larger.
  const { text, whole } = jsonPrefix(value === undefined ? null : value, 4 * limits.maxValueBytes);
  const bytes = Buffer.byteLength(text);
  if (!whole || bytes > limits.maxValueBytes) {
    const size = whole ? `${bytes} bytes` : `over ${4 * limits.maxValueBytes} bytes`;
    throw new GuardFailure("size", `a state value of ${size} as JSON is over the limit of ${limits.maxValueBytes}`);
  }
  return text;
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

  /**
   * One trigger's state as its runs see it: reads and writes go to the store. A store that cannot be
   * reached fails the step with `SERVICE_UNAVAILABLE` (see {@link unreachable}), not as the trigger's fault.
   */
  live(triggerId: string): StateAccess {
    let access = this.liveAccess.get(triggerId);
    if (!access) {
      const { store, limits } = this;
      access = {
        get: async (key) => parse(await unreachable(store.get(triggerId, key))),
        put: (key, value, ttl) => unreachable(store.put(triggerId, key, encode(value, limits), toMs(ttl), limits.maxKeys)),
        incr: (key, by, ttl) => unreachable(store.incr(triggerId, key, by, toMs(ttl), limits.maxKeys)),
        delete: async (key) => void (await unreachable(store.delete(triggerId, key))),
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
        if (json !== null && !isCountable(json)) throw notWholeNumber(key);
        const next = (json === null ? 0 : Number(json)) + by;
        if (Math.abs(next) > MAX_COUNT) throw beyondMaxCount(key);
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

/**
 * Resolves as `operation` does; when it fails because the store (the database or Redis) cannot be
 * reached, fails with `SERVICE_UNAVAILABLE` instead: an outage, which a trigger run reports as such.
 */
async function unreachable<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (isDatabaseUnreachable(error) || isDriverUnreachable(error) || isRedisUnreachable(error)) {
      throw new AppError(
        ErrorCode.ServiceUnavailable,
        `state: the store is unreachable (${(error as Error).message.trim().split("\n").at(-1)})`,
      );
    }
    throw error;
  }
}

function parse(json: string | null): unknown {
  return json === null ? null : JSON.parse(json);
}

/** The failure of an `incr` on a key that holds something other than a whole number. */
export function notWholeNumber(key: string): StateBoundError {
  return new StateBoundError(`state key "${key}" holds a value that is not a whole number`);
}

/** The failure of an `incr` whose result would pass ±{@link MAX_COUNT}: nothing is written. */
export function beyondMaxCount(key: string): StateBoundError {
  return new StateBoundError(`incrementing state key "${key}" would pass ±${MAX_COUNT}, the largest whole number it can hold`);
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
 * Trigger state in the database (the `TriggerState` table). A run's `get`, `put`, `incr` and
 * `delete` are single atomic operations on the database's driver ({@link StateStatements}); the
 * admin's listing and clearing go through Prisma. Expired rows are ignored by every read and deleted
 * once a minute. On SQLite the key count bound is exact; on PostgreSQL concurrent writers of new
 * keys may pass it by a few.
 */
export class DatabaseStateStore implements TriggerStateStore {
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly prisma: Prisma;
  private readonly statements: StateStatements;

  constructor(
    db: Database,
    private readonly purging: StatePurgeOptions = {},
  ) {
    this.prisma = db.prisma;
    this.statements = stateStatements(db);
    if (purging.background !== false) {
      this.timer = setInterval(() => void this.purge().catch(() => {}), PURGE_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Deletes every expired row; returns how many. A failure is told to `onFailure` too. */
  async purge(): Promise<number> {
    try {
      const { count } = await this.prisma.triggerState.deleteMany({ where: { expiresAt: { lte: Date.now() } } });
      return count;
    } catch (error) {
      this.purging.onFailure?.({ triggerId: null, error });
      throw error;
    }
  }

  get(triggerId: string, key: string): Promise<string | null> {
    return this.statements.get(triggerId, key, Date.now());
  }

  async put(triggerId: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number): Promise<void> {
    const now = Date.now();
    if (!(await this.statements.put(triggerId, key, json, ttlMs === undefined ? null : now + ttlMs, now, maxKeys)))
      throw tooManyKeys(maxKeys);
  }

  async incr(triggerId: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number): Promise<number> {
    const now = Date.now();
    const result = await this.statements.incr(triggerId, key, by, ttlMs === undefined ? null : now + ttlMs, now, maxKeys);
    if (result === "full") throw tooManyKeys(maxKeys);
    if (result === "not whole") throw notWholeNumber(key);
    if (result === "beyond max") throw beyondMaxCount(key);
    return result;
  }

  delete(triggerId: string, key: string): Promise<boolean> {
    return this.statements.delete(triggerId, key, Date.now());
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
    this.statements.close();
  }
}

function liveWhere() {
  return { OR: [{ expiresAt: null }, { expiresAt: { gt: Date.now() } }] };
}
