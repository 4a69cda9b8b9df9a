import { sortableId } from "../ids.js";
import type { Prisma } from "../db.js";
import type { Logger } from "../logger.js";
import type { TriggerAction } from "./config.js";

/** How a trigger run ended. */
export type TriggerOutcome = "DELIVERED" | "MODIFIED" | "DROPPED" | "REJECTED" | "FAILED";

/** One execution of a trigger on an event. */
export interface TriggerRunRecord {
  readonly id: string;
  readonly triggerId: string;
  readonly action: TriggerAction;
  readonly channel: string;
  readonly outcome: TriggerOutcome;
  readonly durationMs: number;
  readonly error: string | null;
  readonly log: unknown[];
  readonly createdAt: Date;
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

  constructor(
    private readonly prisma: Prisma,
    private readonly logger: Logger,
    private readonly options: RunRecorderOptions,
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /** Buffers a run for writing. */
  record(run: Omit<TriggerRunRecord, "id" | "createdAt">): void {
    if (this.buffer.length >= this.options.maxBuffered) {
      this.buffer = this.newestPerTrigger(this.buffer);
      if (this.buffer.length >= this.options.maxBuffered) return; // more busy triggers than the buffer holds
    }
    this.buffer.push({ ...run, id: sortableId(), createdAt: new Date() });
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

  /** The latest runs of a trigger, newest first. */
  async latest(triggerId: string, last: number): Promise<TriggerRunRecord[]> {
    await this.flush();
    const rows = await this.prisma.triggerRun.findMany({
      where: { triggerId },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: Math.max(0, Math.min(last, this.options.keepPerTrigger)),
    });
    return rows.map((row) => ({ ...row, action: row.action as TriggerAction, outcome: row.outcome as TriggerOutcome, log: row.log as unknown[] }));
  }

  /** Stops the timer and writes what is buffered. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async write(batch: TriggerRunRecord[]): Promise<void> {
    try {
      const existing = new Set(
        (await this.prisma.trigger.findMany({ where: { id: { in: [...new Set(batch.map((run) => run.triggerId))] } }, select: { id: true } })).map(
          (trigger) => trigger.id,
        ),
      );
      // Runs of deleted triggers go with them, and only the newest `keepPerTrigger` of each trigger's
      // runs in the batch would survive pruning, so only those are written.
      const kept = this.newestPerTrigger(batch.filter((run) => existing.has(run.triggerId)));
      await this.prisma.triggerRun.createMany({ data: kept.map((run) => ({ ...run, log: run.log as object[] })) });
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
