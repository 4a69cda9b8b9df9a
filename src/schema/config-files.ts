import type { ConfigApplyResult } from "../management/apply-config.js";
import { actionOf, describeStep, type FieldChange, type PlanStep } from "../management/config-file.js";
import type { InputProblem } from "../validation.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";

const ConfigChangeActionEnum = builder.enumType("ConfigChangeAction", {
  description: "What a change does to its entry.",
  values: ["CREATE", "UPDATE", "DELETE"] as const,
});

const ConfigEntryKindEnum = builder.enumType("ConfigEntryKind", {
  description: "What an entry of a configuration file configures.",
  values: ["CHANNEL", "TRIGGER"] as const,
});

const ConfigFieldChangeRef = builder.objectRef<FieldChange>("ConfigFieldChange").implement({
  description: "A field whose value the change sets.",
  fields: (t) => ({
    field: t.exposeString("field"),
    from: t.field({ type: "JSON", nullable: true, description: "The value on the server.", resolve: (change) => change.from }),
    to: t.field({ type: "JSON", nullable: true, description: "The value in the file.", resolve: (change) => change.to }),
  }),
});

const ConfigChangeRef = builder.objectRef<PlanStep>("ConfigChange").implement({
  description: "One change applyConfig makes (or would make) to match the file.",
  fields: (t) => ({
    action: t.field({ type: ConfigChangeActionEnum, resolve: (step) => actionOf(step) }),
    kind: t.field({ type: ConfigEntryKindEnum, resolve: (step) => (step.kind.endsWith("channel") ? "CHANNEL" : "TRIGGER") }),
    key: t.string({
      description: "The channel pattern or trigger name.",
      resolve: (step) =>
        "channel" in step ? step.channel.pattern : "trigger" in step ? step.trigger.name : "pattern" in step ? step.pattern : step.name,
    }),
    path: t.string({
      nullable: true,
      description: "Where the entry is in the file, e.g. triggers[2]; null for a deletion.",
      resolve: (step) => ("path" in step ? step.path : null),
    }),
    fields: t.field({
      type: [ConfigFieldChangeRef],
      description: "UPDATE: the fields that change. Empty for CREATE and DELETE.",
      resolve: (step) => ("changes" in step ? step.changes : []),
    }),
    summary: t.string({
      description:
        'The change as one line, as `config apply` prints it: `+ trigger "shout" on room:*`, `~ channel room:*: history: 50 -> 10`.',
      resolve: (step) => describeStep(step),
    }),
  }),
});

const ConfigProblemRef = builder.objectRef<InputProblem>("ConfigProblem").implement({
  description: "Something in a configuration file the server refuses.",
  fields: (t) => ({
    path: t.exposeString("path", { description: 'Where, in the file: e.g. "triggers[2].stack[1].value"; "" for the file as a whole.' }),
    message: t.exposeString("message"),
  }),
});

const ConfigApplyResultRef = builder.objectRef<ConfigApplyResult>("ConfigApplyResult").implement({
  description: "What applyConfig did, or would do (dryRun).",
  fields: (t) => ({
    applied: t.exposeBoolean("applied", { description: "True when the changes were made; false for a dry run." }),
    changes: t.field({
      type: [ConfigChangeRef],
      description: "The changes, in the order they are made: channels, then triggers, deletions last. Empty when there are problems.",
      resolve: (result) => result.steps,
    }),
    unchanged: t.exposeInt("unchanged", { description: "Entries of the file the server already matches." }),
    problems: t.field({
      type: [ConfigProblemRef],
      description:
        "dryRun: every problem the server finds in the file, each at its path (empty when it can be applied). A real apply refuses such a file instead.",
      resolve: (result) => result.problems,
    }),
  }),
});

builder.mutationFields((t) => ({
  applyConfig: t.field({
    type: ConfigApplyResultRef,
    description:
      "Makes channel configurations and triggers match a configuration file (what `config export` writes): channels matched by pattern, triggers by name. Every entry is checked as createChannel and createTrigger check it; with problems, nothing is changed: BAD_USER_INPUT lists each, at its path in the file, in extensions.problems ({ path, message }). The changes are made in one transaction, all or none: CONFLICT when an entry changed since it was read (trigger changes are revisions with the note `config apply`, made only if the trigger is still at the revision planned). Admin only.",
    args: {
      config: t.arg({ type: "JSON", required: true, description: "The file's content: { version: 1, channels: [...], triggers: [...] }." }),
      prune: t.arg.boolean({
        required: true,
        defaultValue: false,
        description: "Also delete the channel configurations and triggers the file lacks.",
      }),
      dryRun: t.arg.boolean({
        required: true,
        defaultValue: false,
        description: "Check and plan only: change nothing, and report the problems instead of failing on them.",
      }),
    },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.configFiles.apply(args.config, { prune: args.prune, dryRun: args.dryRun });
    },
  }),
}));
