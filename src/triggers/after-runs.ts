import { type Prisma, storedTime } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import { sortableId } from "../ids.js";
import type { Logger } from "../logger.js";
import type { DeliveryFollowUp } from "../realtime/history.js";
import type { ChannelEvent, RealtimeAction } from "../realtime/types.js";
import { type CappedJson, capJson, type TriggerRunRecord } from "./runs.js";
import type { TriggerStore } from "./store.js";

/** Where an AFTER run stands: waiting for its (next) attempt, delivered, or failed for good. */
export const AFTER_RUN_STATUSES = ["PENDING", "DELIVERED", "FAILED"] as const;
export type AfterRunStatus = (typeof AFTER_RUN_STATUSES)[number];

/**
 * One run of an AFTER trigger on a delivered event, as listed in `Trigger.runs`: a run record whose
 * duration, error, log and output are the latest attempt's, with the queue's status and attempts.
 */
export interface AfterRunRecord extends Omit<TriggerRunRecord, "outcome"> {
  readonly outcome: AfterRunStatus;
  /** Attempts started so far. */
  readonly attempts: number;
  /** When the next attempt may start; null once the run is over. */
  readonly nextAttemptAt: Date | null;
}

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
}

/** The outcome of one run's attempt, to store. */
export interface FinishedAttempt {
  readonly id: string;
  readonly result: AttemptResult;
}

/** Settings of an {@link AfterRunQueue}. */
export interface AfterRunQueueOptions {
  /** Pending runs at most (over every instance); new runs past it are refused with a logged error. */
  readonly maxPending: number;
  /** Finished runs kept per trigger; older ones are deleted. */
  readonly keepPerTrigger: number;
  /** How long a claimed run stays with its instance before another may take it over (a crashed instance's runs). */
  readonly leaseMs: number;
}

type Row = Awaited<ReturnType<Prisma["triggerAfterRun"]["findFirstOrThrow"]>>;

/** Runs written per statement when several events' runs are stored together. */
const MAX_BATCH_ROWS = 500;

/*
 * Claims due runs for one attempt in one statement, so each is taken by exactly one instance: the
 * run is PENDING, due, and not leased (or its lease ran out: the instance that had it is gone).
 * On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets instances claim side by side without waiting on each
 * other; SQLite runs the statement under its single write lock.
 */
const POSTGRES_CLAIM = `
UPDATE "TriggerAfterRun" SET "leaseOwner" = $1, "leaseUntil" = $2::bigint, "attempts" = "attempts" + 1
WHERE "id" IN (
  SELECT "id" FROM "TriggerAfterRun"
  WHERE "status" = 'PENDING' AND "nextAttemptAt" <= $3::bigint AND ("leaseUntil" IS NULL OR "leaseUntil" < $3::bigint)
  ORDER BY "nextAttemptAt" LIMIT $4
  FOR UPDATE SKIP LOCKED)
RETURNING "id", "triggerId", "event", "attempts", "revision"`;

const SQLITE_CLAIM = `
UPDATE "TriggerAfterRun" SET "leaseOwner" = ?, "leaseUntil" = ?, "attempts" = "attempts" + 1
WHERE "id" IN (
  SELECT "id" FROM "TriggerAfterRun"
  WHERE "status" = 'PENDING' AND "nextAttemptAt" <= ? AND ("leaseUntil" IS NULL OR "leaseUntil" < ?)
  ORDER BY "nextAttemptAt" LIMIT ?)
RETURNING "id", "triggerId", "event", "attempts", "revision"`;

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

/** The columns an attempt's outcome sets, with their PostgreSQL types. */
const OUTCOME_COLUMNS = [
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

/**
 * One statement storing the outcomes of `rows` attempts, each only while `owner` still holds the run
 * (parameters: each row's {@link OUTCOME_COLUMNS}, then the owner); returns the ids stored. One short
 * statement, so the database's write lock (SQLite has one for the whole file) is held briefly.
 */
function storeOutcomesSql(provider: "sqlite" | "postgresql", rows: number): string {
  const postgres = provider === "postgresql";
  const names = OUTCOME_COLUMNS.map(([name]) => `"${name}"`).join(", ");
  const owner = postgres ? `$${rows * OUTCOME_COLUMNS.length + 1}` : "?";
  const set = OUTCOME_COLUMNS.slice(1)
    .map(([name]) => `"${name}" = v."${name}"`)
    .join(", ");
  return `WITH v(${names}) AS (VALUES ${valuesTuples(OUTCOME_COLUMNS, rows, postgres)})
UPDATE "TriggerAfterRun" SET ${set}, "leaseOwner" = NULL, "leaseUntil" = NULL
FROM v WHERE "TriggerAfterRun"."id" = v."runId" AND "TriggerAfterRun"."leaseOwner" = ${owner}
RETURNING "TriggerAfterRun"."id"`;
}

/**
 * The durable queue of AFTER trigger runs, which is also their record: one row per run and event,
 * written before the event's sender is acknowledged (with the event's history entry when the channel
 * keeps history, else in batches with other events' runs), claimed by one instance at a time for
 * each attempt, and kept once finished as the trigger's latest runs.
 */
export class AfterRunQueue {
  /** Pending runs, as last counted plus those queued here since. */
  private pending = 0;
  private writes: { rows: NewRow[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private writing = false;
  private readonly queuedListeners: (() => void)[] = [];
  private readonly claimSql: string;
  private readonly pruneSql: string;

  constructor(
    private readonly prisma: Prisma,
    private readonly provider: "sqlite" | "postgresql",
    private readonly triggers: TriggerStore,
    private readonly logger: Logger,
    private readonly options: AfterRunQueueOptions,
  ) {
    this.claimSql = provider === "postgresql" ? POSTGRES_CLAIM : SQLITE_CLAIM;
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

  /**
   * The runs of the active AFTER triggers matching a delivered event, ready to be stored; null when
   * there are none. Past `maxPending`, the runs are refused and logged as an error.
   */
  followUp(event: ChannelEvent): DeliveryFollowUp | null {
    const triggers = this.triggers.matching(event.channel, event.action, "AFTER");
    if (triggers.length === 0) return null;
    if (this.pending + triggers.length > this.options.maxPending) {
      this.logger.error(
        {
          channel: event.channel,
          action: event.action,
          eventId: event.id,
          triggers: triggers.map((t) => t.config.id),
          pending: this.pending,
        },
        "AFTER trigger queue is full (TRIGGER_QUEUE_MAX): runs refused",
      );
      return null;
    }
    this.pending += triggers.length;
    const now = Date.now();
    const createdAt = storedTime(new Date(now), this.provider === "postgresql");
    // JSON text exactly as delivered: `"__proto__"` keys in a payload are kept.
    const stored = JSON.stringify(event);
    const rows: NewRow[] = triggers.map((trigger) => [
      sortableId(),
      trigger.config.id,
      event.action,
      event.channel,
      event.client.id,
      trigger.config.revision,
      stored,
      "PENDING",
      now,
      "[]",
      createdAt,
      createdAt,
    ]);
    return {
      insert: (from) => ({ sql: insertRunsSql(this.provider, rows.length, from), params: rows.flat() }),
      stored: () => this.queued(),
      store: () => this.enqueue(rows),
    };
  }

  /** Pending runs over every instance, as last counted plus those queued here since. */
  get pendingRuns(): number {
    return this.pending;
  }

  /** Counts the pending runs again (other instances add and finish runs too). */
  async recount(): Promise<number> {
    this.pending = await this.prisma.triggerAfterRun.count({ where: { status: "PENDING" } });
    return this.pending;
  }

  /** Takes up to `limit` due runs for `owner`, leased for one attempt each. */
  async claim(owner: string, limit: number): Promise<ClaimedRun[]> {
    const now = Date.now();
    const leaseUntil = now + this.options.leaseMs;
    const args = this.provider === "postgresql" ? [owner, leaseUntil, now, limit] : [owner, leaseUntil, now, now, limit];
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
        ];
      });
      const rows = await this.prisma.$queryRawUnsafe<{ id: string }[]>(storeOutcomesSql(this.provider, batch.length), ...values, owner);
      for (const row of rows) stored.add(row.id);
    }
    return stored;
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
    const { count } = await this.prisma.triggerAfterRun.updateMany({
      where: { id, status: "FAILED" },
      data: { status: "PENDING", attempts: 0, nextAttemptAt: BigInt(Date.now()), error: null },
    });
    const row = await this.prisma.triggerAfterRun.findUnique({ where: { id } });
    if (!row) throw new AppError(ErrorCode.NotFound, `No AFTER trigger run with id ${id}`);
    if (count === 0) throw new AppError(ErrorCode.BadUserInput, `Run ${id} is ${row.status}: only a FAILED run can be retried`);
    this.pending++;
    this.queued();
    return toRecord(row);
  }

  /** Stores rows together with those of other events waiting at the same time. */
  private enqueue(rows: NewRow[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.writes.push({ rows, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // After the current turn of the event loop: the event reaches its subscribers' sockets first
        // (an SQLite write blocks the thread), and the runs of events published meanwhile join the batch.
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
        await this.insert(batch.flatMap((write) => write.rows));
        for (const write of batch) write.resolve();
        this.queued();
      } catch (error) {
        this.pending = Math.max(0, this.pending - size);
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
