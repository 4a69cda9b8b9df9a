import type { Logger } from "../logger.js";
import type { ChannelBus } from "./bus.js";
import { NO_OBSERVER, type RealtimeObserver, type Transport } from "./observer.js";
import { privateRecipient } from "./publisher.js";
import type { ChannelEvent } from "./types.js";

/** Receives the events of one channel, in publish order. */
export interface ChannelListener {
  /** The client the listener belongs to: private messages reach only their recipient's listeners. */
  readonly clientId: string;
  /** How the subscription is carried, for metrics; unknown when absent. */
  readonly transport?: Transport;
  /** Called synchronously for each event the client may see. Must not throw; errors are logged. */
  deliver(event: ChannelEvent): void;
  /**
   * Called instead of {@link ChannelListener.deliver} with several consecutive events at once, in
   * order, when the listener can hand them on together (one socket write for all). Optional.
   */
  deliverAll?(events: readonly ChannelEvent[]): void;
}

/** The listeners of one channel and the one bus listener that feeds them. */
interface ChannelFeed {
  readonly listeners: Set<ChannelListener>;
  /** Ends the bus subscription. */
  unsubscribe: () => void;
  /** Events waiting for the next batch (see {@link ChannelFanout}), or null when none wait. */
  pending: ChannelEvent[] | null;
}

/**
 * Hands each event of a channel to every listener of that channel on this instance. The bus is
 * subscribed once per channel, not once per subscriber, so an event costs one bus delivery plus a
 * loop over the listeners; private messages are filtered here, once, for every kind of subscriber.
 *
 * JOIN and LEAVE events are batched: those that arrive on a channel within one turn of the event
 * loop reach each listener together, once the turn's I/O is done (`setImmediate`). When many clients
 * join at once, every member receives every JOIN, and a batch lets a listener write them in one
 * go instead of one socket write each. A message arriving while a batch waits joins the batch, so
 * every listener still receives a channel's events in publish order; messages alone are handed on
 * at once.
 */
export class ChannelFanout {
  private readonly feeds = new Map<string, ChannelFeed>();
  private observer: RealtimeObserver = NO_OBSERVER;
  /** Feeds with a batch waiting, flushed together by one `setImmediate`. */
  private readonly batched: ChannelFeed[] = [];

  constructor(
    private readonly bus: ChannelBus,
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
      const created: ChannelFeed = { listeners: new Set(), unsubscribe: () => {}, pending: null };
      created.unsubscribe = this.bus.subscribe(channel, (event) => this.receive(created, event));
      this.feeds.set(channel, (feed = created));
    }
    feed.listeners.add(listener);
  }

  /** Stops delivering to `listener`; the channel's bus subscription ends with its last listener. */
  remove(channel: string, listener: ChannelListener): void {
    const feed = this.feeds.get(channel);
    if (!feed?.listeners.delete(listener) || feed.listeners.size > 0) return;
    this.feeds.delete(channel);
    feed.unsubscribe();
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

  /** An event from the bus: nothing it does may throw into the bus. */
  private receive(feed: ChannelFeed, event: ChannelEvent): void {
    try {
      this.accept(feed, event);
    } catch (error) {
      this.logger.error({ err: error, channel: event.channel }, "could not hand on an event of a channel");
    }
  }

  /** Hands a message on at once, or adds the event to the channel's batch (see {@link ChannelFanout}). */
  private accept(feed: ChannelFeed, event: ChannelEvent): void {
    if (feed.pending) {
      feed.pending.push(event);
      return;
    }
    if (event.action === "MESSAGE") {
      this.dispatch(feed.listeners, event);
      return;
    }
    feed.pending = [event];
    if (this.batched.push(feed) === 1) setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    for (const feed of this.batched.splice(0)) {
      const events = feed.pending!;
      feed.pending = null;
      if (events.length === 1) this.dispatch(feed.listeners, events[0]!);
      else this.dispatchAll(feed.listeners, events);
    }
  };

  /** {@link ChannelFanout.dispatch} for several events: each listener receives all it may see at once. */
  private dispatchAll(listeners: Set<ChannelListener>, events: readonly ChannelEvent[]): void {
    const recipients = events.map(privateRecipient);
    const reached = recipients.map(() => 0);
    const anyPrivate = recipients.some((to) => to !== null);
    for (const listener of listeners) {
      let visible = events;
      if (anyPrivate) {
        const own: ChannelEvent[] = [];
        events.forEach((event, i) => {
          if (recipients[i] !== null && recipients[i] !== listener.clientId) return;
          own.push(event);
          reached[i]! += 1;
        });
        // Never empty: a batch starts with a JOIN or LEAVE, which every listener sees.
        visible = own;
      }
      try {
        if (listener.deliverAll) listener.deliverAll(visible);
        else for (const event of visible) listener.deliver(event);
      } catch (error) {
        this.logger.error({ err: error, channel: events[0]!.channel }, "a channel listener failed");
      }
    }
    events.forEach((event, i) => {
      const count = anyPrivate ? reached[i]! : listeners.size;
      if (count > 0) this.observer.delivered(event.action, count, event.createdAt);
    });
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
