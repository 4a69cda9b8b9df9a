import Sqlite from "better-sqlite3";
import type pg from "pg";
import type { Database } from "../../db.js";

/**
 * The statements behind a run's state steps in the database, written for each provider and run on
 * its driver directly: through Prisma a `get` cost about 0.3 ms of the delivering thread and a `put`
 * about 2 ms (so 100 senders through a few state steps queued runs past their time limit); here tens
 * of microseconds (bench/state-ops.ts).
 *
 * Each operation is atomic on its own: one statement, or on SQLite one short `BEGIN IMMEDIATE`
 * transaction run without yielding. Times are milliseconds since the epoch; a row whose `expiresAt`
 * is at or before `now` counts as absent.
 */
export interface StateStatements {
  /** The live value's JSON text, or null. */
  get(triggerId: string, key: string, now: number): Promise<string | null>;
  /** Writes the value; false, writing nothing, when the key is not live and the trigger holds `maxKeys` live keys. */
  put(triggerId: string, key: string, json: string, expiresAt: number | null, now: number, maxKeys: number): Promise<boolean>;
  /**
   * Adds `by` to a live whole number, or creates the key (or starts an expired one over) with `by`
   * and `expiresAt`. Returns the new value, or why nothing was written: no room, a live value that is
   * not a whole number within ±{@link MAX_COUNT}, or a result that would pass it.
   */
  incr(triggerId: string, key: string, by: number, expiresAt: number | null, now: number, maxKeys: number): Promise<IncrResult>;
  /** Removes the key; true when it was live. */
  delete(triggerId: string, key: string, now: number): Promise<boolean>;
  /** Releases the connection (SQLite) or nothing (PostgreSQL's pool belongs to the database). */
  close(): void;
}

/** The largest whole number `incr` counts to (and the smallest, negated): JavaScript's safe integers. */
export const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** Whether `json` is the JSON text of a whole number `incr` adds to: digits, within ±{@link MAX_COUNT}. */
export function isCountable(json: string): boolean {
  return /^-?\d{1,16}$/.test(json) && Math.abs(Number(json)) <= MAX_COUNT;
}

/** What an `incr` answers: the new value, or why nothing was written. */
export type IncrResult = number | "full" | "not whole" | "beyond max";

/** The statements for `db`'s provider. */
export function stateStatements(db: Database): StateStatements {
  return db.driver.provider === "postgresql" ? new PostgresStatements(db.driver.pool) : new SqliteStatements(db.driver.file);
}

const LIVE = `("expiresAt" IS NULL OR "expiresAt" > ?)`;

/** How long a write waits for another connection's write lock before it fails (as `busy_timeout` on Prisma's). */
const SQLITE_BUSY_WAIT_MS = 5000;

/**
 * SQLite, on a connection of its own with every statement prepared once. Its own, because a
 * statement on Prisma's connection while Prisma has a transaction open there (a trigger being
 * saved, a history entry being written) becomes part of that transaction and is undone with it.
 * The connection never waits for a lock inside SQLite, which would block the thread (and with it
 * the Prisma transaction holding the lock): a write that finds the database locked is tried again
 * after a short pause, for up to {@link SQLITE_BUSY_WAIT_MS}.
 */
class SqliteStatements implements StateStatements {
  private readonly db: Sqlite.Database;
  private readonly read: Sqlite.Statement<[string, string, number], { value: string }>;
  private readonly count: Sqlite.Statement<[string, number], { n: number }>;
  private readonly upsert: Sqlite.Statement<[string, string, string, number | null, number]>;
  private readonly add: Sqlite.Statement<
    [string, string, string, number | null, number, number, number, number, number],
    { value: string }
  >;
  private readonly remove: Sqlite.Statement<[string, string, number], { live: number }>;
  private readonly putInTransaction: (...args: Parameters<SqliteStatements["putNow"]>) => boolean;
  private readonly incrInTransaction: (...args: Parameters<SqliteStatements["incrNow"]>) => IncrResult;

  constructor(file: string) {
    this.db = new Sqlite(file, { timeout: 0 });
    this.read = this.db.prepare(`SELECT "value" FROM "TriggerState" WHERE "triggerId" = ? AND "key" = ? AND ${LIVE}`);
    this.count = this.db.prepare(`SELECT count(*) AS n FROM "TriggerState" WHERE "triggerId" = ? AND ${LIVE}`);
    this.upsert = this.db.prepare(
      `INSERT INTO "TriggerState" ("triggerId", "key", "value", "expiresAt", "updatedAt") VALUES (?, ?, ?, ?, ?)
       ON CONFLICT ("triggerId", "key") DO UPDATE SET "value" = excluded."value", "expiresAt" = excluded."expiresAt", "updatedAt" = excluded."updatedAt"`,
    );
    // Create the key with `by`, or add `by` to a live whole number (checked before, in the same
    // transaction), or start over from `by` (with the new expiry) when the key has expired.
    this.add = this.db.prepare(
      `INSERT INTO "TriggerState" ("triggerId", "key", "value", "expiresAt", "updatedAt") VALUES (?, ?, ?, ?, ?)
       ON CONFLICT ("triggerId", "key") DO UPDATE SET
         "value" = CASE WHEN "TriggerState"."expiresAt" <= ? THEN excluded."value"
                        ELSE CAST(CAST("TriggerState"."value" AS INTEGER) + CAST(? AS INTEGER) AS TEXT) END,
         "expiresAt" = CASE WHEN "TriggerState"."expiresAt" <= ? THEN excluded."expiresAt" ELSE "TriggerState"."expiresAt" END,
         "updatedAt" = ?
       RETURNING "value"`,
    );
    this.remove = this.db.prepare(
      `DELETE FROM "TriggerState" WHERE "triggerId" = ? AND "key" = ? RETURNING ("expiresAt" IS NULL OR "expiresAt" > ?) AS live`,
    );
    const putNow = this.db.transaction(this.putNow.bind(this));
    const incrNow = this.db.transaction(this.incrNow.bind(this));
    this.putInTransaction = (...args) => putNow.immediate(...args);
    this.incrInTransaction = (...args) => incrNow.immediate(...args);
  }

  /** False when `key` is not live and the trigger holds `maxKeys` live keys. */
  private hasRoom(triggerId: string, key: string, now: number, maxKeys: number): boolean {
    return this.read.get(triggerId, key, now) !== undefined || this.count.get(triggerId, now)!.n < maxKeys;
  }

  private putNow(triggerId: string, key: string, json: string, expiresAt: number | null, now: number, maxKeys: number): boolean {
    if (!this.hasRoom(triggerId, key, now, maxKeys)) return false;
    this.upsert.run(triggerId, key, json, expiresAt, now);
    return true;
  }

  private incrNow(triggerId: string, key: string, by: number, expiresAt: number | null, now: number, maxKeys: number): IncrResult {
    if (!this.hasRoom(triggerId, key, now, maxKeys)) return "full";
    const current = this.read.get(triggerId, key, now)?.value;
    if (current !== undefined && !isCountable(current)) return "not whole";
    if (Math.abs(Number(current ?? 0) + by) > MAX_COUNT) return "beyond max";
    return Number(this.add.get(triggerId, key, JSON.stringify(by), expiresAt, now, now, by, now, now)!.value);
  }

  get(triggerId: string, key: string, now: number): Promise<string | null> {
    return this.unlocked(() => this.read.get(triggerId, key, now)?.value ?? null);
  }

  put(triggerId: string, key: string, json: string, expiresAt: number | null, now: number, maxKeys: number): Promise<boolean> {
    return this.unlocked(() => this.putInTransaction(triggerId, key, json, expiresAt, now, maxKeys));
  }

  incr(triggerId: string, key: string, by: number, expiresAt: number | null, now: number, maxKeys: number) {
    return this.unlocked(() => this.incrInTransaction(triggerId, key, by, expiresAt, now, maxKeys));
  }

  delete(triggerId: string, key: string, now: number): Promise<boolean> {
    return this.unlocked(() => this.remove.get(triggerId, key, now)?.live === 1);
  }

  close(): void {
    this.db.close();
  }

  /** Runs `operation`, again after a pause while another connection holds the write lock. */
  private async unlocked<T>(operation: () => T): Promise<T> {
    const giveUpAt = Date.now() + SQLITE_BUSY_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(2 * pause, 50)) {
      try {
        return operation();
      } catch (error) {
        if (!(error instanceof Sqlite.SqliteError && error.code.startsWith("SQLITE_BUSY")) || Date.now() >= giveUpAt) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * Whether a write of trigger `$1`'s key `$2` at time `$5` finds room: the key is live, or fewer than
 * `$6` of the trigger's keys are (counted only then: CASE evaluates the branch it takes).
 */
const PG_ROOM = `CASE
  WHEN EXISTS (SELECT 1 FROM "TriggerState" WHERE "triggerId" = $1 AND "key" = $2 AND ("expiresAt" IS NULL OR "expiresAt" > $5::bigint)) THEN true
  ELSE (SELECT count(*) FROM "TriggerState" WHERE "triggerId" = $1 AND ("expiresAt" IS NULL OR "expiresAt" > $5::bigint)) < $6::bigint
END`;

/** A request waiting for its batch: its input, and how to answer it. */
interface Queued<I, O> {
  readonly input: I;
  readonly resolve: (output: O) => void;
  readonly reject: (error: unknown) => void;
}

/** Requests sent together at most. */
const MAX_BATCH = 500;

/**
 * One batch of requests in flight per queue at a time: requests that arrive while their queue's
 * batch is in flight are sent together next (at most {@link MAX_BATCH}). Alone, a request is sent at
 * once; under load, many requests cost one statement.
 */
class Batches<I, O> {
  private readonly waiting = new Map<string, Queued<I, O>[]>();

  /** `send` answers a batch's requests in order. */
  constructor(private readonly send: (queue: string, inputs: I[]) => Promise<O[]>) {}

  add(queue: string, input: I): Promise<O> {
    return new Promise((resolve, reject) => {
      const request = { input, resolve, reject };
      const waiting = this.waiting.get(queue);
      if (waiting) waiting.push(request);
      else {
        this.waiting.set(queue, []);
        void this.sendFrom(queue, [request]);
      }
    });
  }

  private async sendFrom(queue: string, batch: Queued<I, O>[]): Promise<void> {
    try {
      const outputs = await this.send(
        queue,
        batch.map((request) => request.input),
      );
      for (const [i, request] of batch.entries()) request.resolve(outputs[i]!);
    } catch (error) {
      for (const request of batch) request.reject(error);
    }
    const waiting = this.waiting.get(queue)!;
    if (waiting.length === 0) this.waiting.delete(queue);
    else void this.sendFrom(queue, waiting.splice(0, MAX_BATCH));
  }
}

/** An `incr`'s input. */
interface IncrInput {
  readonly triggerId: string;
  readonly key: string;
  readonly by: number;
  readonly expiresAt: number | null;
  readonly maxKeys: number;
}

/**
 * PostgreSQL, on the pool Prisma uses, with named statements (prepared once per connection). Under
 * READ COMMITTED, concurrent writers of new keys may each find room, so the key bound can be passed
 * by a few.
 *
 * Reads and increments are batched ({@link Batches}), which keeps them to a few statements under
 * load: the reads that arrive while one is in flight are made next in one statement, and so are the
 * `incr`s of one key, added up, each answered with the value it would have seen had they run one
 * after the other (they were concurrent, so that order is as good as any). A key every sender
 * increments would otherwise cost a commit per increment, one after the other behind its row lock,
 * holding the pool's connections while they wait.
 */
class PostgresStatements implements StateStatements {
  private readonly reads = new Batches<{ triggerId: string; key: string }, string | null>((_, inputs) => this.readMany(inputs));
  private readonly incrs = new Batches<IncrInput, IncrResult>((_, inputs) => this.incrTogether(inputs));

  constructor(private readonly pool: pg.Pool) {}

  get(triggerId: string, key: string): Promise<string | null> {
    return this.reads.add("", { triggerId, key });
  }

  private async readMany(inputs: { triggerId: string; key: string }[]): Promise<(string | null)[]> {
    const { rows } = await this.pool.query<{ n: string; value: string }>({
      name: "trigger-state-get",
      text: `SELECT i.n, s."value" FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i("triggerId", "key", n)
        JOIN "TriggerState" s ON s."triggerId" = i."triggerId" AND s."key" = i."key"
        WHERE s."expiresAt" IS NULL OR s."expiresAt" > $3::bigint`,
      values: [inputs.map((input) => input.triggerId), inputs.map((input) => input.key), Date.now()],
    });
    const values: (string | null)[] = inputs.map(() => null);
    for (const row of rows) values[Number(row.n) - 1] = row.value;
    return values;
  }

  async put(triggerId: string, key: string, json: string, expiresAt: number | null, now: number, maxKeys: number): Promise<boolean> {
    const { rowCount } = await this.pool.query({
      name: "trigger-state-put",
      text: `INSERT INTO "TriggerState" ("triggerId", "key", "value", "expiresAt", "updatedAt")
        SELECT $1::text, $2::text, $3::text, $4::bigint, $5::bigint WHERE ${PG_ROOM}
        ON CONFLICT ("triggerId", "key") DO UPDATE SET "value" = EXCLUDED."value", "expiresAt" = EXCLUDED."expiresAt", "updatedAt" = EXCLUDED."updatedAt"`,
      values: [triggerId, key, json, expiresAt, now, maxKeys],
    });
    return rowCount === 1;
  }

  incr(triggerId: string, key: string, by: number, expiresAt: number | null, _now: number, maxKeys: number) {
    return this.incrs.add(JSON.stringify([triggerId, key]), { triggerId, key, by, expiresAt, maxKeys });
  }

  /**
   * `incrs` of one key as one statement, when the stored value is far enough from ±{@link MAX_COUNT}
   * that no order of them could pass it; else (and when they could pass it together) one by one.
   */
  private async incrTogether(incrs: IncrInput[]): Promise<IncrResult[]> {
    // The first creates the key (or starts it over) when it is not live: its expiry applies.
    const { triggerId, key, expiresAt, maxKeys } = incrs[0]!;
    const total = incrs.reduce((sum, incr) => sum + BigInt(incr.by), 0n);
    const reach = incrs.length === 1 ? 0n : incrs.reduce((sum, incr) => sum + BigInt(Math.abs(incr.by)), 0n);
    const result = reach > MAX_COUNT ? "beyond max" : await this.incrOnce(triggerId, key, total, reach, expiresAt, Date.now(), maxKeys);
    if (result === "beyond max" && incrs.length > 1) {
      const results: IncrResult[] = [];
      for (const incr of incrs) results.push(...(await this.incrTogether([incr])));
      return results;
    }
    if (typeof result === "string") return incrs.map(() => result);
    let value = result - total;
    return incrs.map((incr) => Number((value += BigInt(incr.by))));
  }

  /**
   * One `incr` statement: the new value, or why nothing was written. The stored value must be a whole
   * number whose distance from ±{@link MAX_COUNT} is at least `reach` and the result within them.
   */
  private async incrOnce(
    triggerId: string,
    key: string,
    by: bigint,
    reach: bigint,
    expiresAt: number | null,
    now: number,
    maxKeys: number,
  ) {
    const { rows } = await this.pool.query<{ value: string }>({
      name: "trigger-state-incr",
      text: `INSERT INTO "TriggerState" ("triggerId", "key", "value", "expiresAt", "updatedAt")
        SELECT $1::text, $2::text, $3::bigint::text, $4::bigint, $5::bigint WHERE ${PG_ROOM}
        ON CONFLICT ("triggerId", "key") DO UPDATE SET
          "value" = CASE WHEN "TriggerState"."expiresAt" <= $5::bigint THEN EXCLUDED."value"
                         ELSE ("TriggerState"."value"::bigint + $3::bigint)::text END,
          "expiresAt" = CASE WHEN "TriggerState"."expiresAt" <= $5::bigint THEN EXCLUDED."expiresAt" ELSE "TriggerState"."expiresAt" END,
          "updatedAt" = $5::bigint
        WHERE "TriggerState"."expiresAt" <= $5::bigint OR CASE WHEN "TriggerState"."value" ~ '^-?[0-9]{1,16}$'
          THEN abs("TriggerState"."value"::bigint) + $7::bigint <= ${MAX_COUNT} AND abs("TriggerState"."value"::bigint + $3::bigint) <= ${MAX_COUNT}
          ELSE false END
        RETURNING "value"`,
      values: [triggerId, key, by.toString(), expiresAt, now, maxKeys, reach.toString()],
    });
    if (rows[0]) return BigInt(rows[0].value);
    // Nothing written: no room for the key, or it holds something else than a whole number, or the
    // result would pass the bound.
    const [current = null] = await this.readMany([{ triggerId, key }]);
    return current === null ? "full" : isCountable(current) ? "beyond max" : "not whole";
  }

  async delete(triggerId: string, key: string, now: number): Promise<boolean> {
    const { rows } = await this.pool.query<{ live: boolean }>({
      name: "trigger-state-delete",
      text: `DELETE FROM "TriggerState" WHERE "triggerId" = $1 AND "key" = $2 RETURNING ("expiresAt" IS NULL OR "expiresAt" > $3::bigint) AS live`,
      values: [triggerId, key, now],
    });
    return rows[0]?.live === true;
  }

  close(): void {}
}
