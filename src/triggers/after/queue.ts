import { isDatabaseUnreachable, type Prisma, storedTime, writeWithKnownOutcome } from "../../db.js";
import { AppError, ErrorCode } from "../../errors.js";
import { sortableId } from "../../ids.js";
import type { Logger } from "../../logger.js";
import type { DeliveryFollowUp } from "../../realtime/history.js";
import type { ChannelEvent, RealtimeAction } from "../../realtime/types.js";
import {
  type AfterAttemptRecord,
  type AfterAttemptRequest,
  type AfterRunRecord,
  type AfterRunStatus,
  type CappedJson,
  capJson,
} from "../run/records.js";
import type { LoadedTrigger, TriggerStore } from "../store/trigger-store.js";

/** A run taken by one instance for one attempt: the event it runs on and its attempt number. */
export interface ClaimedRun {
  readonly id: string;
  readonly triggerId: string;
  readonly event: ChannelEvent;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  /** The trigger's revision when the run was queued. */
  readonly revision: number;
}

/** How an attempt ended, as {@link AfterRunQueue.finish} stores it. */
export interface AttemptResult {
  readonly status: AfterRunStatus;
  /** For PENDING: when the next attempt may start (milliseconds since the epoch). */
  readonly nextAttemptAt: number | null;
  readonly durationMs: number;
  readonly error: string | null;
  readonly log: unknown[];
  /** `{ payload, commandOptions }` the attempt ended with, capped as runs keep it. */
  readonly output: CappedJson;
  /** When the attempt started (milliseconds since the epoch). */
  readonly startedAt: number;
  /** The webhook calls the attempt made, in order, as kept in its record. */
  readonly requests: readonly AfterAttemptRequest[];
}

/** The outcome of one run's attempt, to store. */
export interface FinishedAttempt {
  readonly id: string;
  readonly result: AttemptResult;
}

/**
 * Why an event's AFTER runs could not be stored: its trigger's share of the queue is full, the whole
 * queue is full, or the database is unreachable.
 */
export const AFTER_REFUSAL_CAUSES = ["trigger_share", "queue_full", "unavailable"] as const;
export type AfterRefusalCause = (typeof AFTER_REFUSAL_CAUSES)[number];

/** Settings of an {@link AfterRunQueue}. */
export interface AfterRunQueueOptions {
  /** Pending runs at most (over every instance); an event whose runs would pass it is refused. */
  readonly maxPending: number;
  /** Pending runs of one trigger at most (over every instance); an event whose runs would pass it is refused. */
  readonly maxPendingPerTrigger: number;
  /** How often the pending runs are counted again ({@link AfterRunQueue.recount}): the soonest a full share can have room again. */
  readonly countIntervalMs: number;
  /** Finished runs kept per trigger; older ones are deleted. */
  readonly keepPerTrigger: number;
  /** How long a claimed run stays with its instance before another may take it over (a crashed instance's runs). */
  readonly leaseMs: number;
  /** Attempt records kept per run, the newest (TRIGGER_RETRY_LIMIT: a run's whole set of attempts). */
  readonly attemptsKept: number;
}

type Row = Awaited<ReturnType<Prisma["triggerAfterRun"]["findFirstOrThrow"]>>;
type AttemptRow = Awaited<ReturnType<Prisma["triggerAfterAttempt"]["findFirstOrThrow"]>>;

/** Runs written per statement when several events' runs are stored together. */
const MAX_BATCH_ROWS = 500;

/*
 * Claims due runs for one attempt in one statement, so each is taken by exactly one instance: the
 * run is PENDING, due, and not leased (or its lease ran out: the instance that had it is gone).
 * Fair across triggers: each trigger's oldest due runs (at most the per-trigger limit, read through
 * the index on status, trigger and due time) are numbered from 1, after the attempts of that trigger
 * already under way on the claiming instance (a JSON object of trigger id to count); numbers past the
 * limit are left, and the rest are taken lowest number first, then oldest first. So each trigger's
 * next run comes before any trigger's second, and a trigger with attempts under way comes after those
 * without. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets instances claim side by side without waiting on
 * each other; SQLite runs the statement under its single write lock.
 */
const POSTGRES_CLAIM = `
UPDATE "TriggerAfterRun" SET "leaseOwner" = $1, "leaseUntil" = $2::bigint, "attempts" = "attempts" + 1
WHERE "id" IN (
  SELECT "id" FROM (
    SELECT c."id", c."nextAttemptAt",
      ROW_NUMBER() OVER (PARTITION BY t."id" ORDER BY c."nextAttemptAt", c."id") + COALESCE(f."value"::integer, 0) AS "slot"
    FROM "Trigger" t
    CROSS JOIN LATERAL (
      SELECT r."id", r."nextAttemptAt" FROM "TriggerAfterRun" r
      WHERE r."status" = 'PENDING' AND r."triggerId" = t."id" AND r."nextAttemptAt" <= $3::bigint
        AND (r."leaseUntil" IS NULL OR r."leaseUntil" < $3::bigint)
      ORDER BY r."nextAttemptAt" LIMIT $4
      FOR UPDATE SKIP LOCKED) c
    LEFT JOIN jsonb_each_text($5::jsonb) f ON f."key" = t."id") ranked
  WHERE "slot" <= $4
  ORDER BY "slot", "nextAttemptAt"
  LIMIT $6)
RETURNING "id", "triggerId", "event", "attempts", "revision"`;

const SQLITE_CLAIM = `
UPDATE "TriggerAfterRun" SET "leaseOwner" = ?, "leaseUntil" = ?, "attempts" = "attempts" + 1
WHERE "id" IN (
  SELECT "id" FROM (
    SELECT c."id", c."nextAttemptAt",
      ROW_NUMBER() OVER (PARTITION BY t."id" ORDER BY c."nextAttemptAt", c."id") + COALESCE(f."value", 0) AS "slot"
    FROM "Trigger" t
    JOIN "TriggerAfterRun" c ON c."id" IN (
      SELECT r."id" FROM "TriggerAfterRun" r
      WHERE r."status" = 'PENDING' AND r."triggerId" = t."id" AND r."nextAttemptAt" <= ?
        AND (r."leaseUntil" IS NULL OR r."leaseUntil" < ?)
      ORDER BY r."nextAttemptAt" LIMIT ?)
    LEFT JOIN json_each(?) f ON f."key" = t."id")
  WHERE "slot" <= ?
  ORDER BY "slot", "nextAttemptAt"
  LIMIT ?)
RETURNING "id", "triggerId", "event", "attempts", "revision"`;

/*
 * Counts the pending runs per trigger, with the earliest next attempt of each, and, in the same
 * snapshot, which of the given run ids (a JSON array) are stored.
 */
const POSTGRES_COUNT = `
SELECT "triggerId", COUNT(*) AS "pending", MIN("nextAttemptAt") AS "next", NULL AS "seen"
FROM "TriggerAfterRun" WHERE "status" = 'PENDING' GROUP BY "triggerId"
UNION ALL
SELECT "triggerId", NULL, NULL, "id" FROM "TriggerAfterRun" WHERE "id" IN (SELECT jsonb_array_elements_text($1::jsonb))`;

const SQLITE_COUNT = `
SELECT "triggerId", COUNT(*) AS "pending", MIN("nextAttemptAt") AS "next", NULL AS "seen"
FROM "TriggerAfterRun" WHERE "status" = 'PENDING' GROUP BY "triggerId"
UNION ALL
SELECT "triggerId", NULL, NULL, "id" FROM "TriggerAfterRun" WHERE "id" IN (SELECT "value" FROM json_each(?))`;

/** The columns of a new run, with their PostgreSQL types. */
const NEW_RUN_COLUMNS = [
  ["id", "text"],
  ["triggerId", "text"],
  ["action", "text"],
  ["channel", "text"],
  ["clientId", "text"],
  ["revision", "integer"],
  ["event", "jsonb"],
  ["status", "text"],
  ["nextAttemptAt", "bigint"],
  ["log", "jsonb"],
  ["createdAt", "timestamp(3)"],
  ["updatedAt", "timestamp(3)"],
] as const;

/** A run to store, its values in {@link NEW_RUN_COLUMNS} order. */
type NewRow = unknown[];

/**
 * `rows` tuples of placeholders for `columns`, as `VALUES` takes them: `?` on SQLite, numbered and
 * cast to each column's type on PostgreSQL (from `$<first>`).
 */
function valuesTuples(columns: readonly (readonly [name: string, type: string])[], rows: number, postgres: boolean, first = 1): string {
  const tuples: string[] = [];
  for (let row = 0; row < rows; row++) {
    const base = first + row * columns.length;
    tuples.push(`(${columns.map(([, type], i) => (postgres ? `$${base + i}::${type}` : "?")).join(", ")})`);
  }
  return tuples.join(", ");
}

/** One multi-row INSERT of `rows` new runs (parameters: each row's {@link NEW_RUN_COLUMNS}, from `$<first>` on PostgreSQL). */
function insertRunsSql(provider: "sqlite" | "postgresql", rows: number, first = 1): string {
  const names = NEW_RUN_COLUMNS.map(([name]) => `"${name}"`).join(", ");
  return `INSERT INTO "TriggerAfterRun" (${names}) VALUES ${valuesTuples(NEW_RUN_COLUMNS, rows, provider === "postgresql", first)}`;
}

/** The columns an attempt's outcome sets in its run, with their PostgreSQL types. */
const RUN_OUTCOME_COLUMNS = [
  ["runId", "text"],
  ["status", "text"],
  ["nextAttemptAt", "bigint"],
  ["durationMs", "double precision"],
  ["error", "text"],
  ["log", "jsonb"],
  ["output", "jsonb"],
  ["truncated", "boolean"],
  ["updatedAt", "timestamp(3)"],
] as const;

/** The values of an attempt's outcome: its run's columns, then those only its attempt record has. */
const OUTCOME_COLUMNS = [...RUN_OUTCOME_COLUMNS, ["startedAt", "timestamp(3)"], ["outcome", "text"], ["requests", "jsonb"]] as const;

/** A record's number: after the run's records so far (retries continue the numbering). */
const NEXT_NUMBER = `COALESCE((SELECT MAX(a."number") FROM "TriggerAfterAttempt" a WHERE a."runId" = v."runId"), 0) + 1`;

/** Stores the attempts' records, as `INSERT ... SELECT` from the outcome values `v` joined with `held` (the runs still held). */
function insertAttemptsSql(held: string): string {
  const columns = ["startedAt", "durationMs", "outcome", "error", "requests"];
  // `WHERE true`: SQLite reads `ON CONFLICT` after a join as part of it otherwise. No conflict is expected (the run is held).
  return `INSERT INTO "TriggerAfterAttempt" ("runId", "number", ${columns.map((name) => `"${name}"`).join(", ")})
SELECT v."runId", ${NEXT_NUMBER}, ${columns.map((name) => `v."${name}"`).join(", ")} FROM v JOIN ${held} WHERE true
ON CONFLICT ("runId", "number") DO NOTHING`;
}

/**
 * Stores the outcomes of `rows` attempts, each only while `owner` still holds the run (parameters:
 * each row's {@link OUTCOME_COLUMNS}, then the owner), with each attempt's record, and deletes the
 * records of those runs beyond the newest `kept`; returns the ids stored. PostgreSQL: one statement
 * (data-modifying `WITH`), one round trip. SQLite: the record's INSERT, the trim and the run's
 * UPDATE, to run in one transaction (in-process, and short: the database's write lock, one for the
 * whole file, is held briefly).
 */
function storeOutcomesSql(
  provider: "sqlite" | "postgresql",
  rows: number,
  kept: number,
): { update: string; sqlite?: { insert: string; trim: string } } {
  if (!Number.isInteger(kept) || kept < 1) throw new Error(`attemptsKept must be a positive integer, not ${kept}`);
  const postgres = provider === "postgresql";
  const names = OUTCOME_COLUMNS.map(([name]) => `"${name}"`).join(", ");
  const owner = postgres ? `$${rows * OUTCOME_COLUMNS.length + 1}` : "?";
  const set = RUN_OUTCOME_COLUMNS.slice(1)
    .map(([name]) => `"${name}" = v."${name}"`)
    .join(", ");
  const values = `v(${names}) AS (VALUES ${valuesTuples(OUTCOME_COLUMNS, rows, postgres)})`;
  const update = `UPDATE "TriggerAfterRun" SET ${set}, "leaseOwner" = NULL, "leaseUntil" = NULL
FROM v WHERE "TriggerAfterRun"."id" = v."runId" AND "TriggerAfterRun"."leaseOwner" = ${owner}
RETURNING "TriggerAfterRun"."id"`;
  const newest = `(SELECT MAX(b."number") FROM "TriggerAfterAttempt" b WHERE b."runId" = t."runId")`;
  if (postgres) {
    // Every part sees the records as they were before the statement: the new one is numbered newest + 1.
    return {
      update: `WITH ${values},
done AS (${update}),
logged AS (${insertAttemptsSql(`done ON done."id" = v."runId"`)}),
trimmed AS (DELETE FROM "TriggerAfterAttempt" t USING done WHERE t."runId" = done."id" AND t."number" <= ${newest} + 1 - ${kept})
SELECT "id" FROM done`,
    };
  }
  return {
    update: `WITH ${values} ${update}`,
    sqlite: {
      // Before the UPDATE, which gives the run up: the record is stored for the runs `owner` holds (parameters: values, owner).
      insert: `WITH ${values} ${insertAttemptsSql(`"TriggerAfterRun" r ON r."id" = v."runId" AND r."leaseOwner" = ${owner}`)}`,
      // After the INSERT, so the newest is the new record (parameters: values).
      trim: `WITH ${values} DELETE FROM "TriggerAfterAttempt" AS t WHERE t."runId" IN (SELECT "runId" FROM v) AND t."number" <= ${newest} - ${kept}`,
    },
  };
}

/** Runs whose attempt records are read together ({@link AfterRunQueue.attemptHistory}). */
const MAX_HISTORY_BATCH = 500;

/** A run reserved here whose row the last count may not have seen. */
interface Reservation {
  readonly triggerId: string;
  /** Its row is known to be committed (so any count started since sees it, pending or finished). */
  committed: boolean;
}

/**
 * The durable queue of AFTER trigger runs, which is also their record: one row per run and event,
 * written before the event is delivered (with the event's history entry when the channel keeps
 * history, else in batches with other events' runs), claimed by one instance at a time for each
 * attempt, and kept once finished as the trigger's latest runs.
 *
 * Bounded per trigger and in all: an event whose runs would pass either bound is refused before it
 * is delivered ({@link AfterRunQueue.followUp}), so one trigger's backlog (a receiver that is down)
 * never costs another trigger a run, and nothing acknowledged is dropped. The bounds are checked
 * against the pending runs as last counted over every instance ({@link AfterRunQueue.recount}) plus
 * the runs reserved here that the count did not see.
 */
export class AfterRunQueue {
  /** Pending runs per trigger, as last counted. */
  private counted = new Map<string, number>();
  private countedTotal = 0;
  /** The earliest next attempt of each trigger's pending runs, as last counted (milliseconds since the epoch). */
  private earliest = new Map<string, number>();
  /** Runs reserved here that the last count did not see, by run id. */
  private readonly unconfirmed = new Map<string, Reservation>();
  private readonly unconfirmedPerTrigger = new Map<string, number>();
  private counting: Promise<number> | undefined;
  /** Refusals already logged (`cause` or `cause:triggerId`); logged again once the bound has room again. */
  private readonly refusing = new Set<string>();
  private writes: { rows: NewRow[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private writing = false;
  private readonly queuedListeners: (() => void)[] = [];
  private readonly refusedListeners: ((cause: AfterRefusalCause) => void)[] = [];
  /** Runs whose attempt records were asked for in this turn of the event loop, with who asked. */
  private historyWanted = new Map<string, { resolve: (records: AfterAttemptRecord[]) => void; reject: (error: unknown) => void }[]>();
  private readonly claimSql: string;
  private readonly countSql: string;
  private readonly pruneSql: string;

  constructor(
    private readonly prisma: Prisma,
    private readonly provider: "sqlite" | "postgresql",
    private readonly triggers: TriggerStore,
    private readonly logger: Logger,
    private readonly options: AfterRunQueueOptions,
  ) {
    this.claimSql = provider === "postgresql" ? POSTGRES_CLAIM : SQLITE_CLAIM;
    this.countSql = provider === "postgresql" ? POSTGRES_COUNT : SQLITE_COUNT;
    const newest =
      provider === "postgresql"
        ? `SELECT "id" FROM "TriggerAfterRun" WHERE "triggerId" = $1 AND "status" <> 'PENDING' ORDER BY "createdAt" DESC, "id" DESC OFFSET $2`
        : `SELECT "id" FROM "TriggerAfterRun" WHERE "triggerId" = ? AND "status" <> 'PENDING' ORDER BY "createdAt" DESC, "id" DESC LIMIT -1 OFFSET ?`;
    this.pruneSql = `DELETE FROM "TriggerAfterRun" WHERE "id" IN (${newest})`;
  }

  /** Calls `listener` whenever runs were stored here, so a worker can start them at once. */
  onQueued(listener: () => void): void {
    this.queuedListeners.push(listener);
  }

  /** Calls `listener` for every event whose AFTER runs could not be stored, with the cause. */
  onRefused(listener: (cause: AfterRefusalCause) => void): void {
    this.refusedListeners.push(listener);
  }

  /**
   * Reserves room for the runs of the active AFTER triggers matching an event, to be stored before it
   * is delivered; null when there are none. When a trigger's share (`maxPendingPerTrigger`) or the
   * queue (`maxPending`) has no room for them, the event is refused with `SERVICE_UNAVAILABLE`
   * (`reason` `trigger_share` or `queue_full`, and `retryAfterMs`: the soonest room can be made), so
   * nobody receives it; a LEAVE, which cannot be refused, is delivered without its runs.
   */
  followUp(event: ChannelEvent): DeliveryFollowUp | null {
    const triggers = this.triggers.matching(event.channel, event.action, "AFTER");
    if (triggers.length === 0) return null;
    if (this.refuses(event, triggers)) return null;
    const ids = triggers.map(() => sortableId());
    for (const [i, id] of ids.entries()) this.reserve(id, triggers[i]!.config.id, false);
    const rows = (delivered: ChannelEvent): NewRow[] => {
      const now = Date.now();
      const createdAt = storedTime(new Date(now), this.provider === "postgresql");
      // JSON text exactly as delivered: `"__proto__"` keys in a payload are kept.
      const stored = JSON.stringify(delivered);
      return triggers.map((trigger, i) => [
        ids[i],
        trigger.config.id,
        delivered.action,
        delivered.channel,
        delivered.client.id,
        trigger.config.revision,
        stored,
        "PENDING",
        now,
        "[]",
        createdAt,
        createdAt,
      ]);
    };
    let settled = false;
    const committed = () => {
      settled = true;
      for (const id of ids) {
        const reservation = this.unconfirmed.get(id);
        if (reservation) reservation.committed = true;
      }
    };
    const release = (error?: unknown) => {
      if (settled) return;
      settled = true;
      for (const id of ids) this.unreserve(id);
      if (error !== undefined && isDatabaseUnreachable(error)) this.refused("unavailable");
    };
    return {
      insert: (delivered, from) => {
        const values = rows(delivered);
        return { sql: insertRunsSql(this.provider, values.length, from), params: values.flat() };
      },
      stored: () => {
        committed();
        this.queued();
      },
      store: async (delivered) => {
        try {
          await this.enqueue(rows(delivered));
          committed();
        } catch (error) {
          if (event.action !== "LEAVE") throw error;
          release(error);
          this.logger.warn(
            { channel: event.channel, eventId: event.id },
            "a LEAVE was delivered without its AFTER trigger runs (not stored)",
          );
        }
      },
      release,
    };
  }

  /** Pending runs over every instance, as last counted plus those queued here since. */
  get pendingRuns(): number {
    return this.countedTotal + this.unconfirmed.size;
  }

  /**
   * Pending runs of each AFTER trigger (and of any other trigger that still has some), over every
   * instance, as last counted plus those queued here since.
   */
  pendingByTrigger(): Map<string, number> {
    const pending = new Map<string, number>();
    for (const config of this.triggers.list()) {
      const count = this.pendingOf(config.id);
      if (config.timing === "AFTER" || count > 0) pending.set(config.id, count);
    }
    return pending;
  }

  /**
   * Counts the pending runs again, per trigger (other instances add and finish runs too). Runs
   * reserved here that the count saw, or that were committed before it started, are no longer
   * counted apart; so on one instance the count is exact. Concurrent calls share one count.
   */
  recount(): Promise<number> {
    this.counting ??= this.count().finally(() => (this.counting = undefined));
    return this.counting;
  }

  /**
   * Takes up to `limit` due runs for `owner`, leased for one attempt each, fairly across triggers: at
   * most `perTrigger` of one trigger together with its attempts under way on this instance
   * (`inFlight`, by trigger id), each trigger's next run before any trigger's further ones, and a
   * trigger with fewer attempts under way first.
   */
  async claim(owner: string, limit: number, perTrigger: number, inFlight: ReadonlyMap<string, number>): Promise<ClaimedRun[]> {
    const now = Date.now();
    const leaseUntil = now + this.options.leaseMs;
    const busy = JSON.stringify(Object.fromEntries(inFlight));
    const args =
      this.provider === "postgresql"
        ? [owner, leaseUntil, now, perTrigger, busy, limit]
        : [owner, leaseUntil, now, now, perTrigger, busy, perTrigger, limit];
    const rows = await this.prisma.$queryRawUnsafe<
      { id: string; triggerId: string; event: unknown; attempts: unknown; revision: unknown }[]
    >(this.claimSql, ...args);
    return rows.map((row) => ({
      id: row.id,
      triggerId: row.triggerId,
      event: (typeof row.event === "string" ? JSON.parse(row.event) : row.event) as ChannelEvent,
      attempt: Number(row.attempts),
      revision: Number(row.revision),
    }));
  }

  /**
   * Stores how attempts ended, for the runs `owner` still holds, in batches of one statement each.
   * Returns the ids stored; a run missing from it was taken over by another instance meanwhile.
   */
  async finish(owner: string, attempts: readonly FinishedAttempt[]): Promise<Set<string>> {
    const postgres = this.provider === "postgresql";
    const now = storedTime(new Date(), postgres);
    const stored = new Set<string>();
    for (let from = 0; from < attempts.length; from += MAX_BATCH_ROWS) {
      const batch = attempts.slice(from, from + MAX_BATCH_ROWS);
      const values = batch.flatMap(({ id, result }) => {
        const { output } = result;
        return [
          id,
          result.status,
          result.nextAttemptAt,
          result.durationMs,
          result.error,
          // JSON text exactly as given: `"__proto__"` keys are kept.
          JSON.stringify(result.log),
          output.json,
          postgres ? output.truncated : output.truncated ? 1 : 0,
          now,
          storedTime(new Date(result.startedAt), postgres),
          result.status === "DELIVERED" ? "DELIVERED" : "FAILED",
          JSON.stringify(result.requests),
        ];
      });
      const sql = storeOutcomesSql(this.provider, batch.length, this.options.attemptsKept);
      const update = this.prisma.$queryRawUnsafe<{ id: string }[]>(sql.update, ...values, owner);
      const rows = sql.sqlite
        ? (
            await this.prisma.$transaction([
              this.prisma.$executeRawUnsafe(sql.sqlite.insert, ...values, owner),
              this.prisma.$executeRawUnsafe(sql.sqlite.trim, ...values),
              update,
            ])
          )[2]
        : await update;
      for (const row of rows) stored.add(row.id);
    }
    return stored;
  }

  /**
   * The records of a run's latest finished attempts (at most `attemptsKept`), oldest first. The runs
   * asked for in one turn of the event loop (a list of runs) are read with one query.
   */
  attemptHistory(runId: string): Promise<AfterAttemptRecord[]> {
    return new Promise((resolve, reject) => {
      if (this.historyWanted.size === 0) setImmediate(() => void this.readHistory());
      const waiting = this.historyWanted.get(runId);
      if (waiting) waiting.push({ resolve, reject });
      else this.historyWanted.set(runId, [{ resolve, reject }]);
    });
  }

  private async readHistory(): Promise<void> {
    const wanted = this.historyWanted;
    this.historyWanted = new Map();
    const ids = [...wanted.keys()];
    for (let from = 0; from < ids.length; from += MAX_HISTORY_BATCH) {
      const batch = ids.slice(from, from + MAX_HISTORY_BATCH);
      try {
        const rows = await this.prisma.triggerAfterAttempt.findMany({
          where: { runId: { in: batch } },
          orderBy: [{ runId: "asc" }, { number: "asc" }],
        });
        const byRun = new Map<string, AfterAttemptRecord[]>(batch.map((id) => [id, []]));
        for (const row of rows) byRun.get(row.runId)?.push(toAttemptRecord(row));
        for (const id of batch) for (const waiting of wanted.get(id)!) waiting.resolve(byRun.get(id)!);
      } catch (error) {
        for (const id of batch) for (const waiting of wanted.get(id)!) waiting.reject(error);
      }
    }
  }

  /** Deletes a trigger's finished runs beyond the newest `keepPerTrigger`. */
  async prune(triggerId: string): Promise<void> {
    await this.prisma.$executeRawUnsafe(this.pruneSql, triggerId, this.options.keepPerTrigger);
  }

  /** The latest runs of a trigger, newest first; with `status`, only those in it. */
  async latest(triggerId: string, last: number, status?: AfterRunStatus | null): Promise<AfterRunRecord[]> {
    const rows = await this.prisma.triggerAfterRun.findMany({
      where: { triggerId, ...(status ? { status } : {}) },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: Math.max(0, Math.min(last, Math.max(this.options.keepPerTrigger, 1000))),
    });
    return rows.map(toRecord);
  }

  /** A FAILED run queued again with a fresh set of attempts. `NOT_FOUND` for no such run, `BAD_USER_INPUT` for one not FAILED. */
  async retry(id: string): Promise<AfterRunRecord> {
    // The attempt records stay: the new attempts are numbered after them (and the oldest make room).
    const { count } = await this.prisma.triggerAfterRun.updateMany({
      where: { id, status: "FAILED" },
      data: { status: "PENDING", attempts: 0, nextAttemptAt: BigInt(Date.now()), error: null },
    });
    const row = await this.prisma.triggerAfterRun.findUnique({ where: { id } });
    if (!row) throw new AppError(ErrorCode.NotFound, `No AFTER trigger run with id ${id}`);
    if (count === 0) throw new AppError(ErrorCode.BadUserInput, `Run ${id} is ${row.status}: only a FAILED run can be retried`);
    this.reserve(id, row.triggerId, true);
    this.queued();
    return toRecord(row);
  }

  /** Stores rows together with those of other events waiting at the same time. */
  private enqueue(rows: NewRow[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.writes.push({ rows, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // After the current turn of the event loop, so the runs of events published meanwhile join the batch.
        setImmediate(() => void this.writeBatches());
      }
    });
  }

  private async writeBatches(): Promise<void> {
    while (this.writes.length > 0) {
      const batch: typeof this.writes = [];
      let size = 0;
      while (this.writes.length > 0 && (batch.length === 0 || size + this.writes[0]!.rows.length <= MAX_BATCH_ROWS)) {
        const next = this.writes.shift()!;
        size += next.rows.length;
        batch.push(next);
      }
      try {
        await writeWithKnownOutcome(() => this.insert(batch.flatMap((write) => write.rows)), "the message");
        for (const write of batch) write.resolve();
        this.queued();
      } catch (error) {
        // An outage reaches each sender as SERVICE_UNAVAILABLE and is logged once by the outage log.
        if (!(error instanceof AppError) && !isDatabaseUnreachable(error))
          this.logger.error({ err: error, runs: size }, "could not store AFTER trigger runs");
        for (const write of batch) write.reject(error);
      }
    }
    this.writing = false;
  }

  /** Stores new runs with one raw INSERT (Prisma's createMany costs the delivering thread several times more). */
  private async insert(rows: NewRow[]): Promise<void> {
    for (let from = 0; from < rows.length; from += MAX_BATCH_ROWS) {
      const batch = rows.slice(from, from + MAX_BATCH_ROWS);
      await this.prisma.$executeRawUnsafe(insertRunsSql(this.provider, batch.length), ...batch.flat());
    }
  }

  private queued(): void {
    for (const listener of this.queuedListeners) listener();
  }

  /** Pending runs of one trigger, as last counted plus those reserved here since. */
  private pendingOf(triggerId: string): number {
    return (this.counted.get(triggerId) ?? 0) + (this.unconfirmedPerTrigger.get(triggerId) ?? 0);
  }

  private reserve(id: string, triggerId: string, committed: boolean): void {
    if (this.unconfirmed.has(id)) return;
    this.unconfirmed.set(id, { triggerId, committed });
    this.unconfirmedPerTrigger.set(triggerId, (this.unconfirmedPerTrigger.get(triggerId) ?? 0) + 1);
  }

  private unreserve(id: string): void {
    const reservation = this.unconfirmed.get(id);
    if (!reservation) return;
    this.unconfirmed.delete(id);
    const left = this.unconfirmedPerTrigger.get(reservation.triggerId)! - 1;
    if (left > 0) this.unconfirmedPerTrigger.set(reservation.triggerId, left);
    else this.unconfirmedPerTrigger.delete(reservation.triggerId);
  }

  /**
   * Whether the runs of `triggers` for an event find no room. A refusal is counted, and logged once
   * until the bound has room again; it throws unless the event is a LEAVE.
   */
  private refuses(event: ChannelEvent, triggers: readonly LoadedTrigger[]): boolean {
    const full = triggers.find((trigger) => this.pendingOf(trigger.config.id) >= this.options.maxPendingPerTrigger);
    const cause: AfterRefusalCause | null = full
      ? "trigger_share"
      : this.pendingRuns + triggers.length > this.options.maxPending
        ? "queue_full"
        : null;
    if (cause === null) return false;
    this.refused(cause);
    const triggerId = full?.config.id;
    const key = triggerId ? `${cause}:${triggerId}` : cause;
    if (!this.refusing.has(key)) {
      this.refusing.add(key);
      const setting = full ? "TRIGGER_QUEUE_MAX_PER_TRIGGER" : "TRIGGER_QUEUE_MAX";
      this.logger.warn(
        {
          cause,
          triggerId,
          channel: event.channel,
          action: event.action,
          pending: triggerId ? this.pendingOf(triggerId) : this.pendingRuns,
        },
        `AFTER trigger queue full (${setting}): events whose runs do not fit are refused until it drains`,
      );
    }
    if (event.action === "LEAVE") return true;
    const earliest = triggerId ? this.earliest.get(triggerId) : this.earliest.size > 0 ? Math.min(...this.earliest.values()) : undefined;
    const retryAfterMs = Math.max(this.options.countIntervalMs, Math.ceil((earliest ?? 0) - Date.now()));
    throw new AppError(
      ErrorCode.ServiceUnavailable,
      full
        ? "An after-delivery trigger of this channel has too many runs waiting; try again later"
        : "Too many after-delivery trigger runs are waiting; try again later",
      { reason: cause, retryAfterMs },
    );
  }

  private refused(cause: AfterRefusalCause): void {
    for (const listener of this.refusedListeners) listener(cause);
  }

  private async count(): Promise<number> {
    const seenBefore: string[] = [];
    const inTransit: string[] = [];
    for (const [id, reservation] of this.unconfirmed) (reservation.committed ? seenBefore : inTransit).push(id);
    const rows = await this.prisma.$queryRawUnsafe<{ triggerId: string; pending: unknown; next: unknown; seen: string | null }[]>(
      this.countSql,
      JSON.stringify(inTransit),
    );
    const counted = new Map<string, number>();
    const earliest = new Map<string, number>();
    let total = 0;
    for (const row of rows) {
      if (row.seen !== null) {
        this.unreserve(row.seen);
        continue;
      }
      const pending = Number(row.pending);
      counted.set(row.triggerId, pending);
      total += pending;
      if (row.next !== null) earliest.set(row.triggerId, Number(row.next));
    }
    // Committed before the count started: counted if still pending.
    for (const id of seenBefore) this.unreserve(id);
    this.counted = counted;
    this.countedTotal = total;
    this.earliest = earliest;
    for (const key of this.refusing) {
      const [cause, triggerId] = key.split(":");
      const full =
        cause === "queue_full"
          ? this.pendingRuns >= this.options.maxPending
          : this.pendingOf(triggerId!) >= this.options.maxPendingPerTrigger;
      if (!full) this.refusing.delete(key);
    }
    return this.pendingRuns;
  }
}

/** The run record of an attempt whose outcome was just stored, as `Trigger.runs` would list it. */
export function attemptRecord(run: ClaimedRun, result: AttemptResult): AfterRunRecord {
  const { event } = run;
  const input = inputOf(event);
  const { output } = result;
  return {
    id: run.id,
    triggerId: run.triggerId,
    action: event.action,
    channel: event.channel,
    outcome: result.status,
    attempts: run.attempt,
    nextAttemptAt: result.nextAttemptAt === null ? null : new Date(result.nextAttemptAt),
    durationMs: result.durationMs,
    error: result.error,
    log: result.log,
    clientId: event.client.id,
    revision: run.revision,
    input: input.value,
    output: output.value,
    truncated: input.truncated || output.truncated,
    createdAt: new Date(event.createdAt),
  };
}

/** What a run's stack got from its event, capped as runs keep it. */
function inputOf(event: ChannelEvent): CappedJson {
  return capJson({ payload: event.payload ?? null, commandOptions: event.commandOptions ?? null });
}

/** The requests of an attempt's record, as stored (JSON written by {@link AfterRunQueue.finish}). */
function storedRequests(value: unknown): AfterAttemptRequest[] {
  const list = typeof value === "string" ? (JSON.parse(value) as unknown) : value;
  return Array.isArray(list) ? (list as AfterAttemptRequest[]) : [];
}

function toAttemptRecord(row: AttemptRow): AfterAttemptRecord {
  return {
    runId: row.runId,
    number: row.number,
    startedAt: row.startedAt,
    durationMs: row.durationMs,
    outcome: row.outcome === "DELIVERED" ? "DELIVERED" : "FAILED",
    error: row.error,
    requests: storedRequests(row.requests),
  };
}

function toRecord(row: Row): AfterRunRecord {
  const input = inputOf(row.event as unknown as ChannelEvent);
  return {
    id: row.id,
    triggerId: row.triggerId,
    action: row.action as RealtimeAction,
    channel: row.channel,
    outcome: row.status as AfterRunStatus,
    attempts: row.attempts,
    nextAttemptAt: row.nextAttemptAt === null ? null : new Date(Number(row.nextAttemptAt)),
    durationMs: row.durationMs,
    error: row.error,
    log: row.log as unknown[],
    clientId: row.clientId,
    revision: row.revision,
    input: input.value,
    output: row.output,
    truncated: row.truncated || input.truncated,
    createdAt: row.createdAt,
  };
}
