import { z } from "zod";
import { REALTIME_ACTIONS, type RealtimeAction } from "../../realtime/types.js";

/** What happens to an event when its trigger fails: refuse it (fail closed), drop it, or deliver it unchanged. */
export const TRIGGER_ERROR_POLICIES = ["REJECT", "DROP", "DELIVER"] as const;
export type TriggerErrorPolicy = (typeof TRIGGER_ERROR_POLICIES)[number];

/**
 * When a trigger runs: BEFORE delivery (it may change, drop or refuse the event), or AFTER it, on the
 * event as delivered, from a durable queue with retries (it cannot change the event).
 */
export const TRIGGER_TIMINGS = ["BEFORE", "AFTER"] as const;
export type TriggerTiming = (typeof TRIGGER_TIMINGS)[number];

/** A stored trigger's settings. */
export interface TriggerConfig {
  readonly id: string;
  readonly name: string;
  readonly description: string | null;
  readonly active: boolean;
  readonly tags: string[];
  readonly actions: RealtimeAction[];
  /** A channel name, or a pattern where `*` matches one or more characters. */
  readonly channel: string;
  readonly order: number;
  readonly onError: TriggerErrorPolicy;
  readonly timing: TriggerTiming;
  readonly stack: unknown;
  /** The number of the trigger's latest revision, from 1; every change makes a new one. */
  readonly revision: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A trigger's settings without identity or times: what a revision stores and a config file holds. */
export type TriggerSettings = Pick<
  TriggerConfig,
  "name" | "description" | "active" | "tags" | "actions" | "channel" | "order" | "onError" | "stack"
> &
  Partial<Pick<TriggerConfig, "timing">>;

/** The settings of a trigger, in a fixed key order. */
export function settingsOf(config: TriggerSettings): TriggerSettings {
  const { name, description, active, tags, actions, channel, order, onError, timing, stack } = config;
  return { name, description, active, tags, actions, channel, order, onError, timing: timing ?? "BEFORE", stack };
}

const name = z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters");
const tags = z.array(z.string().trim().min(1, "must not be empty").max(64)).max(32, "at most 32 tags");

/** Fields a trigger is created with; the defaults are those of `CreateTriggerInput`. */
export const TriggerCreateSchema = z.object({
  name,
  description: z.string().max(2000).nullish(),
  active: z.boolean().default(true),
  tags: tags.default([]),
  actions: z.array(z.enum(REALTIME_ACTIONS)).min(1, "name at least one action"),
  channel: z.string(),
  order: z.number().int().min(-1_000_000).max(1_000_000).default(0),
  onError: z.enum(TRIGGER_ERROR_POLICIES).default("REJECT"),
  timing: z.enum(TRIGGER_TIMINGS).default("BEFORE"),
  stack: z.unknown(),
});
export type TriggerCreate = z.input<typeof TriggerCreateSchema>;

/** Fields a trigger update may change; absent fields stay as they are. */
export const TriggerUpdateSchema = TriggerCreateSchema.partial().extend({
  active: z.boolean().optional(),
  tags: tags.optional(),
  order: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  onError: z.enum(TRIGGER_ERROR_POLICIES).optional(),
  timing: z.enum(TRIGGER_TIMINGS).optional(),
});
export type TriggerUpdate = z.input<typeof TriggerUpdateSchema>;
