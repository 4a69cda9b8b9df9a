import { REALTIME_ACTIONS } from "../realtime/types.js";
import { TRIGGER_OUTCOMES, type TriggerOutcome } from "../triggers/run/engine.js";
import {
  AFTER_RUN_STATUSES,
  type AfterAttemptRecord,
  type AfterAttemptRequest,
  type AfterRunRecord,
  type AfterRunStatus,
  MAX_RESPONSE_EXCERPT_BYTES,
  type TriggerRunRecord,
} from "../triggers/run/records.js";
import { TRIGGER_ERROR_POLICIES, TRIGGER_TIMINGS, type TriggerConfig } from "../triggers/store/config.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";

/** The GraphQL enum of trigger actions; other schema files reuse it. */
export const TriggerActionEnum = builder.enumType("TriggerAction", {
  description: "The events a trigger runs on.",
  values: REALTIME_ACTIONS,
});

const TriggerErrorPolicyEnum = builder.enumType("TriggerErrorPolicy", {
  description: "What happens to an event when its trigger fails: REJECT it (fail closed), DROP it, or DELIVER it unchanged.",
  values: TRIGGER_ERROR_POLICIES,
});

const TriggerTimingEnum = builder.enumType("TriggerTiming", {
  description:
    "When a trigger runs: BEFORE delivery (it may change, drop or refuse the event), or AFTER it, on the event as delivered, queued durably and retried (at least once).",
  values: TRIGGER_TIMINGS,
});

/** The outcomes of runs: BEFORE triggers' (DELIVERED, MODIFIED, DROPPED, REJECTED, FAILED) and AFTER triggers' (PENDING, DELIVERED, FAILED). */
const RUN_OUTCOMES = [...new Set<TriggerOutcome | AfterRunStatus>([...TRIGGER_OUTCOMES, ...AFTER_RUN_STATUSES])];

/** The GraphQL enum of run outcomes; other schema files reuse it. */
export const TriggerOutcomeEnum = builder.enumType("TriggerOutcome", {
  description:
    "How a run ended. BEFORE triggers: DELIVERED, MODIFIED, DROPPED, REJECTED or FAILED. AFTER triggers: PENDING (waiting for an attempt), DELIVERED or FAILED.",
  values: RUN_OUTCOMES,
});

const TriggerRunRequestRef = builder.objectRef<AfterAttemptRequest>("TriggerRunRequest").implement({
  description:
    "One webhook call (http step) of an AFTER run's attempt. Kept without secrets: no request headers, no signature, the URL without its query string.",
  fields: (t) => ({
    method: t.exposeString("method"),
    url: t.exposeString("url", { description: "The requested URL's origin and path (no query string, no userinfo)." }),
    status: t.exposeInt("status", {
      nullable: true,
      description: "The HTTP status of the final response (after redirects); null when none came back (network error, timeout).",
    }),
    durationMs: t.exposeFloat("durationMs"),
    responseExcerpt: t.exposeString("responseExcerpt", {
      nullable: true,
      description: `The start of the response body as text, at most ${MAX_RESPONSE_EXCERPT_BYTES} bytes of UTF-8, cut between characters; null when no response came back.`,
    }),
    responseTruncated: t.exposeBoolean("responseTruncated", { description: "True when the body was longer than responseExcerpt." }),
  }),
});

const TriggerRunAttemptRef = builder.objectRef<AfterAttemptRecord>("TriggerRunAttempt").implement({
  description: "One finished attempt of an AFTER run.",
  fields: (t) => ({
    number: t.exposeInt("number", {
      description: "From 1, in order over the run's life: the attempts after retryTriggerRun continue the numbering.",
    }),
    startedAt: t.field({ type: "DateTime", resolve: (attempt) => attempt.startedAt }),
    durationMs: t.exposeFloat("durationMs", { description: "How long the stack ran." }),
    outcome: t.field({
      type: TriggerOutcomeEnum,
      description: "DELIVERED, or FAILED (also for an attempt that failed and was retried).",
      resolve: (attempt) => attempt.outcome,
    }),
    error: t.exposeString("error", { nullable: true }),
    requests: t.field({
      type: [TriggerRunRequestRef],
      description: "The webhook calls the attempt made, in order.",
      resolve: (attempt) => attempt.requests,
    }),
  }),
});

/** The GraphQL type of a recorded run; other schema files add fields to it. */
export const TriggerRunRef = builder.objectRef<TriggerRunRecord | AfterRunRecord>("TriggerRun").implement({
  description: "One recorded execution of a trigger; for an AFTER trigger, its run on one delivered event, over every attempt.",
  fields: (t) => ({
    id: t.exposeID("id"),
    triggerId: t.exposeID("triggerId"),
    action: t.field({ type: TriggerActionEnum, resolve: (run) => run.action }),
    channel: t.exposeString("channel"),
    outcome: t.field({ type: TriggerOutcomeEnum, resolve: (run) => run.outcome }),
    durationMs: t.exposeFloat("durationMs"),
    error: t.exposeString("error", { nullable: true }),
    log: t.field({
      type: ["JSON"],
      nullable: { list: false, items: true },
      description: "What the run's log steps logged, in order; a missing value is logged as null.",
      resolve: (run) => run.log,
    }),
    createdAt: t.field({ type: "DateTime", resolve: (run) => run.createdAt }),
    attempts: t.int({
      nullable: true,
      description: "AFTER triggers: attempts started so far (a retried FAILED run counts from 0 again). Null for BEFORE triggers.",
      resolve: (run) => ("attempts" in run ? run.attempts : null),
    }),
    nextAttemptAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "AFTER triggers: when a PENDING run's next attempt may start. Null once the run is over, and for BEFORE triggers.",
      resolve: (run) => ("nextAttemptAt" in run ? run.nextAttemptAt : null),
    }),
    attemptHistory: t.field({
      type: [TriggerRunAttemptRef],
      description:
        "AFTER triggers: the run's latest finished attempts, oldest first, retries included: at most TRIGGER_RETRY_LIMIT (the oldest make room). An attempt cut short by a crashed instance is not listed. Empty for BEFORE triggers. Admin only.",
      resolve: (run, _args, context) => {
        requireAdmin(context);
        return "attempts" in run ? context.services.afterRuns.attemptHistory(run.id) : [];
      },
    }),
  }),
});

/** The GraphQL type of a trigger; other schema files reuse it. */
export const TriggerRef = builder.objectRef<TriggerConfig>("Trigger").implement({
  description: "A function stack run on every matching event of a channel: before delivery (BEFORE), or on the event as delivered (AFTER).",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    description: t.exposeString("description", { nullable: true }),
    active: t.exposeBoolean("active"),
    tags: t.exposeStringList("tags"),
    actions: t.field({ type: [TriggerActionEnum], resolve: (trigger) => trigger.actions }),
    channel: t.exposeString("channel", { description: "A channel name, or a pattern where * matches one or more characters." }),
    order: t.exposeInt("order", { description: "Triggers on one event run in ascending order, then by creation time." }),
    onError: t.field({ type: TriggerErrorPolicyEnum, resolve: (trigger) => trigger.onError }),
    timing: t.field({ type: TriggerTimingEnum, resolve: (trigger) => trigger.timing }),
    stack: t.field({ type: "JSON", resolve: (trigger) => trigger.stack }),
    createdAt: t.field({ type: "DateTime", resolve: (trigger) => trigger.createdAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (trigger) => trigger.updatedAt }),
    runs: t.field({
      type: [TriggerRunRef],
      description:
        "The latest recorded runs, newest first; with `outcome`, only runs that ended so. An AFTER trigger has one run per delivered event, pending or finished.",
      args: { last: t.arg.int({ defaultValue: 20 }), outcome: t.arg({ type: TriggerOutcomeEnum }) },
      resolve: async (trigger, args, { services }): Promise<(TriggerRunRecord | AfterRunRecord)[]> => {
        const last = args.last ?? 20;
        if (trigger.timing === "AFTER") {
          const outcome = args.outcome as AfterRunStatus | TriggerOutcome | null | undefined;
          if (outcome && !(AFTER_RUN_STATUSES as readonly string[]).includes(outcome)) return [];
          return services.afterRuns.latest(trigger.id, last, outcome as AfterRunStatus | null | undefined);
        }
        if (args.outcome === "PENDING") return [];
        return services.triggerRuns.latest(trigger.id, last, args.outcome as TriggerOutcome | null | undefined);
      },
    }),
  }),
});

/** The fields of a new trigger; other schema files reuse it (a draft to test). */
export const CreateTriggerInput = builder.inputType("CreateTriggerInput", {
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    active: t.boolean({ defaultValue: true }),
    tags: t.stringList({ defaultValue: [] }),
    actions: t.field({ type: [TriggerActionEnum], required: true }),
    channel: t.string({ required: true }),
    order: t.int({ defaultValue: 0 }),
    onError: t.field({ type: TriggerErrorPolicyEnum, defaultValue: "REJECT" }),
    timing: t.field({
      type: TriggerTimingEnum,
      defaultValue: "BEFORE",
      description: "AFTER triggers may not have drop or reject steps (refused with BAD_USER_INPUT).",
    }),
    stack: t.field({ type: "JSON", required: true }),
  }),
});

const UpdateTriggerInput = builder.inputType("UpdateTriggerInput", {
  fields: (t) => ({
    name: t.string(),
    description: t.string(),
    active: t.boolean(),
    tags: t.stringList(),
    actions: t.field({ type: [TriggerActionEnum] }),
    channel: t.string(),
    order: t.int(),
    onError: t.field({ type: TriggerErrorPolicyEnum }),
    timing: t.field({ type: TriggerTimingEnum }),
    stack: t.field({ type: "JSON" }),
  }),
});

/** Drops explicit nulls from a GraphQL input, so "not given" and "null" both mean "unchanged". */
function withoutNulls<T extends object>(input: T): { [K in keyof T]?: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== null)) as never;
}

builder.queryFields((t) => ({
  triggers: t.field({
    type: [TriggerRef],
    description: "Triggers in running order. With a concrete channel name: the triggers that would run for it.",
    args: { channel: t.arg.string(), tag: t.arg.string(), active: t.arg.boolean() },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.triggers.list(args);
    },
  }),
  trigger: t.field({
    type: TriggerRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.triggers.get(String(args.id))?.config ?? null;
    },
  }),
}));

builder.mutationFields((t) => ({
  createTrigger: t.field({
    type: TriggerRef,
    description: "Creates a trigger as its revision 1. Names are unique: a name another trigger has fails with CONFLICT.",
    args: { input: t.arg({ type: CreateTriggerInput, required: true }), note: t.arg.string({ description: "Stored with the revision." }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.triggers.create(withoutNulls(args.input) as never, args.note);
    },
  }),
  updateTrigger: t.field({
    type: TriggerRef,
    description:
      "Changes a trigger, storing the result as its next revision. With `expectedRevision`, a trigger changed since that revision is left as it is and the change fails with CONFLICT, as does a new name another trigger has.",
    args: {
      id: t.arg.id({ required: true }),
      input: t.arg({ type: UpdateTriggerInput, required: true }),
      expectedRevision: t.arg.int(),
      note: t.arg.string({ description: "Stored with the revision." }),
    },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      const input = withoutNulls(args.input);
      return context.services.triggers.update(
        String(args.id),
        { ...input, description: args.input.description },
        { expectedRevision: args.expectedRevision, note: args.note },
      );
    },
  }),
  retryTriggerRun: t.field({
    type: TriggerRunRef,
    description:
      "Queues a FAILED run of an AFTER trigger again, with a fresh set of attempts (TRIGGER_RETRY_LIMIT). NOT_FOUND for no such run; BAD_USER_INPUT for a run that is not FAILED.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.afterRuns.retry(String(args.id));
    },
  }),
  deleteTrigger: t.field({
    type: "Boolean",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.triggers.delete(String(args.id));
    },
  }),
}));
