import { CHANNEL_MESSAGING, type ChannelSettings } from "../realtime/channel-config.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";
import { TriggerRef } from "./triggers.js";

const ChannelMessagingEnum = builder.enumType("ChannelMessaging", {
  description: "Who may send: ANYONE, AUTHENTICATED clients, or NOBODY but the admin.",
  values: CHANNEL_MESSAGING,
});

const ChannelRef = builder.objectRef<ChannelSettings>("Channel").implement({
  description: "Settings for the channels whose names match `pattern`.",
  fields: (t) => ({
    id: t.exposeID("id"),
    pattern: t.exposeString("pattern", { description: "A channel name, or a pattern where * matches one or more characters." }),
    description: t.exposeString("description", { nullable: true }),
    active: t.exposeBoolean("active", { description: "An inactive channel refuses joins and sends." }),
    anonymousClients: t.exposeBoolean("anonymousClients", { description: "Anonymous clients may join and listen." }),
    messaging: t.field({ type: ChannelMessagingEnum, resolve: (channel) => channel.messaging }),
    presence: t.exposeBoolean("presence"),
    history: t.exposeInt("history", { description: "Messages kept, 0..1000." }),
    membersOnly: t.exposeBoolean("membersOnly", {
      description: "Only current members (joined and not left) may send, read history and read presence; the admin is exempt.",
    }),
    triggers: t.field({
      type: [TriggerRef],
      description: "The triggers attached to this pattern; for a plain name, every trigger that runs on it.",
      resolve: (channel, _args, { services }) =>
        channel.pattern.includes("*")
          ? services.triggers.list().filter((trigger) => trigger.channel === channel.pattern)
          : services.triggers.list({ channel: channel.pattern }),
    }),
    createdAt: t.field({ type: "DateTime", resolve: (channel) => channel.createdAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (channel) => channel.updatedAt }),
  }),
});

const ruleFields = (t: PothosSchemaTypes.InputFieldBuilder<PothosSchemaTypes.ExtendDefaultTypes<never>, "InputObject">) => ({
  description: t.string(),
  active: t.boolean(),
  anonymousClients: t.boolean(),
  messaging: t.field({ type: ChannelMessagingEnum }),
  presence: t.boolean(),
  history: t.int(),
  membersOnly: t.boolean(),
});

const CreateChannelInput = builder.inputType("CreateChannelInput", {
  description: "Unset settings take the server-wide defaults.",
  fields: (t) => ({ pattern: t.string({ required: true }), ...ruleFields(t as never) }),
});

const UpdateChannelInput = builder.inputType("UpdateChannelInput", {
  fields: (t) => ({ pattern: t.string(), ...ruleFields(t as never) }),
});

/** Drops explicit nulls (except description, which null clears), so null and absent both mean "unchanged". */
function changes<T extends Record<string, unknown>>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([key, value]) => value !== null || key === "description")) as Partial<T>;
}

builder.queryFields((t) => ({
  channels: t.field({
    type: [ChannelRef],
    description: "Every channel configuration, most specific first.",
    resolve: (_root, _args, context) => {
      requireAdmin(context);
      return context.services.channelConfigs.list();
    },
  }),
  channelConfig: t.field({
    type: ChannelRef,
    nullable: true,
    description: "The configuration that applies to a channel name (null when the defaults apply).",
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.channelConfigs.configFor(args.name);
    },
  }),
}));

builder.mutationFields((t) => ({
  createChannel: t.field({
    type: ChannelRef,
    args: { input: t.arg({ type: CreateChannelInput, required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.channelConfigs.create(changes(args.input) as never);
    },
  }),
  updateChannel: t.field({
    type: ChannelRef,
    args: { pattern: t.arg.string({ required: true }), input: t.arg({ type: UpdateChannelInput, required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.channelConfigs.update(args.pattern, changes(args.input) as never);
    },
  }),
  deleteChannel: t.field({
    type: "Boolean",
    args: { pattern: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => {
      requireAdmin(context);
      return context.services.channelConfigs.delete(args.pattern);
    },
  }),
}));
