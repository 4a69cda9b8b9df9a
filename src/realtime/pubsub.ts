import { setMaxListeners } from "node:events";
import { createPubSub, type PubSub, type PubSubEventTarget } from "@graphql-yoga/subscription";
import type { ChannelEvent } from "./types.js";

/** Topics of the event bus: one per channel name. */
export type ChannelTopics = {
  channel: [channel: string, event: ChannelEvent];
};

/** The event bus carrying delivered events to subscribers. */
export type ChannelPubSub = PubSub<ChannelTopics>;

/** Where the bus dispatches events: in memory by default, or a distributed target (Redis). */
export type ChannelEventTarget = PubSubEventTarget<ChannelTopics>;

/** Creates the event bus over the given event target, or an in-memory one. */
export function createChannelPubSub(eventTarget?: ChannelEventTarget): ChannelPubSub {
  if (eventTarget) return createPubSub<ChannelTopics>({ eventTarget });
  // Every subscriber of a channel listens to its topic: many listeners per topic are expected.
  const inMemory = new EventTarget();
  setMaxListeners(0, inMemory);
  return createPubSub<ChannelTopics>({ eventTarget: inMemory as ChannelEventTarget });
}
