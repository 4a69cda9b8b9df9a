import type { ChannelEvent, RealtimeClient } from "../realtime/types.js";
import { builder } from "./builder.js";

const RealtimeActionEnum = builder.enumType("RealtimeAction", {
  description: "What happened on a channel.",
  values: ["MESSAGE", "JOIN", "LEAVE"] as const,
});

const RealtimeClientRef = builder.objectRef<RealtimeClient>("RealtimeClient").implement({
  description: "A connected party: a WebSocket connection, an HTTP caller, or an authenticated user.",
  fields: (t) => ({
    id: t.exposeID("id"),
    authenticated: t.exposeBoolean("authenticated"),
    extras: t.field({ type: "JSON", nullable: true, resolve: (client) => client.extras }),
  }),
});

/** The GraphQL type of a channel event; other schema files reuse it. */
export const ChannelEventRef = builder.objectRef<ChannelEvent>("ChannelEvent").implement({
  description: "One event on a channel, exactly as delivered to subscribers (after triggers).",
  fields: (t) => ({
    id: t.exposeID("id"),
    action: t.field({ type: RealtimeActionEnum, resolve: (event) => event.action }),
    command: t.exposeString("command", { description: '"message", "join" or "leave".' }),
    channel: t.exposeString("channel"),
    payload: t.field({ type: "JSON", nullable: true, resolve: (event) => event.payload }),
    commandOptions: t.field({ type: "JSON", nullable: true, resolve: (event) => event.commandOptions }),
    client: t.field({ type: RealtimeClientRef, resolve: (event) => event.client }),
    createdAt: t.field({ type: "DateTime", resolve: (event) => event.createdAt }),
  }),
});

const SendMessageResult = builder
  .objectRef<{ delivered: boolean; event: ChannelEvent | null }>("SendMessageResult")
  .implement({
    fields: (t) => ({
      delivered: t.exposeBoolean("delivered", { description: "False when a trigger dropped the message." }),
      event: t.field({ type: ChannelEventRef, nullable: true, resolve: (result) => result.event }),
    }),
  });

const JoinChannelResult = builder
  .objectRef<{ joined: boolean; event: ChannelEvent | null }>("JoinChannelResult")
  .implement({
    fields: (t) => ({
      joined: t.exposeBoolean("joined", { description: "False when a trigger dropped the join." }),
      event: t.field({ type: ChannelEventRef, nullable: true, resolve: (result) => result.event }),
    }),
  });

builder.mutationFields((t) => ({
  sendMessage: t.field({
    type: SendMessageResult,
    description: "Sends a message to every subscriber of a channel (the sender's own subscriptions included).",
    args: {
      channel: t.arg.string({ required: true }),
      payload: t.arg({ type: "JSON", required: true }),
      options: t.arg({ type: "JSON" }),
    },
    resolve: (_root, args, { session, services }) =>
      services.channels.sendMessage(session, args.channel, args.payload, args.options),
  }),
  joinChannel: t.field({
    type: JoinChannelResult,
    description: "Makes the caller a member of a channel and publishes a JOIN event.",
    args: { channel: t.arg.string({ required: true }), options: t.arg({ type: "JSON" }) },
    resolve: (_root, args, { session, services }) => services.channels.joinChannel(session, args.channel, args.options),
  }),
}));

builder.subscriptionFields((t) => ({
  channel: t.field({
    type: ChannelEventRef,
    description: "Joins a channel and delivers every event published on it from then on, in publish order.",
    args: { name: t.arg.string({ required: true }), options: t.arg({ type: "JSON" }) },
    subscribe: (_root, args, { session, services }) => services.channels.subscribe(session, args.name, args.options),
    resolve: (event) => event,
  }),
}));
