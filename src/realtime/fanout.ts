import type { Logger } from "../logger.js";
import { NO_OBSERVER, type RealtimeObserver, type Transport } from "./observer.js";
import { privateRecipient } from "./publisher.js";
import type { ChannelPubSub } from "./pubsub.js";
import type { ChannelEvent } from "./types.js";

/** Receives the events of one channel, in publish order. */
export interface ChannelListener {
  /** The client the listener belongs to: private messages reach only their recipient's listeners. */
  readonly clientId: string;
  /** How the subscription is carried, for metrics; unknown when absent. */
  readonly transport?: Transport;
  /** Called synchronously for each event the client may see. Must not throw; errors are logged. */
  deliver(event: ChannelEvent): void;
}

/** The listeners of one channel and the one bus subscription that feeds them. */
interface ChannelFeed {
  readonly listeners: Set<ChannelListener>;
  readonly events: AsyncIterator<ChannelEvent>;
}

/**
 * Hands each event of a channel to every listener of that channel on this instance. The bus is
 * subscribed once per channel, not once per subscriber, so an event costs one bus delivery plus a
 * loop over the listeners; private messages are filtered here, once, for every kind of subscriber.
 */
export class ChannelFanout {
  private readonly feeds = new Map<string, ChannelFeed>();
  private observer: RealtimeObserver = NO_OBSERVER;

  constructor(
    private readonly pubsub: ChannelPubSub,
    private readonly logger: Logger,
  ) {}

  /** Reports each event's deliveries on this instance to `observer`. */
  observe(observer: RealtimeObserver): this {
    this.observer = observer;
    return this;
  }

  /** Starts delivering the channel's events to `listener`; events published from now on reach it. */
  add(channel: string, listener: ChannelListener): void {
    let feed = this.feeds.get(channel);
    if (!feed) {
      feed = { listeners: new Set(), events: this.pubsub.subscribe("channel", channel)[Symbol.asyncIterator]() };
      this.feeds.set(channel, feed);
      void this.pump(channel, feed);
    }
    feed.listeners.add(listener);
  }

  /** Stops delivering to `listener`; the channel's bus subscription ends with its last listener. */
  remove(channel: string, listener: ChannelListener): void {
    const feed = this.feeds.get(channel);
    if (!feed?.listeners.delete(listener) || feed.listeners.size > 0) return;
    this.feeds.delete(channel);
    void feed.events.return?.();
  }

  /** How many channels have listeners here, and how many listeners there are in all. */
  counts(): { channels: number; listeners: number } {
    let listeners = 0;
    for (const feed of this.feeds.values()) listeners += feed.listeners.size;
    return { channels: this.feeds.size, listeners };
  }

  /** How many listeners the channel has on this instance. */
  listenerCount(channel: string): number {
    return this.feeds.get(channel)?.listeners.size ?? 0;
  }

  /** Listeners on this instance by transport (those without one count as HTTP); walks every listener. */
  listenersByTransport(): Record<Transport, number> {
    const counts = { ws: 0, http: 0 };
    for (const feed of this.feeds.values()) for (const listener of feed.listeners) counts[listener.transport ?? "http"] += 1;
    return counts;
  }

  private async pump(channel: string, feed: ChannelFeed): Promise<void> {
    try {
      // The first next() subscribes to the bus at once, before any join is published.
      for (let next = await feed.events.next(); !next.done; next = await feed.events.next()) {
        this.dispatch(feed.listeners, next.value);
      }
    } catch (error) {
      this.logger.error({ err: error, channel }, "the event bus failed for a channel");
    }
    if (this.feeds.get(channel) === feed) this.feeds.delete(channel);
  }

  private dispatch(listeners: Set<ChannelListener>, event: ChannelEvent): void {
    const to = privateRecipient(event);
    let reached = 0;
    for (const listener of listeners) {
      if (to !== null && listener.clientId !== to) continue;
      reached++;
      try {
        listener.deliver(event);
      } catch (error) {
        this.logger.error({ err: error, channel: event.channel }, "a channel listener failed");
      }
    }
    if (reached > 0) this.observer.delivered(event.action, reached, event.createdAt);
  }
}
