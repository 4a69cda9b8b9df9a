import { setMaxListeners } from "node:events";
import { createPubSub, type PubSub, type PubSubEventTarget } from "@graphql-yoga/subscription";
import type { ChannelEvent } from "./types.js";

/** Topics of the event bus: one per channel name. */
export type ChannelTopics = {
  channel: [channel: string, event: ChannelEvent];
};

/**
 * The event bus carrying delivered events to subscribers: graphql-yoga's pub/sub, plus
 * {@link ChannelPubSub.listen}, which receives a channel's events without the async iterator (and
 * the buffer, promises and closures it holds) that `subscribe` builds for each subscription.
 */
export type ChannelPubSub = PubSub<ChannelTopics> & {
  /**
   * Calls `onEvent` synchronously, while the event is published, for every event of the channel
   * from now on (over Redis: once its SUBSCRIBE is in place). Returns the function that stops it.
   */
  listen(channel: string, onEvent: (event: ChannelEvent) => void): () => void;
};

/** Where the bus dispatches events: in memory by default, or a distributed target (Redis). */
export type ChannelEventTarget = PubSubEventTarget<ChannelTopics>;

/** Creates the event bus over the given event target, or an in-memory one. */
export function createChannelPubSub(eventTarget?: ChannelEventTarget): ChannelPubSub {
  let target = eventTarget;
  if (!target) {
    // Every subscriber of a channel listens to its topic: many listeners per topic are expected.
    const inMemory = new EventTarget();
    setMaxListeners(0, inMemory);
    target = inMemory as ChannelEventTarget;
  }
  const events = target;
  return Object.assign(createPubSub<ChannelTopics>({ eventTarget: events }), {
    listen(channel: string, onEvent: (event: ChannelEvent) => void): () => void {
      // The topic `subscribe("channel", channel)` and `publish("channel", channel, …)` use.
      const topic = `channel:${channel}`;
      const listener = (event: CustomEvent<ChannelEvent>) => onEvent(event.detail);
      events.addEventListener(topic, listener as never);
      return () => events.removeEventListener(topic, listener as never);
    },
  });
}
