import { exactJson, type Prisma } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import { sortableId } from "../ids.js";
import type { Logger } from "../logger.js";
import { closableIterator } from "../realtime/iterators.js";
import type { RealtimeAction } from "../realtime/types.js";
import type { TriggerOutcome } from "./engine.js";

/** How a trigger run ended. */

/** One execution of a trigger on an event. */
export interface TriggerRunRecord {
  readonly id: string;
  readonly triggerId: string;
  readonly action: RealtimeAction;
  readonly channel: string;
  readonly outcome: TriggerOutcome;
  readonly durationMs: number;
  readonly error: string | null;
  readonly log: unknown[];
  /** The client whose event the trigger ran on. Null for runs recorded before clients were. */
  readonly clientId: string | null;
  /** The trigger's revision that ran. */
  readonly revision: number | null;
  /** `{ payload, commandOptions }` before the run, or its JSON text cut to {@link MAX_RUN_DATA_BYTES}. */
  readonly input: unknown;
  /** `{ payload, commandOptions }` after the run, or its JSON text cut to {@link MAX_RUN_DATA_BYTES}. */
  readonly output: unknown;
  /** True when `input` or `output` was cut. */
  readonly truncated: boolean;
  readonly createdAt: Date;
}

/** A run as the middleware reports it: input and output whole. */
export type TriggerRunReport = Omit<TriggerRunRecord, "id" | "createdAt" | "truncated">;

/** Bytes of JSON kept of a run's input and of its output. */
export const MAX_RUN_DATA_BYTES = 4096;

/** Runs queued at most for one live stream; a stream that falls further behind ends with `SLOW_CONSUMER`. */
export const MAX_QUEUED_LIVE_RUNS = 1000;

/** A value kept whole when its JSON fits in `maxBytes`, else as its JSON text cut to that size. */
export function capJson(value: unknown, maxBytes = MAX_RUN_DATA_BYTES): { value: unknown; truncated: boolean } {
  const text = JSON.stringify(value ?? null);
  if (text.length <= maxBytes / 3 || Buffer.byteLength(text) <= maxBytes) return { value: value ?? null, truncated: false };
  // Cut at a byte boundary; a character split in two decodes as U+FFFD, which is dropped.
  const cut = Buffer.from(text)
    .subarray(0, maxBytes)
    .toString("utf8")
    .replace(/\uFFFD+$/, "");
  return { value: cut, truncated: true };
}

/** Settings for {@link TriggerRunRecorder}. */
export interface RunRecorderOptions {
  /** Runs kept per trigger; older ones are deleted. */
  readonly keepPerTrigger: number;
  /** How often buffered runs are written, in milliseconds. */
  readonly flushIntervalMs: number;
  /**
   * Buffered runs at most. When full, runs that a write would skip anyway (beyond the newest
   * `keepPerTrigger` of a trigger) are shed first; only if that frees nothing is a new run discarded.
   */
  readonly maxBuffered: number;
}

/**
 * Records trigger runs without slowing delivery: runs are buffered in memory and written in batches,
 * then each touched trigger is pruned to its latest runs. Reads flush first, so they see every run
 * recorded before them.
 */
export class TriggerRunRecorder {
  private buffer: TriggerRunRecord[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly listeners = new Set<(run: TriggerRunRecord) => void>();

  constructor(
    private readonly prisma: Prisma,
    private readonly logger: Logger,
    private readonly options: RunRecorderOptions,
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /** Buffers a run for writing (its input and output capped) and hands it to live streams. */
  record(report: TriggerRunReport): void {
    const input = capJson(report.input);
    const output = capJson(report.output);
    const run: TriggerRunRecord = {
      ...report,
      input: input.value,
      output: output.value,
      truncated: input.truncated || output.truncated,
      id: sortableId(),
      createdAt: new Date(),
    };
    for (const listener of this.listeners) listener(run);
    if (this.buffer.length >= this.options.maxBuffered) {
      this.buffer = this.newestPerTrigger(this.buffer);
      if (this.buffer.length >= this.options.maxBuffered) return; // more busy triggers than the buffer holds
    }
    this.buffer.push(run);
  }

  /**
   * Runs as they are recorded on this instance, of one trigger or of all. A stream that falls more
   * than {@link MAX_QUEUED_LIVE_RUNS} runs behind ends with `SLOW_CONSUMER`.
   */
  live(triggerId?: string | null): AsyncIterableIterator<TriggerRunRecord> {
    const queue: TriggerRunRecord[] = [];
    let waiting: ((result: IteratorResult<TriggerRunRecord>) => void) | undefined;
    let failed: AppError | undefined;
    let closed = false;
    const listener = (run: TriggerRunRecord) => {
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
    const batch = this.buffer;
    if (batch.length > 0) {
      this.buffer = [];
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

  private async write(batch: TriggerRunRecord[]): Promise<void> {
    try {
      const existing = new Set(
        (
          await this.prisma.trigger.findMany({
            where: { id: { in: [...new Set(batch.map((run) => run.triggerId))] } },
            select: { id: true },
          })
        ).map((trigger) => trigger.id),
      );
      // Runs of deleted triggers go with them, and only the newest `keepPerTrigger` of each trigger's
      // runs in the batch would survive pruning, so only those are written.
      const kept = this.newestPerTrigger(batch.filter((run) => existing.has(run.triggerId)));
      await this.prisma.triggerRun.createMany({
        // exactJson: logged values and captured payloads are kept as they were, `"__proto__"` keys included.
        data: kept.map((run) => ({
          ...run,
          log: exactJson(run.log) as object,
          input: storedJson(run.input),
          output: storedJson(run.output),
        })),
      });
      for (const triggerId of existing) await this.prune(triggerId);
    } catch (error) {
      this.logger.error({ err: error, runs: batch.length }, "could not record trigger runs");
    }
  }

  private newestPerTrigger(runs: TriggerRunRecord[]): TriggerRunRecord[] {
    const seen = new Map<string, number>();
    const kept: TriggerRunRecord[] = [];
    for (let i = runs.length - 1; i >= 0; i--) {
      const run = runs[i]!;
      const count = seen.get(run.triggerId) ?? 0;
      if (count >= this.options.keepPerTrigger) continue;
      seen.set(run.triggerId, count + 1);
      kept.push(run);
    }
    return kept.reverse();
  }

  private async prune(triggerId: string): Promise<void> {
    // Pruned after every batch, so the excess is at most one batch.
    const excess = await this.prisma.triggerRun.findMany({
      where: { triggerId },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      skip: this.options.keepPerTrigger,
      select: { id: true },
    });
    if (excess.length > 0) {
      await this.prisma.triggerRun.deleteMany({ where: { id: { in: excess.map((run) => run.id) } } });
    }
  }
}

/** A captured value as stored: exactly as given, or nothing when there is none. */
function storedJson(value: unknown): object | undefined {
  return value === null || value === undefined ? undefined : (exactJson(value) as object);
}
