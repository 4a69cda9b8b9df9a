import type { StepTrace } from "../triggers/run/engine.js";
import type { AfterRunRecord, TriggerRunRecord } from "../triggers/run/records.js";
import type { TriggerTestResult } from "../triggers/run/test-run.js";
import type { TriggerRevision } from "../triggers/store/trigger-store.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";
import { CreateTriggerInput, TriggerActionEnum, TriggerOutcomeEnum, TriggerRef, TriggerRunRef } from "./triggers.js";

// The trigger author's loop: test a stored trigger or a draft as any client, keep every change as a
// revision and roll back to one, and read (or watch live) what each run received and produced.

const TriggerRevisionRef = builder.objectRef<TriggerRevision>("TriggerRevision").implement({
  description: "An immutable snapshot of a trigger's settings, stored by every create, update and rollback.",
  fields: (t) => ({
    revision: t.exposeInt("revision"),
    config: t.field({
      type: "JSON",
      description: "The settings: name, description, active, tags, actions, channel, order, onError, stack.",
      resolve: (revision) => revision.config,
    }),
    note: t.exposeString("note", { nullable: true, description: 'Why it was made, e.g. "created" or "rolled back to revision 2".' }),
    createdAt: t.field({ type: "DateTime", resolve: (revision) => revision.createdAt }),
  }),
});

builder.objectFields(TriggerRef, (t) => ({
  revision: t.exposeInt("revision", { description: "The number of the latest revision, from 1; every change makes a new one." }),
  revisions: t.field({
    type: [TriggerRevisionRef],
    description: "The latest revisions, newest first.",
    args: { last: t.arg.int({ defaultValue: 20 }) },
    resolve: (trigger, args, { services }) => services.triggers.revisions(trigger.id, args.last ?? 20),
  }),
}));

builder.objectFields(TriggerRunRef, (t) => ({
  clientId: t.exposeString("clientId", { nullable: true, description: "The client whose event the trigger ran on." }),
  revision: t.exposeInt("revision", { nullable: true, description: "The trigger's revision that ran." }),
  input: t.field({
    type: "JSON",
    nullable: true,
    description: "`{ payload, commandOptions }` before the run; when larger than 4 KiB, its JSON text cut to 4 KiB (see `truncated`).",
    resolve: (run) => run.input,
  }),
  output: t.field({
    type: "JSON",
    nullable: true,
    description: "`{ payload, commandOptions }` after the run; when larger than 4 KiB, its JSON text cut to 4 KiB (see `truncated`).",
    resolve: (run) => run.output,
  }),
  truncated: t.exposeBoolean("truncated", { description: "True when `input` or `output` was cut to 4 KiB." }),
}));

const TriggerStepTraceRef = builder.objectRef<StepTrace>("TriggerStepTrace").implement({
  description: "What one step of a stack did during a test run.",
  fields: (t) => ({
    path: t.exposeString("path", { description: "Where the step is in the stack, e.g. stack[2].then[0]." }),
    step: t.exposeString("step", { description: "The step kind: var, set, return, if, drop, reject, log, http." }),
    durationMs: t.exposeFloat("durationMs"),
    result: t.field({ type: "JSON", nullable: true, resolve: (step) => step.result }),
    error: t.exposeString("error", { nullable: true }),
  }),
});

const TriggerTestResultRef = builder.objectRef<TriggerTestResult>("TriggerTestResult").implement({
  description: "The result of running a trigger on a sample event, without publishing or recording anything.",
  fields: (t) => ({
    outcome: t.field({ type: TriggerOutcomeEnum, resolve: (result) => result.outcome }),
    payload: t.field({ type: "JSON", nullable: true, resolve: (result) => result.payload }),
    commandOptions: t.field({ type: "JSON", nullable: true, resolve: (result) => result.commandOptions }),
    error: t.string({ nullable: true, resolve: (result) => result.error?.message ?? null }),
    errorCode: t.string({
      nullable: true,
      description: "For REJECTED, the code the sender would get; for FAILED, TRIGGER_FAILED.",
      resolve: (result) => result.error?.code ?? null,
    }),
    log: t.field({
      type: ["JSON"],
      nullable: { list: false, items: true },
      description: "What the run's log steps logged, in order; a missing value is logged as null.",
      resolve: (result) => result.log,
    }),
    trace: t.field({
      type: [TriggerStepTraceRef],
      description: "One entry per step run, in stack order.",
      resolve: (result) => result.trace ?? [],
    }),
    matches: t.exposeBoolean("matches", {
      description:
        "True when the trigger would run on this event: active, and its actions and channel cover it. The stack runs either way.",
    }),
    matchNote: t.exposeString("matchNote", {
      nullable: true,
      description: 'Why it would not run, e.g. "this trigger runs on JOIN only, not on MESSAGE" or "room:* does not match other:1".',
    }),
  }),
});

const TestClientInput = builder.inputType("TestClientInput", {
  description: "Who a test event comes from. Defaults: id test-client, anonymous, no extras.",
  fields: (t) => ({
    id: t.string(),
    authenticated: t.boolean(),
    extras: t.field({ type: "JSON", description: "The token's own claims (authenticated clients only)." }),
  }),
});

const TriggerTestEventInput = builder.inputType("TriggerTestEventInput", {
  fields: (t) => ({
    action: t.field({ type: TriggerActionEnum, required: true }),
    channel: t.string({ required: true }),
    payload: t.field({ type: "JSON" }),
    commandOptions: t.field({ type: "JSON" }),
    clientId: t.string({ description: "Shorthand for client: { id }." }),
    client: t.field({ type: TestClientInput }),
  }),
});

builder.mutationFields((t) => ({
  testTrigger: t.field({
    type: TriggerTestResultRef,
    description:
      "Runs a stored trigger (`id`) or a draft that is validated as createTrigger would and not stored (`draft`) on a sample event; exactly one of the two. Returns the outcome with a per-step trace; publishes and records nothing.",
    args: {
      id: t.arg.id(),
      draft: t.arg({ type: CreateTriggerInput }),
      event: t.arg({ type: TriggerTestEventInput, required: true }),
    },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      const draft = args.draft ? (Object.fromEntries(Object.entries(args.draft).filter(([, value]) => value !== null)) as never) : null;
      return context.services.triggerTester.run({ id: args.id == null ? null : String(args.id), draft }, args.event);
    },
  }),
  rollbackTrigger: t.field({
    type: TriggerRef,
    description: "Makes a new revision of a trigger equal to an earlier one.",
    args: { id: t.arg.id({ required: true }), revision: t.arg.int({ required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.triggers.rollback(String(args.id), args.revision);
    },
  }),
}));

builder.subscriptionFields((t) => ({
  triggerRuns: t.field({
    type: TriggerRunRef,
    description:
      "Streams trigger runs as they are recorded on this server instance: one trigger's, or every trigger's without `triggerId`. AFTER runs appear once per attempt made here, when its outcome is stored. Admin only.",
    args: { triggerId: t.arg.id() },
    subscribe: (_root, args, context) => {
      requireAdmin(context);
      const triggerId = args.triggerId == null ? null : String(args.triggerId);
      if (triggerId !== null) context.services.triggers.require(triggerId);
      return context.services.triggerRuns.live(triggerId);
    },
    resolve: (run: TriggerRunRecord | AfterRunRecord) => run,
  }),
}));
