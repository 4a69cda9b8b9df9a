import { randomUUID } from "node:crypto";
import type { Prisma } from "../db.js";
import { AppError, badInput, ErrorCode } from "../errors.js";
import { type ChannelPattern, compileChannelPattern } from "../realtime/channel-pattern.js";
import type { RealtimeAction } from "../realtime/types.js";
import { parseInput } from "../validation.js";
import {
  settingsOf,
  type TriggerConfig,
  type TriggerCreate,
  TriggerCreateSchema,
  type TriggerErrorPolicy,
  type TriggerSettings,
  type TriggerTiming,
  type TriggerUpdate,
  TriggerUpdateSchema,
} from "./config.js";
import { type CompiledStack, compileStack, type StackLimits } from "./stack.js";

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

/** An immutable snapshot of a trigger's settings, made by a create, an update or a rollback. */
export interface TriggerRevision {
  readonly triggerId: string;
  readonly revision: number;
  readonly config: TriggerSettings;
  readonly note: string | null;
  readonly createdAt: Date;
}

/** Options of {@link TriggerStore.update}. */
export interface TriggerUpdateOptions {
  /** Refuse the change with `CONFLICT` unless the trigger is still at this revision. */
  readonly expectedRevision?: number | null;
  /** Stored with the new revision. */
  readonly note?: string | null;
}

/** Revisions listed at most per request. */
export const MAX_REVISIONS_LISTED = 1000;

type TriggerRow = Awaited<ReturnType<Prisma["trigger"]["findFirstOrThrow"]>>;

function toConfig(row: TriggerRow): TriggerConfig {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    active: row.active,
    tags: row.tags as string[],
    actions: row.actions as RealtimeAction[],
    channel: row.channel,
    order: row.order,
    onError: row.onError as TriggerErrorPolicy,
    timing: row.timing as TriggerTiming,
    stack: row.stack,
    revision: row.revision,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Running order: ascending `order`, then creation time, then id so ties are stable. */
function runningOrder(a: LoadedTrigger, b: LoadedTrigger): number {
  return (
    a.config.order - b.config.order || a.config.createdAt.getTime() - b.config.createdAt.getTime() || a.config.id.localeCompare(b.config.id)
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
  /** Matching triggers by action and channel, cleared on every change. */
  private readonly memo: Record<TriggerTiming, Map<RealtimeAction, Map<string, LoadedTrigger[]>>> = {
    BEFORE: new Map(),
    AFTER: new Map(),
  };
  private readonly changeListeners: ((id: string) => void)[] = [];

  constructor(
    private readonly prisma: Prisma,
    private readonly limits: Partial<StackLimits> = {},
  ) {}

  /** Loads every trigger from the database, replacing the cache. */
  async reload(): Promise<void> {
    const rows = await this.prisma.trigger.findMany();
    this.triggers = new Map(rows.map((row) => [row.id, this.load(toConfig(row))]));
    this.forgetMatches();
  }

  /** Reloads one trigger (or forgets it if it is gone), after a change made by another instance. */
  async refresh(id: string): Promise<void> {
    const row = await this.prisma.trigger.findUnique({ where: { id } });
    if (row) this.triggers.set(id, this.load(toConfig(row)));
    else this.triggers.delete(id);
    this.forgetMatches();
  }

  /** Calls `listener` with the trigger id after every change made through this store. */
  onChange(listener: (id: string) => void): void {
    this.changeListeners.push(listener);
  }

  /** The active triggers of one timing that run for an action on a channel, in running order. */
  matching(channel: string, action: RealtimeAction, timing: TriggerTiming = "BEFORE"): readonly LoadedTrigger[] {
    const byAction = this.memo[timing];
    let byChannel = byAction.get(action);
    if (!byChannel) {
      byChannel = new Map();
      byAction.set(action, byChannel);
    }
    let found = byChannel.get(channel);
    if (!found) {
      found = [...this.triggers.values()]
        .filter((t) => t.config.active && t.config.timing === timing && t.config.actions.includes(action) && t.pattern.matches(channel))
        .sort(runningOrder);
      if (byChannel.size >= MAX_MEMOIZED_CHANNELS) byChannel.clear();
      byChannel.set(channel, found);
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

  /** Validates and stores a new trigger as its revision 1. Nothing invalid is stored. */
  async create(input: TriggerCreate, note?: string | null): Promise<TriggerConfig> {
    const data = parseInput(TriggerCreateSchema, input);
    const revisionNote = checkedNote(note, "created");
    this.validate(data.channel, data.stack, data.timing);
    const row = await this.prisma.$transaction(async (tx) => {
      const created = await tx.trigger.create({
        data: { ...data, id: randomUUID(), description: data.description ?? null, stack: data.stack as object, revision: 1 },
      });
      await tx.triggerRevision.create({ data: revisionData(created, revisionNote) });
      return created;
    });
    return this.changed(row);
  }

  /**
   * Validates and applies a change to a trigger, storing it as the next revision. With
   * `expectedRevision`, a trigger changed since (here or on another instance) is left as it is and
   * the change fails with `CONFLICT`.
   */
  async update(id: string, input: TriggerUpdate, options: TriggerUpdateOptions = {}): Promise<TriggerConfig> {
    const current = this.require(id).config;
    const data = parseInput(TriggerUpdateSchema, input);
    this.validate(data.channel ?? current.channel, data.stack === undefined ? current.stack : data.stack, data.timing ?? current.timing);
    const expected = options.expectedRevision ?? undefined;
    const note = checkedNote(options.note, "updated");
    const row = await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.trigger.updateMany({
        where: { id, ...(expected === undefined ? {} : { revision: expected }) },
        data: { ...data, stack: data.stack === undefined ? undefined : (data.stack as object), revision: { increment: 1 } },
      });
      if (count === 0) {
        const stored = await tx.trigger.findUnique({ where: { id }, select: { revision: true } });
        if (!stored) throw new AppError(ErrorCode.NotFound, `No trigger with id ${id}`);
        throw new AppError(
          ErrorCode.Conflict,
          `The trigger was changed since revision ${expected}: it is at revision ${stored.revision}. Reload it and apply your change again.`,
          { revision: stored.revision },
        );
      }
      const updated = await tx.trigger.findUniqueOrThrow({ where: { id } });
      await tx.triggerRevision.create({ data: revisionData(updated, note) });
      return updated;
    });
    return this.changed(row);
  }

  /** Makes a new revision of a trigger equal to an earlier one. */
  async rollback(id: string, revision: number): Promise<TriggerConfig> {
    this.require(id);
    const stored = await this.prisma.triggerRevision.findUnique({ where: { triggerId_revision: { triggerId: id, revision } } });
    if (!stored) throw new AppError(ErrorCode.NotFound, `Trigger ${id} has no revision ${revision}`);
    // Revisions made before triggers had a timing ran before delivery.
    return this.update(id, { timing: "BEFORE", ...(stored.config as TriggerUpdate) }, { note: `rolled back to revision ${revision}` });
  }

  /** A trigger's latest revisions, newest first (`NOT_FOUND` for an unknown trigger). */
  async revisions(id: string, last: number): Promise<TriggerRevision[]> {
    this.require(id);
    const rows = await this.prisma.triggerRevision.findMany({
      where: { triggerId: id },
      orderBy: { revision: "desc" },
      take: Math.max(0, Math.min(last, MAX_REVISIONS_LISTED)),
    });
    return rows.map((row) => ({ ...row, config: row.config as unknown as TriggerSettings }));
  }

  /**
   * Validates a trigger that is not stored, exactly as {@link TriggerStore.create} would, and
   * compiles it to run (for tests of a draft). Nothing is stored.
   */
  draft(input: TriggerCreate): LoadedTrigger {
    const data = parseInput(TriggerCreateSchema, input);
    this.validate(data.channel, data.stack, data.timing);
    const now = new Date();
    return this.load({ ...data, id: "draft", description: data.description ?? null, revision: 0, createdAt: now, updatedAt: now });
  }

  /** Deletes a trigger and its runs. Returns false when there was no such trigger. */
  async delete(id: string): Promise<boolean> {
    const { count } = await this.prisma.trigger.deleteMany({ where: { id } });
    this.triggers.delete(id);
    this.forgetMatches();
    if (count > 0) for (const listener of this.changeListeners) listener(id);
    return count > 0;
  }

  /** The trigger with this id, or a `NOT_FOUND` error. */
  require(id: string): LoadedTrigger {
    const trigger = this.triggers.get(id);
    if (!trigger) throw new AppError(ErrorCode.NotFound, `No trigger with id ${id}`);
    return trigger;
  }

  /** Drops the memoized matches after any change to the set of triggers. */
  private forgetMatches(): void {
    this.memo.BEFORE.clear();
    this.memo.AFTER.clear();
  }

  private validate(channel: string, stack: unknown, timing: TriggerTiming): void {
    compileChannelPattern(channel, "input.channel");
    compileStack(stack, this.limits);
    if (timing === "AFTER") refuseEventStops(stack as unknown[], "stack");
  }

  private changed(row: TriggerRow): TriggerConfig {
    const loaded = this.load(toConfig(row));
    this.triggers.set(row.id, loaded);
    this.forgetMatches();
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

/**
 * Refuses `drop` and `reject` steps anywhere in a (compiled, so well-formed) stack: an AFTER trigger
 * runs on an event already delivered, which it can no longer stop.
 * @throws AppError `BAD_USER_INPUT` naming the step's path
 */
function refuseEventStops(steps: readonly unknown[], path: string): void {
  steps.forEach((value, index) => {
    const step = value as Record<string, unknown>;
    const at = `${path}[${index}]`;
    for (const kind of ["drop", "reject"]) {
      if (Object.hasOwn(step, kind)) {
        throw badInput(`${at}.${kind}: an AFTER trigger runs on the delivered event and cannot ${kind} it`, { path: `${at}.${kind}` });
      }
    }
    if (Object.hasOwn(step, "if")) {
      refuseEventStops(step.then as unknown[], `${at}.then`);
      if (Object.hasOwn(step, "else")) refuseEventStops(step.else as unknown[], `${at}.else`);
    }
  });
}

/** Characters a revision's note may have. */
export const MAX_NOTE_LENGTH = 500;

/** The revision row for a trigger's current state. */
function revisionData(row: TriggerRow, note: string | null) {
  return { triggerId: row.id, revision: row.revision, config: settingsOf(toConfig(row)) as object, note };
}

/** A revision note as given, or `BAD_USER_INPUT` when it is too long. */
function checkedNote(note: string | null | undefined, fallback: string): string {
  if (note == null || note.trim() === "") return fallback;
  if (note.length > MAX_NOTE_LENGTH) throw badInput(`note: must be at most ${MAX_NOTE_LENGTH} characters`, { path: "note" });
  return note.trim();
}
