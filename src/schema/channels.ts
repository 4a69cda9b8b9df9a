import { type ChannelEvent, type PresenceMember, REALTIME_ACTIONS } from "../realtime/types.js";
import { builder } from "./builder.js";

const RealtimeActionEnum = builder.enumType("RealtimeAction", {
  description: "What happened on a channel.",
  values: REALTIME_ACTIONS,
});

/** The GraphQL type of a client. */
export const RealtimeClientRef = builder.objectRef<PresenceMember>("RealtimeClient").implement({
  description: "A connected party: a WebSocket connection, an HTTP caller, or an authenticated user.",
  fields: (t) => ({
    id: t.exposeID("id"),
    authenticated: t.exposeBoolean("authenticated"),
    extras: t.field({ type: "JSON", nullable: true, resolve: (client) => client.extras }),
    joinOptions: t.field({
      type: "JSON",
      nullable: true,
      description:
        "In `presence`: the options of the member's latest JOIN on that channel, as the other members received them (after triggers), such as a display name. Null elsewhere.",
      resolve: (client) => client.joinOptions ?? null,
    }),
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
    seq: t.exposeInt("seq", {
      nullable: true,
      description:
        "The channel's sequence number for public messages (null for joins, leaves and private messages). A jump means missed messages: recover them with `history`.",
    }),
  }),
});

const SendMessageResult = builder.objectRef<{ delivered: boolean; event: ChannelEvent | null }>("SendMessageResult").implement({
  fields: (t) => ({
    delivered: t.exposeBoolean("delivered", { description: "False when a trigger dropped the message." }),
    event: t.field({ type: ChannelEventRef, nullable: true, resolve: (result) => result.event }),
  }),
});

const JoinChannelResult = builder.objectRef<{ joined: boolean; event: ChannelEvent | null }>("JoinChannelResult").implement({
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
    resolve: (_root, args, { session, services }) => services.channels.sendMessage(session, args.channel, args.payload, args.options),
  }),
  joinChannel: t.field({
    type: JoinChannelResult,
    description: "Makes the caller a member of a channel and publishes a JOIN event.",
    args: { channel: t.arg.string({ required: true }), options: t.arg({ type: "JSON" }) },
    resolve: (_root, args, { session, services }) => services.channels.joinChannel(session, args.channel, args.options),
  }),
  leaveChannel: t.field({
    type: "Boolean",
    description: "Leaves a channel and publishes a LEAVE event. False when the caller was not a member.",
    args: { channel: t.arg.string({ required: true }) },
    resolve: (_root, args, { session, services }) => services.channels.leaveChannel(session, args.channel),
  }),
}));

builder.queryFields((t) => ({
  history: t.field({
    type: [ChannelEventRef],
    description: "The latest messages of a channel that keeps history, oldest first.",
    args: { channel: t.arg.string({ required: true }), last: t.arg.int({ defaultValue: 50 }) },
    resolve: (_root, args, { session, services }) => services.channels.history(session, args.channel, args.last ?? 50),
  }),
  presence: t.field({
    type: [RealtimeClientRef],
    description: "Who has joined a channel and not left (channels with presence on).",
    args: { channel: t.arg.string({ required: true }) },
    resolve: (_root, args, { session, services }) => services.channels.presence(session, args.channel),
  }),
}));

builder.subscriptionFields((t) => ({
  channel: t.field({
    type: ChannelEventRef,
    description:
      "Joins a channel and delivers every event published on it from then on, in publish order. `options: { history: n }` first replays up to n past messages.",
    args: { name: t.arg.string({ required: true }), options: t.arg({ type: "JSON" }) },
    subscribe: (_root, args, { session, services }) => services.channels.subscribe(session, args.name, args.options),
    resolve: (event) => event,
  }),
}));
