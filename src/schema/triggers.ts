import { TRIGGER_ACTIONS, TRIGGER_ERROR_POLICIES, type TriggerConfig } from "../triggers/config.js";
import type { TriggerRunRecord } from "../triggers/runs.js";
import type { StackRunResult, StepTrace } from "../triggers/engine.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";

const TriggerActionEnum = builder.enumType("TriggerAction", {
  description: "The events a trigger runs on.",
  values: TRIGGER_ACTIONS,
});

const TriggerErrorPolicyEnum = builder.enumType("TriggerErrorPolicy", {
  description: "What happens to an event when its trigger fails: REJECT it (fail closed), DROP it, or DELIVER it unchanged.",
  values: TRIGGER_ERROR_POLICIES,
});

const TriggerOutcomeEnum = builder.enumType("TriggerOutcome", {
  values: ["DELIVERED", "MODIFIED", "DROPPED", "REJECTED", "FAILED"] as const,
});

const TriggerRunRef = builder.objectRef<TriggerRunRecord>("TriggerRun").implement({
  description: "One recorded execution of a trigger.",
  fields: (t) => ({
    id: t.exposeID("id"),
    triggerId: t.exposeID("triggerId"),
    action: t.field({ type: TriggerActionEnum, resolve: (run) => run.action }),
    channel: t.exposeString("channel"),
    outcome: t.field({ type: TriggerOutcomeEnum, resolve: (run) => run.outcome }),
    durationMs: t.exposeFloat("durationMs"),
    error: t.exposeString("error", { nullable: true }),
    log: t.field({ type: ["JSON"], nullable: { list: false, items: true }, description: "What the run's log steps logged, in order; a missing value is logged as null.", resolve: (run) => run.log }),
    createdAt: t.field({ type: "DateTime", resolve: (run) => run.createdAt }),
  }),
});

/** The GraphQL type of a trigger; other schema files reuse it. */
export const TriggerRef = builder.objectRef<TriggerConfig>("Trigger").implement({
  description: "A function stack run on every matching event of a channel, before delivery.",
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
    stack: t.field({ type: "JSON", resolve: (trigger) => trigger.stack }),
    createdAt: t.field({ type: "DateTime", resolve: (trigger) => trigger.createdAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (trigger) => trigger.updatedAt }),
    runs: t.field({
      type: [TriggerRunRef],
      description: "The latest recorded runs, newest first.",
      args: { last: t.arg.int({ defaultValue: 20 }) },
      resolve: (trigger, args, { services }) => services.triggerRuns.latest(trigger.id, args.last ?? 20),
    }),
  }),
});

const TriggerStepTraceRef = builder.objectRef<StepTrace>("TriggerStepTrace").implement({
  description: "What one step of a stack did during a test run.",
  fields: (t) => ({
    path: t.exposeString("path", { description: "Where the step is in the stack, e.g. stack[2].then[0]." }),
    step: t.exposeString("step", { description: "The step kind: var, set, return, if, drop, reject, log." }),
    durationMs: t.exposeFloat("durationMs"),
    result: t.field({ type: "JSON", nullable: true, resolve: (step) => step.result }),
    error: t.exposeString("error", { nullable: true }),
  }),
});

const TriggerTestResultRef = builder.objectRef<StackRunResult>("TriggerTestResult").implement({
  description: "The result of running a trigger on a sample event, without publishing anything.",
  fields: (t) => ({
    outcome: t.field({ type: TriggerOutcomeEnum, resolve: (result) => result.outcome }),
    payload: t.field({ type: "JSON", nullable: true, resolve: (result) => result.payload }),
    error: t.string({ nullable: true, resolve: (result) => result.error?.message ?? null }),
    log: t.field({ type: ["JSON"], nullable: { list: false, items: true }, description: "What the run's log steps logged, in order; a missing value is logged as null.", resolve: (result) => result.log }),
    trace: t.field({ type: [TriggerStepTraceRef], resolve: (result) => result.trace ?? [] }),
  }),
});

const CreateTriggerInput = builder.inputType("CreateTriggerInput", {
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    active: t.boolean({ defaultValue: true }),
    tags: t.stringList({ defaultValue: [] }),
    actions: t.field({ type: [TriggerActionEnum], required: true }),
    channel: t.string({ required: true }),
    order: t.int({ defaultValue: 0 }),
    onError: t.field({ type: TriggerErrorPolicyEnum, defaultValue: "REJECT" }),
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
    stack: t.field({ type: "JSON" }),
  }),
});

const TriggerTestEventInput = builder.inputType("TriggerTestEventInput", {
  fields: (t) => ({
    action: t.field({ type: TriggerActionEnum, required: true }),
    channel: t.string({ required: true }),
    payload: t.field({ type: "JSON" }),
    commandOptions: t.field({ type: "JSON" }),
    clientId: t.string(),
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
    args: { input: t.arg({ type: CreateTriggerInput, required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.triggers.create(withoutNulls(args.input) as never);
    },
  }),
  updateTrigger: t.field({
    type: TriggerRef,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateTriggerInput, required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      const input = withoutNulls(args.input);
      return context.services.triggers.update(String(args.id), { ...input, description: args.input.description });
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
  testTrigger: t.field({
    type: TriggerTestResultRef,
    description: "Runs a stored trigger on a sample event and returns the outcome with a per-step trace. Publishes nothing.",
    args: { id: t.arg.id({ required: true }), event: t.arg({ type: TriggerTestEventInput, required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.testTrigger(String(args.id), args.event);
    },
  }),
}));
