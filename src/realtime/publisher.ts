import type { ChannelPubSub } from "./pubsub.js";
import type { ChannelEvent } from "./types.js";

/** What a middleware decides for an event: deliver it (possibly changed) or drop it quietly. */
export type MiddlewareDecision = { readonly deliver: true; readonly event: ChannelEvent } | { readonly deliver: false };

/**
 * Runs on each event before it is published, once per event (not per subscriber). It may return the
 * event unchanged, return a changed event, drop it, or throw an `AppError` to refuse it with an error
 * for the sender.
 */
export type EventMiddleware = (event: ChannelEvent) => Promise<MiddlewareDecision>;

/** What became of a published event. */
export type PublishResult = { readonly delivered: true; readonly event: ChannelEvent } | { readonly delivered: false };

/**
 * The publish path: every event on every channel goes through {@link Publisher.publish}, which runs
 * the middleware chain (this is where realtime triggers run) and then hands what survives to the
 * event bus. Nothing else publishes to the bus.
 */
export class Publisher {
  private readonly middleware: EventMiddleware[] = [];

  constructor(private readonly pubsub: ChannelPubSub) {}

  /** Adds a middleware at the end of the chain. */
  use(middleware: EventMiddleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /** Runs the middleware chain on an event, then publishes what is left of it. */
  async publish(event: ChannelEvent): Promise<PublishResult> {
    let current = event;
    for (const middleware of this.middleware) {
      const decision = await middleware(current);
      if (!decision.deliver) return { delivered: false };
      current = decision.event;
    }
    this.pubsub.publish("channel", current.channel, current);
    return { delivered: true, event: current };
  }
}
