import { randomUUID } from "node:crypto";
import type { Prisma } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import { compileChannelPattern, type ChannelPattern } from "../realtime/channel-pattern.js";
import {
  TriggerCreateSchema,
  TriggerUpdateSchema,
  type TriggerAction,
  type TriggerConfig,
  type TriggerCreate,
  type TriggerErrorPolicy,
  type TriggerUpdate,
} from "./config.js";
import { parseInput } from "../validation.js";
import { compileStack, type CompiledStack, type StackLimits } from "./stack.js";

/** A trigger ready to run: its settings, its compiled pattern and its compiled stack. */
export interface LoadedTrigger {
  readonly config: TriggerConfig;
  readonly pattern: ChannelPattern;
  /** The compiled stack, or the reason it does not compile under the current limits. */
  readonly stack: CompiledStack | { readonly error: string };
}

/** Filters for listing triggers. */
export interface TriggerFilter {
  /** A concrete channel name: the triggers that would run for it. */
  readonly channel?: string | null;
  readonly tag?: string | null;
  readonly active?: boolean | null;
}

type TriggerRow = Awaited<ReturnType<Prisma["trigger"]["findFirstOrThrow"]>>;

function toConfig(row: TriggerRow): TriggerConfig {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    active: row.active,
    tags: row.tags as string[],
    actions: row.actions as TriggerAction[],
    channel: row.channel,
    order: row.order,
    onError: row.onError as TriggerErrorPolicy,
    stack: row.stack,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Running order: ascending `order`, then creation time, then id so ties are stable. */
function runningOrder(a: LoadedTrigger, b: LoadedTrigger): number {
  return (
    a.config.order - b.config.order ||
    a.config.createdAt.getTime() - b.config.createdAt.getTime() ||
    a.config.id.localeCompare(b.config.id)
  );
}

const MAX_MEMOIZED_CHANNELS = 10_000;

/**
 * Trigger settings in the database, with every trigger compiled and cached in memory. Reads on the
 * per-event path ({@link TriggerStore.matching}) never touch the database; every change made here
 * updates the cache at once, and {@link TriggerStore.reload} refreshes it after changes made elsewhere.
 */
export class TriggerStore {
  private triggers = new Map<string, LoadedTrigger>();
  /** Matching triggers per `action channel`, cleared on every change. */
  private readonly memo = new Map<string, LoadedTrigger[]>();
  private readonly changeListeners: ((id: string) => void)[] = [];

  constructor(
    private readonly prisma: Prisma,
    private readonly limits: Partial<StackLimits> = {},
  ) {}

  /** Loads every trigger from the database, replacing the cache. */
  async reload(): Promise<void> {
    const rows = await this.prisma.trigger.findMany();
    this.triggers = new Map(rows.map((row) => [row.id, this.load(toConfig(row))]));
    this.memo.clear();
  }

  /** Reloads one trigger (or forgets it if it is gone), after a change made by another instance. */
  async refresh(id: string): Promise<void> {
    const row = await this.prisma.trigger.findUnique({ where: { id } });
    if (row) this.triggers.set(id, this.load(toConfig(row)));
    else this.triggers.delete(id);
    this.memo.clear();
  }

  /** Calls `listener` with the trigger id after every change made through this store. */
  onChange(listener: (id: string) => void): void {
    this.changeListeners.push(listener);
  }

  /** The active triggers that run for an action on a channel, in running order. */
  matching(channel: string, action: TriggerAction): readonly LoadedTrigger[] {
    const key = `${action} ${channel}`;
    let found = this.memo.get(key);
    if (!found) {
      found = [...this.triggers.values()]
        .filter((t) => t.config.active && t.config.actions.includes(action) && t.pattern.matches(channel))
        .sort(runningOrder);
      if (this.memo.size >= MAX_MEMOIZED_CHANNELS) this.memo.clear();
      this.memo.set(key, found);
    }
    return found;
  }

  /** The trigger with this id, if any. */
  get(id: string): LoadedTrigger | undefined {
    return this.triggers.get(id);
  }

  /** Triggers in running order, filtered. */
  list(filter: TriggerFilter = {}): TriggerConfig[] {
    return [...this.triggers.values()]
      .filter(
        (t) =>
          (filter.channel == null || t.pattern.matches(filter.channel)) &&
          (filter.tag == null || t.config.tags.includes(filter.tag)) &&
          (filter.active == null || t.config.active === filter.active),
      )
      .sort(runningOrder)
      .map((t) => t.config);
  }

  /** Validates and stores a new trigger. Nothing invalid is stored. */
  async create(input: TriggerCreate): Promise<TriggerConfig> {
    const data = parseInput(TriggerCreateSchema, input);
    this.validate(data.channel, data.stack);
    const row = await this.prisma.trigger.create({
      data: { ...data, id: randomUUID(), description: data.description ?? null, stack: data.stack as object },
    });
    return this.changed(row);
  }

  /** Validates and applies a change to a trigger. */
  async update(id: string, input: TriggerUpdate): Promise<TriggerConfig> {
    const current = this.require(id).config;
    const data = parseInput(TriggerUpdateSchema, input);
    this.validate(data.channel ?? current.channel, data.stack === undefined ? current.stack : data.stack);
    const row = await this.prisma.trigger.update({
      where: { id },
      data: { ...data, stack: data.stack === undefined ? undefined : (data.stack as object) },
    });
    return this.changed(row);
  }

  /** Deletes a trigger and its runs. Returns false when there was no such trigger. */
  async delete(id: string): Promise<boolean> {
    const { count } = await this.prisma.trigger.deleteMany({ where: { id } });
    this.triggers.delete(id);
    this.memo.clear();
    if (count > 0) for (const listener of this.changeListeners) listener(id);
    return count > 0;
  }

  /** The trigger with this id, or a `NOT_FOUND` error. */
  require(id: string): LoadedTrigger {
    const trigger = this.triggers.get(id);
    if (!trigger) throw new AppError(ErrorCode.NotFound, `No trigger with id ${id}`);
    return trigger;
  }

  private validate(channel: string, stack: unknown): void {
    compileChannelPattern(channel, "input.channel");
    compileStack(stack, this.limits);
  }

  private changed(row: TriggerRow): TriggerConfig {
    const loaded = this.load(toConfig(row));
    this.triggers.set(row.id, loaded);
    this.memo.clear();
    for (const listener of this.changeListeners) listener(row.id);
    return loaded.config;
  }

  private load(config: TriggerConfig): LoadedTrigger {
    let stack: LoadedTrigger["stack"];
    try {
      stack = compileStack(config.stack, this.limits);
    } catch (error) {
      stack = { error: error instanceof Error ? error.message : String(error) };
    }
    return { config, pattern: compileChannelPattern(config.channel), stack };
  }
}
