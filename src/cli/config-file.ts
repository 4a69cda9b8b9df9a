import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { CHANNEL_MESSAGING } from "../realtime/channel-config.js";
import { REALTIME_ACTIONS } from "../realtime/types.js";
import { TRIGGER_ERROR_POLICIES, TRIGGER_TIMINGS } from "../triggers/config.js";

/**
 * Channel configurations and triggers as a file (`realtime.json`): what `config export` writes and
 * `config apply` makes a server match. Channels are keyed by pattern, triggers by name; the file holds
 * no ids or timestamps, and its order is stable, so it diffs well in review.
 */

/** The version of the file format this code reads and writes. */
export const CONFIG_FILE_VERSION = 1;

/** The channel settings a file holds. A setting left out is not managed by the file. */
export const ChannelEntrySchema = z
  .object({
    pattern: z.string().min(1),
    description: z.string().nullable().optional(),
    active: z.boolean().optional(),
    anonymousClients: z.boolean().optional(),
    messaging: z.enum(CHANNEL_MESSAGING).optional(),
    presence: z.boolean().optional(),
    history: z.number().int().optional(),
    membersOnly: z.boolean().optional(),
  })
  .strict();
export type ChannelEntry = z.output<typeof ChannelEntrySchema>;

/** A trigger as a file holds it; a field left out takes createTrigger's default. */
export const TriggerEntrySchema = z
  .object({
    name: z.string().min(1),
    description: z.string().nullable().default(null),
    active: z.boolean().default(true),
    tags: z.array(z.string()).default([]),
    actions: z.array(z.enum(REALTIME_ACTIONS)).min(1),
    channel: z.string().min(1),
    order: z.number().int().default(0),
    onError: z.enum(TRIGGER_ERROR_POLICIES).default("REJECT"),
    timing: z.enum(TRIGGER_TIMINGS).default("BEFORE"),
    stack: z.array(z.unknown()),
  })
  .strict();
export type TriggerEntry = z.output<typeof TriggerEntrySchema>;

export const ConfigFileSchema = z
  .object({
    version: z.literal(CONFIG_FILE_VERSION),
    channels: z.array(ChannelEntrySchema).default([]),
    triggers: z.array(TriggerEntrySchema).default([]),
  })
  .strict();
export type ConfigFile = z.output<typeof ConfigFileSchema>;

const CHANNEL_KEYS = ["pattern", "description", "active", "anonymousClients", "messaging", "presence", "history", "membersOnly"] as const;
const TRIGGER_KEYS = ["name", "description", "active", "tags", "actions", "channel", "order", "onError", "timing", "stack"] as const;

function pick<T extends object>(value: T, keys: readonly string[]): T {
  const picked: Record<string, unknown> = {};
  for (const key of keys) if ((value as Record<string, unknown>)[key] !== undefined) picked[key] = (value as Record<string, unknown>)[key];
  return picked as T;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A file's content in its stable form: fixed key order, channels by pattern, triggers by name then channel. */
export function normalizeConfig(config: ConfigFile): ConfigFile {
  return {
    version: CONFIG_FILE_VERSION,
    channels: config.channels.map((channel) => pick(channel, CHANNEL_KEYS)).sort((a, b) => byText(a.pattern, b.pattern)),
    triggers: config.triggers
      .map((trigger) => pick(trigger, TRIGGER_KEYS))
      .sort((a, b) => byText(a.name, b.name) || byText(a.channel, b.channel) || a.order - b.order),
  };
}

/** The file's text: two-space JSON ending with a newline. */
export function formatConfig(config: ConfigFile): string {
  return `${JSON.stringify(normalizeConfig(config), null, 2)}\n`;
}

/**
 * Reads a file's text, refusing malformed JSON, unknown fields and duplicate patterns or trigger
 * names with a message naming the place.
 */
export function parseConfig(text: string, source = "the file"): ConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source} is not JSON: ${(error as Error).message}`);
  }
  const parsed = ConfigFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${source}: ${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  }
  const config = parsed.data;
  const duplicate = (values: string[]) => values.find((value, index) => values.indexOf(value) !== index);
  const pattern = duplicate(config.channels.map((channel) => channel.pattern));
  if (pattern !== undefined) throw new Error(`${source}: channel pattern "${pattern}" appears twice`);
  const name = duplicate(config.triggers.map((trigger) => trigger.name));
  if (name !== undefined) throw new Error(`${source}: trigger name "${name}" appears twice (apply matches triggers by name)`);
  return config;
}

/** A channel configuration as the server reports it. */
export type ServerChannel = Required<ChannelEntry> & { readonly id: string };
/** A trigger as the server reports it. */
export type ServerTrigger = TriggerEntry & { readonly id: string; readonly revision: number };

/** One change of a plan. */
export type PlanStep =
  | { readonly kind: "create-channel"; readonly channel: ChannelEntry }
  | { readonly kind: "update-channel"; readonly channel: ChannelEntry; readonly changes: FieldChange[] }
  | { readonly kind: "delete-channel"; readonly pattern: string }
  | { readonly kind: "create-trigger"; readonly trigger: TriggerEntry }
  | {
      readonly kind: "update-trigger";
      readonly id: string;
      readonly revision: number;
      readonly trigger: TriggerEntry;
      readonly changes: FieldChange[];
    }
  | { readonly kind: "delete-trigger"; readonly id: string; readonly name: string };

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

function fieldChanges(current: Record<string, unknown>, wanted: Record<string, unknown>, keys: readonly string[]): FieldChange[] {
  return keys
    .filter((key) => wanted[key] !== undefined && !isDeepStrictEqual(current[key] ?? null, wanted[key] ?? null))
    .map((field) => ({ field, from: current[field] ?? null, to: wanted[field] ?? null }));
}

/**
 * What makes the server match the file: channels first (by pattern), then triggers (by name);
 * creations and changes before deletions, which happen only with `prune`. A trigger name held by
 * several triggers on the server cannot be matched and is an error.
 */
export function planChanges(
  file: ConfigFile,
  server: { readonly channels: readonly ServerChannel[]; readonly triggers: readonly ServerTrigger[] },
  options: { readonly prune: boolean },
): Plan {
  const wanted = normalizeConfig(file);
  const steps: PlanStep[] = [];
  const deletions: PlanStep[] = [];
  let unchanged = 0;

  const channels = new Map(server.channels.map((channel) => [channel.pattern, channel]));
  for (const channel of wanted.channels) {
    const current = channels.get(channel.pattern);
    if (!current) steps.push({ kind: "create-channel", channel });
    else {
      const changes = fieldChanges(current, channel, CHANNEL_KEYS);
      if (changes.length > 0) steps.push({ kind: "update-channel", channel, changes });
      else unchanged++;
    }
  }
  const filePatterns = new Set(wanted.channels.map((channel) => channel.pattern));
  for (const channel of [...server.channels].sort((a, b) => byText(a.pattern, b.pattern))) {
    if (!filePatterns.has(channel.pattern) && options.prune) deletions.push({ kind: "delete-channel", pattern: channel.pattern });
  }

  const triggersByName = new Map<string, ServerTrigger[]>();
  for (const trigger of server.triggers) triggersByName.set(trigger.name, [...(triggersByName.get(trigger.name) ?? []), trigger]);
  for (const trigger of wanted.triggers) {
    const matches = triggersByName.get(trigger.name) ?? [];
    if (matches.length > 1) {
      throw new Error(`the server has ${matches.length} triggers named "${trigger.name}": rename or delete all but one first`);
    }
    const current = matches[0];
    if (!current) steps.push({ kind: "create-trigger", trigger });
    else {
      const changes = fieldChanges(current, trigger, TRIGGER_KEYS);
      if (changes.length > 0) steps.push({ kind: "update-trigger", id: current.id, revision: current.revision, trigger, changes });
      else unchanged++;
    }
  }
  const fileNames = new Set(wanted.triggers.map((trigger) => trigger.name));
  const serverTriggers = [...server.triggers].sort((a, b) => byText(a.name, b.name) || byText(a.id, b.id));
  for (const trigger of serverTriggers) {
    if (!fileNames.has(trigger.name) && options.prune) deletions.push({ kind: "delete-trigger", id: trigger.id, name: trigger.name });
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

/** The plan as text: one line per step, then a summary line. */
export function describePlan(plan: Plan): string {
  const count = (kinds: PlanStep["kind"][]) => plan.steps.filter((step) => kinds.includes(step.kind)).length;
  const summary =
    `Plan: ${count(["create-channel", "create-trigger"])} to create, ${count(["update-channel", "update-trigger"])} to change, ` +
    `${count(["delete-channel", "delete-trigger"])} to delete, ${plan.unchanged} unchanged.`;
  return `${[...plan.steps.map(describeStep), summary].join("\n")}\n`;
}
