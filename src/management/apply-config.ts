import { type Prisma, type StagedChange, writeTogether } from "../db.js";
import { AppError, badInput } from "../errors.js";
import type { ChannelConfigStore } from "../realtime/channel-config.js";
import type { TriggerStore } from "../triggers/store/trigger-store.js";
import { type InputProblem, joinPath, nestsDeeperThan } from "../validation.js";
import {
  CHANNEL_KEYS,
  type ChannelEntry,
  CONFIG_FILE_VERSION,
  type ConfigFile,
  describeStep,
  FILE_KEYS,
  MAX_CONFIG_DEPTH,
  type PlanStep,
  planChanges,
  TOO_DEEP,
  TRIGGER_KEYS,
  type TriggerEntry,
} from "./config-file.js";

/** What {@link ConfigApplier.apply} did, or would do in a dry run. */
export interface ConfigApplyResult {
  /** True when the changes were made (not a dry run). */
  readonly applied: boolean;
  /** The changes, in the order they are (or would be) made; none when the file has problems. */
  readonly steps: readonly PlanStep[];
  /** Entries of the file the server already matches. */
  readonly unchanged: number;
  /** Every problem found in the file (a dry run reports them; a real apply refuses the file instead). */
  readonly problems: readonly InputProblem[];
}

/** The revision note of trigger changes made by an apply. */
export const APPLY_NOTE = "config apply";

/**
 * How long the transaction of one apply may take. Its statements take microseconds each on SQLite,
 * where the database waits for it, and about a millisecond each on a remote PostgreSQL.
 */
const APPLY_TIMEOUT_MS = 30_000;

/** Problems named in the message of a refused apply; `extensions.problems` has them all. */
const LISTED_PROBLEMS = 5;

type Entry = Record<string, unknown>;

const isObject = (value: unknown): value is Entry => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Makes the server match a configuration file (see ./config-file.ts) in one transaction: every
 * entry is checked exactly as the single mutations check it (createChannel, createTrigger), every
 * problem is reported at its path in the file, and the changes are written all together or not at
 * all. Caches, listeners and the other instances learn of them only once the transaction committed.
 */
export class ConfigApplier {
  constructor(
    private readonly prisma: Prisma,
    private readonly channels: ChannelConfigStore,
    private readonly triggers: TriggerStore,
  ) {}

  /**
   * Every problem with a file's content, each at its path in the file (`triggers[2].stack[1].value`),
   * and, when there is none, the content as it would be applied (defaults filled in, names trimmed).
   */
  check(json: unknown): { config: ConfigFile | null; problems: InputProblem[] } {
    if (nestsDeeperThan(json, MAX_CONFIG_DEPTH)) return { config: null, problems: [{ path: "", message: `the file ${TOO_DEEP}` }] };
    if (!isObject(json)) return { config: null, problems: [{ path: "", message: "must be an object: { version, channels, triggers }" }] };
    const problems: InputProblem[] = unknownFields(json, FILE_KEYS, "");
    if (json.version !== CONFIG_FILE_VERSION) problems.push({ path: "version", message: `must be ${CONFIG_FILE_VERSION}` });

    const channels = this.entries<ChannelEntry>(json, "channels", CHANNEL_KEYS, problems, (entry) => {
      const found = this.channels.check(entry);
      return found.length > 0 ? { problems: found } : { entry: entry as unknown as ChannelEntry, key: entry.pattern as string };
    });
    const triggers = this.entries<TriggerEntry>(json, "triggers", TRIGGER_KEYS, problems, (entry) => {
      const { data, problems: found } = this.triggers.check(entry);
      if (!data) return { problems: found };
      return { entry: { ...data, description: data.description ?? null } satisfies TriggerEntry, key: data.name };
    });
    if (problems.length > 0) return { config: null, problems };
    return { config: { version: CONFIG_FILE_VERSION, channels, triggers }, problems };
  }

  /**
   * Checks a file and plans the changes that make the server match it (with `prune`, deleting what the
   * file lacks too); unless `dryRun`, makes them, all in one transaction.
   * @throws AppError `BAD_USER_INPUT` when the file has problems (not in a dry run), listing them in
   * `details.problems`; `CONFLICT` when an entry changed since it was planned (nothing is changed)
   */
  async apply(json: unknown, options: { readonly prune: boolean; readonly dryRun: boolean }): Promise<ConfigApplyResult> {
    const { config, problems } = this.check(json);
    if (!config) {
      if (options.dryRun) return { applied: false, steps: [], unchanged: 0, problems };
      const count = problems.length === 1 ? "a problem" : `${problems.length} problems`;
      const listed = problems.slice(0, LISTED_PROBLEMS).map((problem) => `${problem.path || "(the file)"}: ${problem.message}`);
      if (problems.length > LISTED_PROBLEMS) listed.push(`and ${problems.length - LISTED_PROBLEMS} more (see extensions.problems)`);
      throw badInput(`The file has ${count}, so nothing was applied: ${listed.join("; ")}`, { problems });
    }
    const plan = planChanges(config, { channels: this.channels.list(), triggers: this.triggers.list() }, { prune: options.prune });
    if (options.dryRun || plan.steps.length === 0) return { applied: !options.dryRun, ...plan, problems: [] };
    await writeTogether(
      this.prisma,
      plan.steps.map((step) => naming(step, this.stage(step))),
      { timeout: APPLY_TIMEOUT_MS },
    );
    return { applied: true, ...plan, problems: [] };
  }

  /**
   * The entries of one list of the file, checked one by one: shape, fields, then `check`; each
   * problem goes to `problems` at its path. Entries with the same key (pattern, name) are refused.
   */
  private entries<T>(
    json: Entry,
    list: "channels" | "triggers",
    keys: readonly string[],
    problems: InputProblem[],
    check: (entry: Entry) => { entry: T; key: string } | { problems: InputProblem[] },
  ): T[] {
    const value = json[list] ?? [];
    if (!Array.isArray(value)) {
      problems.push({ path: list, message: "must be a list" });
      return [];
    }
    const checked: T[] = [];
    const seen = new Map<string, string>();
    value.forEach((entry: unknown, index) => {
      const path = `${list}[${index}]`;
      if (!isObject(entry)) {
        problems.push({ path, message: "must be an object" });
        return;
      }
      const found = unknownFields(entry, keys, path);
      const result = check(entry);
      if ("problems" in result) found.push(...result.problems.map((problem) => ({ ...problem, path: joinPath(path, problem.path) })));
      if (found.length > 0 || !("entry" in result)) {
        problems.push(...found);
        return;
      }
      const field = list === "channels" ? "pattern" : "name";
      const first = seen.get(result.key);
      if (first !== undefined) {
        problems.push({ path: `${path}.${field}`, message: `${JSON.stringify(result.key)} is the ${field} of ${first} too` });
        return;
      }
      seen.set(result.key, path);
      checked.push(result.entry);
    });
    return checked;
  }

  /** The store's staged change for a step: checked again as the single mutation would, not yet written. */
  private stage(step: PlanStep): StagedChange {
    switch (step.kind) {
      case "create-channel":
        return this.channels.stageCreate(step.channel);
      case "update-channel": {
        const { pattern, ...settings } = step.channel;
        return this.channels.stageUpdate(pattern, settings);
      }
      case "delete-channel":
        return this.channels.stageDelete(step.pattern);
      case "create-trigger":
        return this.triggers.stageCreate(step.trigger, APPLY_NOTE);
      case "update-trigger":
        // expectedRevision: a trigger changed since the plan was made is not overwritten.
        return this.triggers.stageUpdate(step.id, step.trigger, { expectedRevision: step.revision, note: APPLY_NOTE });
      case "delete-trigger":
        return this.triggers.stageDelete(step.id, { expectedRevision: step.revision });
    }
  }
}

/** The fields of `entry` that are not among `keys`, as problems. */
function unknownFields(entry: Entry, keys: readonly string[], path: string): InputProblem[] {
  return Object.keys(entry)
    .filter((key) => !keys.includes(key))
    .map((key) => ({ path: joinPath(path, key), message: `unknown field; the fields are ${keys.join(", ")}` }));
}

/** A staged change whose errors name the step they stopped (the plan's line for it). */
function naming(step: PlanStep, change: StagedChange): StagedChange {
  return {
    write: async (tx) => {
      try {
        await change.write(tx);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        throw new AppError(error.code, `${error.message} (while applying: ${describeStep(step)}; nothing was applied)`, error.details);
      }
    },
    committed: () => change.committed(),
  };
}
