import { badInput } from "../errors.js";
import type { ActiveChannel } from "../realtime/active-channels.js";
import { MAX_ACTIVE_CHANNELS } from "../realtime/active-channels.js";
import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";
import { ServerInfoRef } from "./server-info.js";

/** The admin's live view: channels with members now, and what this instance is carrying. */

const ActiveChannelRef = builder.objectRef<ActiveChannel>("ActiveChannel").implement({
  description: "A channel with members on this server instance.",
  fields: (t) => ({
    name: t.exposeString("name"),
    members: t.exposeInt("members", { description: "Clients that have joined it on this instance." }),
    subscribers: t.exposeInt("subscribers", { description: "Open subscriptions to it on this instance." }),
    clusterMembers: t.exposeInt("clusterMembers", {
      nullable: true,
      description: "Members on every instance, where shared presence (Redis) knows them; null on a single instance.",
    }),
  }),
});

interface ConnectionCounts {
  webSockets: number;
  httpRequests: number;
  webSocketSubscriptions: number;
  httpSubscriptions: number;
  channels: number;
}

const ConnectionCountsRef = builder.objectRef<ConnectionCounts>("ConnectionCounts").implement({
  description: "What this server instance carries right now.",
  fields: (t) => ({
    webSockets: t.exposeInt("webSockets", { description: "Open WebSocket connections." }),
    httpRequests: t.exposeInt("httpRequests", { description: "HTTP requests in progress, SSE streams included." }),
    webSocketSubscriptions: t.exposeInt("webSocketSubscriptions", { description: "Open channel subscriptions over WebSocket." }),
    httpSubscriptions: t.exposeInt("httpSubscriptions", { description: "Open channel subscriptions over HTTP (SSE)." }),
    channels: t.exposeInt("channels", { description: "Channels with at least one member." }),
  }),
});

builder.objectField(ServerInfoRef, "connections", (t) =>
  t.field({
    type: ConnectionCountsRef,
    description: "Connections, subscriptions and channels on this instance now.",
    resolve: (_info, _args, { services }) => {
      const open = services.metrics.connections();
      const subscriptions = services.metrics.subscriptions();
      return {
        webSockets: open.ws,
        httpRequests: open.http,
        webSocketSubscriptions: subscriptions.ws,
        httpSubscriptions: subscriptions.http,
        channels: services.channels.stats().channels,
      };
    },
  }),
);

builder.queryFields((t) => ({
  activeChannels: t.field({
    type: [ActiveChannelRef],
    description: `Channels with members whose names start with \`prefix\`, in name order, at most \`first\` (1..${MAX_ACTIVE_CHANNELS}): on this instance, and with Redis on every instance of the cluster. Needs the admin token.`,
    args: {
      prefix: t.arg.string({ required: false }),
      first: t.arg.int({ required: false, defaultValue: 100 }),
    },
    resolve: (_root, { prefix, first }, context) => {
      requireAdmin(context);
      const count = first ?? 100;
      if (count < 1 || count > MAX_ACTIVE_CHANNELS) throw badInput(`first must be 1..${MAX_ACTIVE_CHANNELS}`, { field: "first" });
      return context.services.activeChannels(prefix ?? "", count);
    },
  }),
}));
