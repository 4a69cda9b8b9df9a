import { isDeepStrictEqual } from "node:util";
import type { ChannelMessaging } from "../realtime/channel-config.js";
import type { TriggerConfig } from "../triggers/store/config.js";
import { MAX_JSON_DEPTH } from "../validation.js";

/**
 * Channel configurations and triggers as a file (`realtime.json`): what `config export` writes and
 * `config apply` makes a server match (through the `applyConfig` mutation, which checks the file).
 * Channels are keyed by pattern, triggers by name; the file holds no ids or timestamps, and its
 * order is stable, so it diffs well in review.
 */

/** The version of the file format this code reads and writes. */
export const CONFIG_FILE_VERSION = 1;

/** The largest file `config apply` reads (the server's `MAX_HTTP_BODY_BYTES` may be lower). */
export const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024;

/**
 * How deeply a file may nest: the file's own three levels (file, list, entry) over the deepest stack
 * a trigger may have, with some room, so that a deeper stack is reported at its path.
 */
export const MAX_CONFIG_DEPTH = 100;

/** What a deeper file is told; the CLI and the server say the same. */
export const TOO_DEEP = `nests deeper than ${MAX_CONFIG_DEPTH} levels (a trigger's stack may nest at most ${MAX_JSON_DEPTH})`;

/** The channel settings a file holds. A setting left out is not managed by the file. */
export interface ChannelEntry {
  readonly pattern: string;
  readonly description?: string | null;
  readonly active?: boolean;
  readonly anonymousClients?: boolean;
  readonly messaging?: ChannelMessaging;
  readonly presence?: boolean;
  readonly history?: number;
  readonly membersOnly?: boolean;
}

/** A trigger as a file holds it (its settings, without identity, revision or times); a field left out takes createTrigger's default. */
export type TriggerEntry = Omit<TriggerConfig, "id" | "revision" | "createdAt" | "updatedAt">;

/** A file's content. */
export interface ConfigFile {
  readonly version: typeof CONFIG_FILE_VERSION;
  readonly channels: readonly ChannelEntry[];
  readonly triggers: readonly TriggerEntry[];
}

/** The fields a file has at its top level. */
export const FILE_KEYS = ["version", "channels", "triggers"] as const;
/** The fields a channel entry may have, in the file's order. */
export const CHANNEL_KEYS = [
  "pattern",
  "description",
  "active",
  "anonymousClients",
  "messaging",
  "presence",
  "history",
  "membersOnly",
] as const;
/** The fields a trigger entry may have, in the file's order. */
export const TRIGGER_KEYS = ["name", "description", "active", "tags", "actions", "channel", "order", "onError", "timing", "stack"] as const;

function pick<T extends object>(value: T, keys: readonly string[]): T {
  const picked: Record<string, unknown> = {};
  for (const key of keys) if ((value as Record<string, unknown>)[key] !== undefined) picked[key] = (value as Record<string, unknown>)[key];
  return picked as T;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A file's content in its stable form: fixed key order, channels by pattern, triggers by name. */
export function normalizeConfig(config: ConfigFile): ConfigFile {
  return {
    version: CONFIG_FILE_VERSION,
    channels: config.channels.map((channel) => pick(channel, CHANNEL_KEYS)).sort((a, b) => byText(a.pattern, b.pattern)),
    triggers: config.triggers.map((trigger) => pick(trigger, TRIGGER_KEYS)).sort((a, b) => byText(a.name, b.name)),
  };
}

/** The file's text: two-space JSON ending with a newline. */
export function formatConfig(config: ConfigFile): string {
  return `${JSON.stringify(normalizeConfig(config), null, 2)}\n`;
}

/** A channel configuration as the server reports it. */
export type ServerChannel = Required<ChannelEntry> & { readonly id: string };
/** A trigger as the server reports it. */
export type ServerTrigger = TriggerEntry & { readonly id: string; readonly revision: number };

/** One change of a plan; `path` is where its entry is in the file (`triggers[2]`). */
export type PlanStep =
  | { readonly kind: "create-channel"; readonly channel: ChannelEntry; readonly path: string }
  | { readonly kind: "update-channel"; readonly channel: ChannelEntry; readonly changes: FieldChange[]; readonly path: string }
  | { readonly kind: "delete-channel"; readonly pattern: string }
  | { readonly kind: "create-trigger"; readonly trigger: TriggerEntry; readonly path: string }
  | {
      readonly kind: "update-trigger";
      readonly id: string;
      readonly revision: number;
      readonly trigger: TriggerEntry;
      readonly changes: FieldChange[];
      readonly path: string;
    }
  | { readonly kind: "delete-trigger"; readonly id: string; readonly revision: number; readonly name: string };

/** What a step does to its entry. */
export type PlanAction = "CREATE" | "UPDATE" | "DELETE";

/** What a step does to its entry. */
export function actionOf(step: PlanStep): PlanAction {
  return step.kind.startsWith("create") ? "CREATE" : step.kind.startsWith("update") ? "UPDATE" : "DELETE";
}

/** A field whose value differs between the server and the file. */
export interface FieldChange {
  readonly field: string;
  readonly from: unknown;
  readonly to: unknown;
}

/** What apply would do, in the order it does it, and how many entries are already as the file says. */
export interface Plan {
  readonly steps: PlanStep[];
  readonly unchanged: number;
}

function fieldChanges(currentEntry: object, wantedEntry: object, keys: readonly string[]): FieldChange[] {
  const current = currentEntry as Record<string, unknown>;
  const wanted = wantedEntry as Record<string, unknown>;
  return keys
    .filter((key) => wanted[key] !== undefined && !isDeepStrictEqual(current[key] ?? null, wanted[key] ?? null))
    .map((field) => ({ field, from: current[field] ?? null, to: wanted[field] ?? null }));
}

/**
 * What makes the server match the file: channels first (by pattern), then triggers (by name, which
 * is unique), each in the file's stable order; creations and changes before deletions, which happen
 * only with `prune`. Patterns and names must be unique in the file.
 */
export function planChanges(
  file: ConfigFile,
  server: { readonly channels: readonly ServerChannel[]; readonly triggers: readonly ServerTrigger[] },
  options: { readonly prune: boolean },
): Plan {
  const wanted = normalizeConfig(file);
  const channelPaths = new Map(file.channels.map((channel, index) => [channel.pattern, `channels[${index}]`]));
  const triggerPaths = new Map(file.triggers.map((trigger, index) => [trigger.name, `triggers[${index}]`]));
  const steps: PlanStep[] = [];
  const deletions: PlanStep[] = [];
  let unchanged = 0;

  const channels = new Map(server.channels.map((channel) => [channel.pattern, channel]));
  for (const channel of wanted.channels) {
    const current = channels.get(channel.pattern);
    const path = channelPaths.get(channel.pattern)!;
    if (!current) steps.push({ kind: "create-channel", channel, path });
    else {
      const changes = fieldChanges(current, channel, CHANNEL_KEYS);
      if (changes.length > 0) steps.push({ kind: "update-channel", channel, changes, path });
      else unchanged++;
    }
  }
  const filePatterns = new Set(wanted.channels.map((channel) => channel.pattern));
  for (const channel of [...server.channels].sort((a, b) => byText(a.pattern, b.pattern))) {
    if (!filePatterns.has(channel.pattern) && options.prune) deletions.push({ kind: "delete-channel", pattern: channel.pattern });
  }

  const triggers = new Map(server.triggers.map((trigger) => [trigger.name, trigger]));
  for (const trigger of wanted.triggers) {
    const current = triggers.get(trigger.name);
    const path = triggerPaths.get(trigger.name)!;
    if (!current) steps.push({ kind: "create-trigger", trigger, path });
    else {
      const changes = fieldChanges(current, trigger, TRIGGER_KEYS);
      if (changes.length > 0) steps.push({ kind: "update-trigger", id: current.id, revision: current.revision, trigger, changes, path });
      else unchanged++;
    }
  }
  const fileNames = new Set(wanted.triggers.map((trigger) => trigger.name));
  for (const trigger of [...server.triggers].sort((a, b) => byText(a.name, b.name))) {
    if (!fileNames.has(trigger.name) && options.prune) {
      deletions.push({ kind: "delete-trigger", id: trigger.id, revision: trigger.revision, name: trigger.name });
    }
  }
  return { steps: [...steps, ...deletions], unchanged };
}

/** A value for one line of a plan: short JSON, or a note that it changed when it is long. */
function shown(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length <= 60 ? text : `(${text.length} characters of JSON)`;
}

/** One plan step as a line of text. */
export function describeStep(step: PlanStep): string {
  const changes = (list: FieldChange[]) => list.map((change) => `${change.field}: ${shown(change.from)} -> ${shown(change.to)}`).join(", ");
  switch (step.kind) {
    case "create-channel":
      return `+ channel ${step.channel.pattern}`;
    case "update-channel":
      return `~ channel ${step.channel.pattern}: ${changes(step.changes)}`;
    case "delete-channel":
      return `- channel ${step.pattern}`;
    case "create-trigger":
      return `+ trigger "${step.trigger.name}" on ${step.trigger.channel}`;
    case "update-trigger":
      return `~ trigger "${step.trigger.name}" (revision ${step.revision}): ${changes(step.changes)}`;
    case "delete-trigger":
      return `- trigger "${step.name}"`;
  }
}

/** A plan's summary line, from what its steps do and how many entries stay as they are. */
export function planSummary(actions: readonly PlanAction[], unchanged: number): string {
  const count = (action: PlanAction) => actions.filter((each) => each === action).length;
  return `Plan: ${count("CREATE")} to create, ${count("UPDATE")} to change, ${count("DELETE")} to delete, ${unchanged} unchanged.`;
}
