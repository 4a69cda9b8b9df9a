import type { ChannelEvent } from "./types.js";

/** Receives the events published on one channel. */
export type BusListener = (event: ChannelEvent) => void;

/** The event bus carrying published events to every instance's subscribers. */
export interface ChannelBus {
  /**
   * Hands `event` to the listeners of `channel`: on this instance (after the current synchronous
   * code), and with Redis on every instance. A bus that crosses the network returns a promise that
   * settles once the network took the event (and rejects when it could not): awaiting it is the
   * caller's choice, a failure is never an unhandled rejection.
   */
  publish(channel: string, event: ChannelEvent): Promise<void> | undefined;
  /** Calls `listener` with each event published on `channel` from now on, until the returned function is called. */
  subscribe(channel: string, listener: BusListener): () => void;
}

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
      // Stryker disable next-line ConditionalExpression,EqualityOperator: a fast path only; the general branch delivers the same events to the same listeners in the same order
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
        // A set leaves the map only once empty, and nothing is added to it after: a listener still in it means it is the map's.
        if (set.delete(listener) && set.size === 0) listeners.delete(channel);
      };
    },
  };
}
