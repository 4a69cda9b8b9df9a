import { isDatabaseUnreachable, type Prisma, storedTime } from "../../db.js";
import { AppError, ErrorCode } from "../../errors.js";
import { sortableId } from "../../ids.js";
import type { Logger } from "../../logger.js";
import type { OutageLog } from "../../observability/outages.js";
import { closableIterator } from "../../realtime/iterators.js";
import type { RealtimeAction } from "../../realtime/types.js";
import type { TriggerOutcome } from "./engine.js";
import { type AfterRunRecord, capJson, type TriggerRunRecord, type TriggerRunReport } from "./records.js";

/** Runs queued at most for one live stream; a stream that falls further behind ends with `SLOW_CONSUMER`. */
export const MAX_QUEUED_LIVE_RUNS = 1000;

/** Settings for {@link TriggerRunRecorder}. */
export interface RunRecorderOptions {
  /** Runs kept per trigger; older ones are deleted. */
  readonly keepPerTrigger: number;
  /** How often buffered runs are written, in milliseconds. */
  readonly flushIntervalMs: number;
  /**
   * Buffered runs at most. A trigger's runs beyond its newest `keepPerTrigger` are never kept (a new
   * run takes the place of its oldest buffered one), so only when more triggers are busy than this
   * holds is a new run discarded.
   */
  readonly maxBuffered: number;
  /**
   * Told when runs could not be written because the database was unreachable (those runs are not
   * recorded): the outage is logged there once, not once per batch.
   */
  readonly databaseOutage?: OutageLog;
}

/** A run as buffered: its report whole (capped only once it is shown or written), with its id and time. */
interface BufferedRun {
  readonly report: TriggerRunReport;
  readonly triggerId: string;
  readonly id: string;
  readonly createdAt: Date;
  /** The run as shown and stored, made on first use. */
  record?: TriggerRunRecord;
  /** The JSON text stored for the record's input and output (null for none), made with it. */
  stored?: { readonly input: string | null; readonly output: string | null };
}

/** The run as shown and stored: input and output capped. */
function recordOf(run: BufferedRun): TriggerRunRecord {
  if (!run.record) {
    const input = capJson(run.report.input);
    const output = capJson(run.report.output);
    run.record = {
      ...run.report,
      input: input.value,
      output: output.value,
      truncated: input.truncated || output.truncated,
      id: run.id,
      createdAt: run.createdAt,
    };
    run.stored = { input: storedJson(input), output: storedJson(output) };
  }
  return run.record;
}

/** The JSON text of a run's input or output as stored; for one that was not captured, NULL (SQL). */
function storedJson(capped: { value: unknown; json: string }): string | null {
  return capped.value === null ? null : capped.json;
}

/** The columns a run is written with, named (other columns keep their defaults), in the order of a row's values. */
const RUN_COLUMNS = [
  "id",
  "triggerId",
  "action",
  "channel",
  "outcome",
  "durationMs",
  "error",
  "log",
  "clientId",
  "revision",
  "input",
  "output",
  "truncated",
  "createdAt",
] as const;

/** PostgreSQL's types for the columns whose values are not text. */
const POSTGRES_CASTS: Partial<Record<(typeof RUN_COLUMNS)[number], string>> = {
  durationMs: "double precision",
  log: "jsonb",
  revision: "integer",
  input: "jsonb",
  output: "jsonb",
  truncated: "boolean",
  createdAt: "timestamp(3)",
};

/** Rows per INSERT, so that one statement's JSON stays of a moderate size. */
const ROWS_PER_INSERT = 500;

/** The SQL dialect of a Prisma client: the statements runs are written with, and how it stores booleans and times. */
interface Dialect {
  /**
   * `INSERT` of the runs given as one parameter, a JSON array of rows (each an array of values in
   * {@link RUN_COLUMNS} order); rows of triggers that no longer exist are left out.
   */
  readonly insert: string;
  /** `DELETE` of a trigger's runs beyond the newest N (parameters: trigger id, N). */
  readonly prune: string;
  /** A row's values, in {@link RUN_COLUMNS} order. */
  values(run: BufferedRun): unknown[];
}

function dialectOf(prisma: Prisma): Dialect {
  // The generated client names its provider; the two providers' clients otherwise share one API.
  const postgres = (prisma as unknown as { _activeProvider?: string })._activeProvider === "postgresql";
  const columns = RUN_COLUMNS.map((column) => `"${column}"`).join(", ");
  // One parameter whatever the number of rows: Prisma's cost of a raw statement grows with each parameter.
  const fields = RUN_COLUMNS.map((column, i) => {
    const field = postgres ? `r ->> ${i}` : `r.value ->> ${i}`;
    const cast = postgres ? POSTGRES_CASTS[column] : undefined;
    return cast ? `(${field})::${cast}` : field;
  }).join(", ");
  const rows = postgres ? "json_array_elements($1::json) AS r" : "json_each(?) AS r";
  const triggerId = postgres ? "r ->> 1" : "r.value ->> 1";
  const newest = `SELECT "id" FROM "TriggerRun" WHERE "triggerId" = ${postgres ? "$1" : "?"} ORDER BY "createdAt" DESC, "id" DESC`;
  return {
    // Runs of deleted triggers go with them: the join keeps only rows whose trigger still exists.
    insert: `INSERT INTO "TriggerRun" (${columns}) SELECT ${fields} FROM ${rows} JOIN "Trigger" AS t ON t."id" = ${triggerId}`,
    prune: `DELETE FROM "TriggerRun" WHERE "id" IN (${newest} ${postgres ? "OFFSET $2" : "LIMIT -1 OFFSET ?"})`,
    values: (buffered) => {
      const run = recordOf(buffered);
      const stored = buffered.stored!;
      return [
        run.id,
        run.triggerId,
        run.action,
        wellFormed(run.channel),
        run.outcome,
        run.durationMs,
        run.error === null ? null : wellFormed(run.error),
        // Stored exactly as given: JSON text keeps `"__proto__"` keys.
        JSON.stringify(run.log),
        run.clientId === null ? null : wellFormed(run.clientId),
        run.revision,
        stored.input,
        stored.output,
        postgres ? run.truncated : run.truncated ? 1 : 0,
        storedTime(run.createdAt, postgres),
      ];
    },
  };
}

/**
 * Text with each lone surrogate replaced by U+FFFD, as UTF-8 encoding would: inside the JSON of a
 * batch, a lone surrogate would be an escape the database refuses (PostgreSQL) or stores as is.
 */
function wellFormed(text: string): string {
  return (text as unknown as { toWellFormed(): string }).toWellFormed();
}

/**
 * Records trigger runs without slowing delivery: runs are buffered in memory and written in batches
 * (one multi-row INSERT), then each touched trigger is pruned to its latest runs. Reads flush first,
 * so they see every run recorded before them. A run's input and output are capped only when it is
 * shown or written: a busy trigger's runs beyond the newest `keepPerTrigger` of a batch never are.
 */
export class TriggerRunRecorder {
  /** Runs to write, per trigger, oldest first: at most its newest `keepPerTrigger` (older ones would be pruned). */
  private buffer = new Map<string, BufferedRun[]>();
  /** Runs in {@link buffer}. */
  private buffered = 0;
  private readonly dialect: Dialect;
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly listeners = new Set<(run: TriggerRunRecord | AfterRunRecord) => void>();

  constructor(
    private readonly prisma: Prisma,
    private readonly logger: Logger,
    private readonly options: RunRecorderOptions,
  ) {
    this.dialect = dialectOf(prisma);
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Buffers a run for writing (its input and output capped) and hands it to live streams. The
   * report's values must not change afterwards: they are read when the run is written.
   */
  record(report: TriggerRunReport): void {
    const run: BufferedRun = { report, triggerId: report.triggerId, id: sortableId(), createdAt: new Date() };
    if (this.listeners.size > 0) {
      const record = recordOf(run);
      for (const listener of this.listeners) listener(record);
    }
    if (this.options.keepPerTrigger === 0) return;
    let runs = this.buffer.get(run.triggerId);
    if (runs && runs.length >= this.options.keepPerTrigger) {
      // The trigger's oldest buffered run would be pruned anyway: this one takes its place.
      runs.shift();
      runs.push(run);
      return;
    }
    if (this.buffered >= this.options.maxBuffered) return; // more busy triggers than the buffer holds
    if (!runs) {
      runs = [];
      this.buffer.set(run.triggerId, runs);
    }
    runs.push(run);
    this.buffered++;
  }

  /** Hands an AFTER run's stored attempt (made on this instance) to live streams. */
  streamAfterRun(record: AfterRunRecord): void {
    for (const listener of this.listeners) listener(record);
  }

  /**
   * Runs as they are recorded on this instance, of one trigger or of all. A stream that falls more
   * than {@link MAX_QUEUED_LIVE_RUNS} runs behind ends with `SLOW_CONSUMER`.
   */
  live(triggerId?: string | null): AsyncIterableIterator<TriggerRunRecord | AfterRunRecord> {
    const queue: (TriggerRunRecord | AfterRunRecord)[] = [];
    let waiting: ((result: IteratorResult<TriggerRunRecord | AfterRunRecord>) => void) | undefined;
    let failed: AppError | undefined;
    let closed = false;
    const listener = (run: TriggerRunRecord | AfterRunRecord) => {
      if (triggerId != null && run.triggerId !== triggerId) return;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value: run, done: false });
      } else if (queue.length < MAX_QUEUED_LIVE_RUNS) {
        queue.push(run);
      } else {
        failed = new AppError(ErrorCode.SlowConsumer, "The run stream fell too far behind");
        this.listeners.delete(listener);
      }
    };
    this.listeners.add(listener);
    const close = async (): Promise<IteratorReturnResult<undefined>> => {
      closed = true;
      this.listeners.delete(listener);
      waiting?.({ value: undefined, done: true });
      waiting = undefined;
      return { value: undefined, done: true };
    };
    return closableIterator(async () => {
      const queued = queue.shift();
      if (queued) return { value: queued, done: false };
      if (failed) throw failed;
      if (closed) return { value: undefined, done: true };
      return new Promise((resolve) => (waiting = resolve));
    }, close);
  }

  /** Writes buffered runs now; resolves once they (and earlier writes) are stored. */
  flush(): Promise<void> {
    if (this.buffered > 0) {
      const batch = [...this.buffer.values()].flat();
      this.buffer = new Map();
      this.buffered = 0;
      this.writing = this.writing.then(() => this.write(batch));
    }
    return this.writing;
  }

  /** The latest runs of a trigger, newest first; with `outcome`, only runs that ended so. */
  async latest(triggerId: string, last: number, outcome?: TriggerOutcome | null): Promise<TriggerRunRecord[]> {
    await this.flush();
    const rows = await this.prisma.triggerRun.findMany({
      where: { triggerId, ...(outcome ? { outcome } : {}) },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: Math.max(0, Math.min(last, this.options.keepPerTrigger)),
    });
    return rows.map((row) => ({
      ...row,
      action: row.action as RealtimeAction,
      outcome: row.outcome as TriggerOutcome,
      log: row.log as unknown[],
    }));
  }

  /** Stops the timer and writes what is buffered. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async write(batch: BufferedRun[]): Promise<void> {
    try {
      for (let from = 0; from < batch.length; from += ROWS_PER_INSERT) {
        const rows = batch.slice(from, from + ROWS_PER_INSERT).map(this.dialect.values);
        await this.prisma.$executeRawUnsafe(this.dialect.insert, JSON.stringify(rows));
      }
      // Pruned after every batch, so the excess is at most one batch.
      for (const triggerId of new Set(batch.map((run) => run.triggerId))) {
        await this.prisma.$executeRawUnsafe(this.dialect.prune, triggerId, this.options.keepPerTrigger);
      }
    } catch (error) {
      if (isDatabaseUnreachable(error) && this.options.databaseOutage) {
        this.options.databaseOutage.failed(error instanceof Error ? error.message.trim().split("\n").at(-1) : undefined);
      } else this.logger.error({ err: error, runs: batch.length }, "could not record trigger runs");
    }
  }
}
