import type { TriggerStateEntry } from "../triggers/state/state.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";
import { TriggerRef } from "./triggers.js";

// A trigger's state, kept by its get, put, incr and delete steps: read it and clear it.

const TriggerStateEntryRef = builder.objectRef<TriggerStateEntry>("TriggerStateEntry").implement({
  description: "One key of a trigger's state.",
  fields: (t) => ({
    key: t.exposeString("key"),
    value: t.field({ type: "JSON", nullable: true, resolve: (entry) => entry.value }),
    expiresAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When the key expires; null for never.",
      resolve: (entry) => entry.expiresAt,
    }),
  }),
});

builder.objectFields(TriggerRef, (t) => ({
  state: t.field({
    type: [TriggerStateEntryRef],
    description: "The trigger's live state keys starting with `prefix`, in key order (at most 1000). Admin only.",
    args: { prefix: t.arg.string({ defaultValue: "" }), first: t.arg.int({ defaultValue: 50 }) },
    resolve: (trigger, args, context) => {
      requireAdmin(context);
      return context.services.triggerState.list(trigger.id, args.prefix ?? "", args.first ?? 50);
    },
  }),
}));

builder.mutationFields((t) => ({
  clearTriggerState: t.field({
    type: "Int",
    description: "Removes a trigger's state keys starting with `prefix` (all of them without it); returns how many were removed.",
    args: { id: t.arg.id({ required: true }), prefix: t.arg.string() },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      const id = String(args.id);
      context.services.triggers.require(id);
      return context.services.triggerState.store.clear(id, args.prefix ?? "");
    },
  }),
}));
