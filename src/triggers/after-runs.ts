import { exactJson, type Prisma, type PrismaTransaction } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import { sortableId } from "../ids.js";
import type { Logger } from "../logger.js";
import type { DeliveryFollowUp } from "../realtime/history.js";
import type { ChannelEvent, RealtimeAction } from "../realtime/types.js";
import { capJson, type TriggerRunRecord } from "./runs.js";
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
}

/** How an attempt ended, as {@link AfterRunQueue.finish} stores it. */
export interface AttemptResult {
  readonly status: AfterRunStatus;
  /** For PENDING: when the next attempt may start (milliseconds since the epoch). */
  readonly nextAttemptAt: number | null;
  readonly durationMs: number;
  readonly error: string | null;
  readonly log: unknown[];
  readonly output: unknown;
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
type NewRow = Extract<NonNullable<Parameters<Prisma["triggerAfterRun"]["createMany"]>[0]>["data"], { id: string }>;

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
RETURNING "id", "triggerId", "event", "attempts"`;

const SQLITE_CLAIM = `
UPDATE "TriggerAfterRun" SET "leaseOwner" = ?, "leaseUntil" = ?, "attempts" = "attempts" + 1
WHERE "id" IN (
  SELECT "id" FROM "TriggerAfterRun"
  WHERE "status" = 'PENDING' AND "nextAttemptAt" <= ? AND ("leaseUntil" IS NULL OR "leaseUntil" < ?)
  ORDER BY "nextAttemptAt" LIMIT ?)
RETURNING "id", "triggerId", "event", "attempts"`;

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

  constructor(
    private readonly prisma: Prisma,
    private readonly provider: "sqlite" | "postgresql",
    private readonly triggers: TriggerStore,
    private readonly logger: Logger,
    private readonly options: AfterRunQueueOptions,
  ) {
    this.claimSql = provider === "postgresql" ? POSTGRES_CLAIM : SQLITE_CLAIM;
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
    const now = BigInt(Date.now());
    const stored = exactJson(event) as object;
    const rows: NewRow[] = triggers.map((trigger) => ({
      id: sortableId(),
      triggerId: trigger.config.id,
      action: event.action,
      channel: event.channel,
      clientId: event.client.id,
      revision: trigger.config.revision,
      event: stored,
      status: "PENDING",
      nextAttemptAt: now,
      log: [],
    }));
    return {
      write: async (tx: PrismaTransaction) => {
        await tx.triggerAfterRun.createMany({ data: rows });
        this.queued();
      },
      store: () => this.enqueue(rows),
    };
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
    const rows = await this.prisma.$queryRawUnsafe<{ id: string; triggerId: string; event: unknown; attempts: unknown }[]>(
      this.claimSql,
      ...args,
    );
    return rows.map((row) => ({
      id: row.id,
      triggerId: row.triggerId,
      event: (typeof row.event === "string" ? JSON.parse(row.event) : row.event) as ChannelEvent,
      attempt: Number(row.attempts),
    }));
  }

  /** Stores how an attempt ended, if `owner` still holds the run. Returns false when it no longer does. */
  async finish(id: string, owner: string, result: AttemptResult): Promise<boolean> {
    const output = capJson(result.output);
    const { count } = await this.prisma.triggerAfterRun.updateMany({
      where: { id, leaseOwner: owner },
      data: {
        status: result.status,
        nextAttemptAt: result.nextAttemptAt === null ? null : BigInt(result.nextAttemptAt),
        leaseOwner: null,
        leaseUntil: null,
        durationMs: result.durationMs,
        error: result.error,
        log: exactJson(result.log) as object,
        output: exactJson(output.value) as object,
        truncated: output.truncated,
      },
    });
    if (count > 0 && result.status !== "PENDING") this.pending = Math.max(0, this.pending - 1);
    return count > 0;
  }

  /** Deletes a trigger's finished runs beyond the newest `keepPerTrigger`. */
  async prune(triggerId: string): Promise<void> {
    const excess = await this.prisma.triggerAfterRun.findMany({
      where: { triggerId, status: { not: "PENDING" } },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      skip: this.options.keepPerTrigger,
      select: { id: true },
    });
    if (excess.length > 0) await this.prisma.triggerAfterRun.deleteMany({ where: { id: { in: excess.map((run) => run.id) } } });
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
        await this.prisma.triggerAfterRun.createMany({ data: batch.flatMap((write) => write.rows) });
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

  private queued(): void {
    for (const listener of this.queuedListeners) listener();
  }
}

function toRecord(row: Row): AfterRunRecord {
  const event = row.event as unknown as ChannelEvent;
  const input = capJson({ payload: event.payload ?? null, commandOptions: event.commandOptions ?? null });
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
