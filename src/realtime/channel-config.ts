import { randomUUID } from "node:crypto";
import { z } from "zod";
import { isUniqueViolation, type Prisma, type StagedChange, writeTogether } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import { type InputProblem, parseInput, zodProblems } from "../validation.js";
import { bySpecificity, type ChannelPattern, compileChannelPattern } from "./channel-pattern.js";

/** Who may send on a channel: anyone, authenticated clients, or nobody but the admin. */
export const CHANNEL_MESSAGING = ["ANYONE", "AUTHENTICATED", "NOBODY"] as const;
export type ChannelMessaging = (typeof CHANNEL_MESSAGING)[number];

/** The most messages a channel may keep as history. */
export const MAX_HISTORY = 1000;

/** The settings that decide who may do what on a channel. */
export interface ChannelRules {
  readonly active: boolean;
  /** Anonymous clients may join and listen (and send, where messaging is ANYONE). */
  readonly anonymousClients: boolean;
  readonly messaging: ChannelMessaging;
  readonly presence: boolean;
  /** Messages kept, 0..1000. */
  readonly history: number;
  /** Only current members may send, read history and read presence (the admin is exempt). */
  readonly membersOnly: boolean;
}

/** A stored channel configuration, applying to the names its pattern matches. */
export interface ChannelSettings extends ChannelRules {
  readonly id: string;
  readonly pattern: string;
  readonly description: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const rules = {
  description: z.string().max(2000).nullish(),
  active: z.boolean(),
  anonymousClients: z.boolean(),
  messaging: z.enum(CHANNEL_MESSAGING),
  presence: z.boolean(),
  history: z.number().int().min(0, `must be 0..${MAX_HISTORY}`).max(MAX_HISTORY, `must be 0..${MAX_HISTORY}`),
  membersOnly: z.boolean(),
};

/** Fields a channel configuration is created with; unset rules take the server-wide defaults. */
export const ChannelCreateSchema = z.object({ pattern: z.string(), ...z.object(rules).partial().shape });
export type ChannelCreate = z.input<typeof ChannelCreateSchema>;

/** Fields an update may change; absent fields stay as they are. */
export const ChannelUpdateSchema = z.object(rules).partial().extend({ pattern: z.string().optional() });
export type ChannelUpdate = z.input<typeof ChannelUpdateSchema>;

type ChannelRow = Awaited<ReturnType<Prisma["channel"]["findFirstOrThrow"]>>;

interface LoadedChannel {
  readonly settings: ChannelSettings;
  readonly pattern: ChannelPattern;
}

function toSettings(row: ChannelRow): ChannelSettings {
  return { ...row, messaging: row.messaging as ChannelMessaging };
}

/**
 * Channel configurations, cached in memory: resolving the rules for a name (on every join and send)
 * never touches the database. A name uses its most specific matching configuration; with none, the
 * server-wide defaults apply, or nothing does when configuration is required.
 */
export class ChannelConfigStore {
  private channels = new Map<string, LoadedChannel>();
  private readonly memo = new Map<string, LoadedChannel | null>();
  private readonly changeListeners: ((pattern: string) => void)[] = [];
  private readonly appliedListeners: (() => void)[] = [];

  constructor(
    private readonly prisma: Prisma,
    private readonly defaults: ChannelRules,
    private readonly requireConfig: boolean,
  ) {}

  /** Loads every configuration from the database, replacing the cache. */
  async reload(): Promise<void> {
    const rows = await this.prisma.channel.findMany();
    this.channels = new Map(rows.map((row) => [row.pattern, this.load(row)]));
    this.applied();
  }

  /** Calls `listener` with the pattern after every change made through this store. */
  onChange(listener: (pattern: string) => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * Calls `listener` whenever the rules in force may have changed: after a change made through
   * this store and after every reload (which is how changes made on other instances arrive).
   */
  onRulesChanged(listener: () => void): void {
    this.appliedListeners.push(listener);
  }

  /** The stored configuration that applies to a channel name, if any. */
  configFor(name: string): ChannelSettings | null {
    let found = this.memo.get(name);
    if (found === undefined) {
      found =
        [...this.channels.values()].filter((c) => c.pattern.matches(name)).sort((a, b) => bySpecificity(a.pattern, b.pattern))[0] ?? null;
      if (this.memo.size >= 10_000) this.memo.clear();
      this.memo.set(name, found);
    }
    return found?.settings ?? null;
  }

  /**
   * The rules for a channel name: its configuration's, or the defaults.
   * @throws AppError `FORBIDDEN` when configuration is required and none matches
   */
  rulesFor(name: string): ChannelRules {
    const config = this.configFor(name);
    if (config) return config;
    if (this.requireConfig) throw new AppError(ErrorCode.Forbidden, `Channel ${name} is not configured`, { channel: name });
    return this.defaults;
  }

  /** Messages a channel keeps as history (its configuration's, or the default), for the publish path. */
  historyKept(name: string): number {
    return (this.configFor(name) ?? this.defaults).history;
  }

  /** Every configuration, most specific first. */
  list(): ChannelSettings[] {
    return [...this.channels.values()].sort((a, b) => bySpecificity(a.pattern, b.pattern)).map((c) => c.settings);
  }

  /** The configuration stored for exactly this pattern. */
  get(pattern: string): ChannelSettings | null {
    return this.channels.get(pattern)?.settings ?? null;
  }

  /** Validates and stores a configuration; one per pattern. */
  async create(input: ChannelCreate): Promise<ChannelSettings> {
    const change = this.stageCreate(input);
    await writeTogether(this.prisma, [change]);
    return change.result();
  }

  /** Validates and applies a change to the configuration stored for a pattern. */
  async update(pattern: string, input: ChannelUpdate): Promise<ChannelSettings> {
    const change = this.stageUpdate(pattern, input);
    await writeTogether(this.prisma, [change]);
    return change.result();
  }

  /** Deletes the configuration stored for a pattern. Returns false when there was none. */
  async delete(pattern: string): Promise<boolean> {
    const change = this.stageDelete(pattern);
    await writeTogether(this.prisma, [change]);
    return change.result();
  }

  /**
   * Every problem {@link ChannelConfigStore.create} would refuse `input` for (it reports them one at
   * a time), each at its path in the input (`pattern`, `history`). Whether a configuration exists
   * for the pattern is not checked. Nothing is stored.
   */
  check(input: unknown): InputProblem[] {
    const parsed = ChannelCreateSchema.safeParse(input);
    const problems = parsed.success ? [] : zodProblems(parsed.error);
    const pattern = (input as { pattern?: unknown } | null)?.pattern;
    if (typeof pattern === "string") {
      try {
        compileChannelPattern(pattern, "pattern");
      } catch (error) {
        problems.push({ path: "pattern", message: (error as Error).message });
      }
    }
    return problems;
  }

  /** {@link ChannelConfigStore.create}, checked but not written: for {@link writeTogether} with other changes. */
  stageCreate(input: ChannelCreate): StagedChange & { result(): ChannelSettings } {
    const data = parseInput(ChannelCreateSchema, input);
    compileChannelPattern(data.pattern, "input.pattern");
    if (this.channels.has(data.pattern)) throw patternTaken(data.pattern);
    let row: ChannelRow | undefined;
    let settings: ChannelSettings | undefined;
    return {
      write: async (tx) => {
        row = await uniquePattern(data.pattern, () =>
          tx.channel.create({ data: { ...this.defaults, ...data, description: data.description ?? null, id: randomUUID() } }),
        );
      },
      committed: () => {
        settings = this.changed(row!, data.pattern);
      },
      result: () => settings!,
    };
  }

  /** {@link ChannelConfigStore.update}, checked but not written: for {@link writeTogether} with other changes. */
  stageUpdate(pattern: string, input: ChannelUpdate): StagedChange & { result(): ChannelSettings } {
    const current = this.require(pattern);
    const data = parseInput(ChannelUpdateSchema, input);
    if (data.pattern !== undefined && data.pattern !== pattern) {
      compileChannelPattern(data.pattern, "input.pattern");
      if (this.channels.has(data.pattern)) throw patternTaken(data.pattern);
    }
    let row: ChannelRow | undefined;
    let settings: ChannelSettings | undefined;
    return {
      write: async (tx) => {
        const { count } = await uniquePattern(data.pattern ?? pattern, () => tx.channel.updateMany({ where: { id: current.id }, data }));
        if (count === 0) throw new AppError(ErrorCode.NotFound, `No channel configuration for ${pattern}`);
        row = await tx.channel.findUniqueOrThrow({ where: { id: current.id } });
      },
      committed: () => {
        this.channels.delete(pattern);
        settings = this.changed(row!, pattern);
      },
      result: () => settings!,
    };
  }

  /** {@link ChannelConfigStore.delete}, not yet written: for {@link writeTogether} with other changes. */
  stageDelete(pattern: string): StagedChange & { result(): boolean } {
    let count = 0;
    return {
      write: async (tx) => {
        ({ count } = await tx.channel.deleteMany({ where: { pattern } }));
      },
      committed: () => {
        this.channels.delete(pattern);
        this.applied();
        if (count > 0) for (const listener of this.changeListeners) listener(pattern);
      },
      result: () => count > 0,
    };
  }

  private require(pattern: string): ChannelSettings {
    const found = this.channels.get(pattern);
    if (!found) throw new AppError(ErrorCode.NotFound, `No channel configuration for ${pattern}`);
    return found.settings;
  }

  private changed(row: ChannelRow, previousPattern: string): ChannelSettings {
    const loaded = this.load(row);
    this.channels.set(row.pattern, loaded);
    this.applied();
    for (const listener of this.changeListeners) listener(previousPattern);
    return loaded.settings;
  }

  private applied(): void {
    this.memo.clear();
    for (const listener of this.appliedListeners) listener();
  }

  private load(row: ChannelRow): LoadedChannel {
    return { settings: toSettings(row), pattern: compileChannelPattern(row.pattern) };
  }
}

function patternTaken(pattern: string, code: string = ErrorCode.BadUserInput): AppError {
  return new AppError(code, `A channel configuration for ${pattern} exists already`, { path: "input.pattern" });
}

/**
 * Runs a write that sets a configuration's pattern. The database's unique pattern check fails it
 * only when another instance stored the pattern since this one looked: `CONFLICT`, worth a retry.
 */
async function uniquePattern<T>(pattern: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error, "pattern")) throw patternTaken(pattern, ErrorCode.Conflict);
    throw error;
  }
}
