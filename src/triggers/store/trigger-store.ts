import { randomUUID } from "node:crypto";
import type { z } from "zod";
import { isUniqueViolation, type Prisma, type PrismaTransaction, type StagedChange, writeTogether } from "../../db.js";
import { AppError, badInput, ErrorCode } from "../../errors.js";
import { type ChannelPattern, compileChannelPattern } from "../../realtime/channel-pattern.js";
import type { RealtimeAction } from "../../realtime/types.js";
import { type InputProblem, parseInput, zodProblems } from "../../validation.js";
import { type CompiledStack, compileStack, type StackLimits, stackProblems } from "../compile/stack.js";
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

/** The fields of a new trigger, checked, with the defaults filled in. */
export type TriggerCreateData = z.output<typeof TriggerCreateSchema>;

/** A trigger change checked and ready to write (see {@link writeTogether}); `result` once it committed. */
export interface StagedTriggerChange<T> extends StagedChange {
  result(): T;
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

  /**
   * Validates and stores a new trigger as its revision 1. Nothing invalid is stored; a name another
   * trigger has is refused with `CONFLICT`.
   */
  async create(input: TriggerCreate, note?: string | null): Promise<TriggerConfig> {
    return this.write(this.stageCreate(input, note));
  }

  /**
   * Validates and applies a change to a trigger, storing it as the next revision. With
   * `expectedRevision`, a trigger changed since (here or on another instance) is left as it is and
   * the change fails with `CONFLICT`, as does a new name another trigger has.
   */
  async update(id: string, input: TriggerUpdate, options: TriggerUpdateOptions = {}): Promise<TriggerConfig> {
    return this.write(this.stageUpdate(id, input, options));
  }

  /**
   * Every problem {@link TriggerStore.create} would refuse `input` for (it reports them one at a
   * time), each at its path in the input: `name`, `channel`, `stack[1].value`. Whether the name is
   * in use is not checked. Nothing is stored.
   */
  check(input: unknown): { data: TriggerCreateData | null; problems: InputProblem[] } {
    const parsed = TriggerCreateSchema.safeParse(input);
    const problems = parsed.success ? [] : zodProblems(parsed.error);
    const raw: Record<string, unknown> = typeof input === "object" && input !== null ? (input as Record<string, unknown>) : {};
    const timing = parsed.success ? parsed.data.timing : raw.timing;
    for (const error of this.settingProblems(raw.channel, raw.stack, timing)) problems.push(asProblem(error));
    return { data: parsed.success && problems.length === 0 ? parsed.data : null, problems };
  }

  /** {@link TriggerStore.create}, checked but not written: for {@link writeTogether} with other changes. */
  stageCreate(input: TriggerCreate, note?: string | null): StagedTriggerChange<TriggerConfig> {
    const data = parseInput(TriggerCreateSchema, input);
    const revisionNote = checkedNote(note, "created");
    this.validate(data.channel, data.stack, data.timing);
    this.refuseNameInUse(data.name);
    let row: TriggerRow | undefined;
    let config: TriggerConfig | undefined;
    return {
      write: async (tx) => {
        const fields = { ...data, description: data.description ?? null };
        const revision = { revision: 1, config: settingsOf(fields) as object, note: revisionNote };
        row = await uniqueName(data.name, () =>
          tx.trigger.create({
            data: { ...fields, id: randomUUID(), stack: data.stack as object, revision: 1, revisions: { create: revision } },
          }),
        );
      },
      committed: () => {
        config = this.changed(row!);
      },
      result: () => config!,
    };
  }

  /** {@link TriggerStore.update}, checked but not written: for {@link writeTogether} with other changes. */
  stageUpdate(id: string, input: TriggerUpdate, options: TriggerUpdateOptions = {}): StagedTriggerChange<TriggerConfig> {
    const current = this.require(id).config;
    const data = parseInput(TriggerUpdateSchema, input);
    this.validate(data.channel ?? current.channel, data.stack === undefined ? current.stack : data.stack, data.timing ?? current.timing);
    if (data.name !== undefined && data.name !== current.name) this.refuseNameInUse(data.name);
    const expected = options.expectedRevision ?? undefined;
    const note = checkedNote(options.note, "updated");
    let row: TriggerRow | undefined;
    let config: TriggerConfig | undefined;
    return {
      write: async (tx) => {
        try {
          row = await uniqueName(data.name, () =>
            tx.trigger.update({
              where: { id, ...(expected === undefined ? {} : { revision: expected }) },
              data: { ...data, stack: data.stack === undefined ? undefined : (data.stack as object), revision: { increment: 1 } },
            }),
          );
        } catch (error) {
          if (isNotFound(error)) await refuseMissed(tx, id, expected);
          throw error;
        }
        await tx.triggerRevision.create({ data: revisionData(row, note) });
      },
      committed: () => {
        config = this.changed(row!);
      },
      result: () => config!,
    };
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
    this.deleted(id, count > 0);
    return count > 0;
  }

  /**
   * {@link TriggerStore.delete}, not yet written: for {@link writeTogether} with other changes. With
   * `expectedRevision`, a trigger changed since is left as it is and the change fails with `CONFLICT`;
   * one already gone is no failure.
   */
  stageDelete(id: string, options: { readonly expectedRevision?: number } = {}): StagedTriggerChange<boolean> {
    const expected = options.expectedRevision;
    let count = 0;
    return {
      write: async (tx) => {
        ({ count } = await tx.trigger.deleteMany({ where: { id, ...(expected === undefined ? {} : { revision: expected }) } }));
        if (count === 0 && expected !== undefined && (await tx.trigger.findUnique({ where: { id }, select: { id: true } }))) {
          await refuseMissed(tx, id, expected);
        }
      },
      committed: () => this.deleted(id, count > 0),
      result: () => count > 0,
    };
  }

  /** The trigger with this id, or a `NOT_FOUND` error. */
  require(id: string): LoadedTrigger {
    const trigger = this.triggers.get(id);
    if (!trigger) throw new AppError(ErrorCode.NotFound, `No trigger with id ${id}`);
    return trigger;
  }

  /** Writes one staged change on its own and returns its result. */
  private async write<T>(change: StagedTriggerChange<T>): Promise<T> {
    await writeTogether(this.prisma, [change]);
    return change.result();
  }

  /** @throws AppError `CONFLICT` when a trigger has this name (names are unique: config files match triggers by name) */
  private refuseNameInUse(name: string): void {
    for (const trigger of this.triggers.values()) {
      if (trigger.config.name === name) throw nameTaken(name);
    }
  }

  private deleted(id: string, existed: boolean): void {
    this.triggers.delete(id);
    this.forgetMatches();
    if (existed) for (const listener of this.changeListeners) listener(id);
  }

  /** Drops the memoized matches after any change to the set of triggers. */
  private forgetMatches(): void {
    this.memo.BEFORE.clear();
    this.memo.AFTER.clear();
  }

  /** @throws AppError `BAD_USER_INPUT`: the first of {@link TriggerStore.settingProblems} */
  private validate(channel: string, stack: unknown, timing: TriggerTiming): void {
    const [first] = this.settingProblems(channel, stack, timing);
    if (first) throw first;
  }

  /** What is wrong with a trigger's channel pattern and stack, in the order they are checked. */
  private settingProblems(channel: unknown, stack: unknown, timing: unknown): AppError[] {
    const problems: AppError[] = [];
    if (typeof channel === "string") {
      try {
        compileChannelPattern(channel, "input.channel");
      } catch (error) {
        problems.push(error as AppError);
      }
    }
    const inStack = stackProblems(stack, this.limits);
    problems.push(...inStack);
    if (inStack.length === 0 && timing === "AFTER") problems.push(...eventStops(stack as unknown[], "stack"));
    return problems;
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
 * The `drop` and `reject` steps anywhere in a (compiled, so well-formed) stack, as `BAD_USER_INPUT`
 * errors naming their paths: an AFTER trigger runs on an event already delivered, which it can no
 * longer stop.
 */
function eventStops(steps: readonly unknown[], path: string): AppError[] {
  return steps.flatMap((value, index) => {
    const step = value as Record<string, unknown>;
    const at = `${path}[${index}]`;
    const found = ["drop", "reject"]
      .filter((kind) => Object.hasOwn(step, kind))
      .map((kind) =>
        badInput(`${at}.${kind}: an AFTER trigger runs on the delivered event and cannot ${kind} it`, { path: `${at}.${kind}` }),
      );
    if (Object.hasOwn(step, "if")) {
      found.push(...eventStops(step.then as unknown[], `${at}.then`));
      if (Object.hasOwn(step, "else")) found.push(...eventStops(step.else as unknown[], `${at}.else`));
    }
    return found;
  });
}

/** A validation error as a problem at its path in the input (`stack[0].value`, `channel`). */
function asProblem(error: AppError): InputProblem {
  const path = String(error.details.path ?? error.details.field ?? "");
  const prefix = `${path}: `;
  return {
    path: path.replace(/^input\./, ""),
    message: error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message,
  };
}

/** Prisma's error for an update whose row (with its condition) was not found. */
function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "P2025";
}

function nameTaken(name: string): AppError {
  return new AppError(ErrorCode.Conflict, `A trigger named "${name}" exists already: trigger names are unique`, { path: "input.name" });
}

/** Runs a write that may set a trigger's name, turning the database's unique name check into `CONFLICT`. */
async function uniqueName<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (name !== undefined && isUniqueViolation(error, "name")) throw nameTaken(name);
    throw error;
  }
}

/**
 * @throws AppError `NOT_FOUND` when the trigger is gone, `CONFLICT` when it is no longer at the
 * expected revision (a conditional write changed nothing)
 */
async function refuseMissed(tx: PrismaTransaction, id: string, expected: number | undefined): Promise<never> {
  const stored = await tx.trigger.findUnique({ where: { id }, select: { revision: true } });
  if (!stored) throw new AppError(ErrorCode.NotFound, `No trigger with id ${id}`);
  throw new AppError(
    ErrorCode.Conflict,
    `The trigger was changed since revision ${expected}: it is at revision ${stored.revision}. Reload it and apply your change again.`,
    { revision: stored.revision },
  );
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
