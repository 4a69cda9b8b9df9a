import type { PubSubEventTarget } from "@graphql-yoga/subscription";
import type { ChannelEvent } from "./types.js";

/** Receives the events published on one channel. */
export type BusListener = (event: ChannelEvent) => void;

/** The event bus carrying published events to every instance's subscribers. */
export interface ChannelBus {
  /** Hands `event` to the listeners of `channel`: on this instance (after the current synchronous code), and with Redis on every instance. */
  publish(channel: string, event: ChannelEvent): void;
  /** Calls `listener` with each event published on `channel` from now on, until the returned function is called. */
  subscribe(channel: string, listener: BusListener): () => void;
}

/** A distributed event target (Redis) as graphql-yoga's pub/sub uses it: one event type per channel. */
export type ChannelEventTarget = PubSubEventTarget<{ channel: [channel: string, event: ChannelEvent] }>;

/**
 * The bus of one instance: listeners by channel, called in a microtask after `publish` (so a publisher
 * finishes its synchronous work first, as with a bus that crosses the network), in publish order.
 * An event reaches the listeners subscribed when it was published.
 */
export function createMemoryBus(): ChannelBus {
  const listeners = new Map<string, Set<BusListener>>();
  return {
    publish(channel, event) {
      const reached = listeners.get(channel);
      if (!reached) return;
      // One listener per channel is the rule (the fan-out subscribes once per channel).
      if (reached.size === 1) for (const only of reached) queueMicrotask(() => only(event));
      else {
        const all = [...reached];
        queueMicrotask(() => {
          for (const listener of all) listener(event);
        });
      }
    },
    subscribe(channel, listener) {
      let set = listeners.get(channel);
      if (!set) {
        set = new Set();
        listeners.set(channel, set);
      }
      set.add(listener);
      return () => {
        if (set.delete(listener) && set.size === 0 && listeners.get(channel) === set) listeners.delete(channel);
      };
    },
  };
}

/**
 * The bus over a distributed event target (the Redis one, see redis.ts): event type `channel:<name>`,
 * as graphql-yoga's `createPubSub` names it, so instances of earlier versions share the channels.
 */
export function createTargetBus(target: ChannelEventTarget): ChannelBus {
  return {
    publish(channel, event) {
      target.dispatchEvent(new CustomEvent(`channel:${channel}`, { detail: event }) as never);
    },
    subscribe(channel, listener) {
      const type = `channel:${channel}`;
      const handler = (event: CustomEvent<ChannelEvent>) => listener(event.detail);
      target.addEventListener(type, handler as never);
      return () => target.removeEventListener(type, handler as never);
    },
  };
}
