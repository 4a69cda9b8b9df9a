import type { ChannelBus } from "./bus.js";
import type { DeliveryFollowUp } from "./history.js";
import { NO_OBSERVER, type RealtimeObserver } from "./observer.js";
import type { ChannelSequencer } from "./sequence.js";
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

/** Where delivered messages are kept (the {@link ChannelHistory}). */
export interface HistoryWriter {
  /** Stores a numbered event and trims the channel to its latest `keep` events, with `followUp`'s rows written atomically with it. */
  append(event: ChannelEvent & { seq: number }, keep: number, followUp?: DeliveryFollowUp | null): Promise<void>;
}

/** Work that follows delivery (in this server, AFTER triggers): what must be stored for a delivered event. */
export interface AfterDelivery {
  /** The rows to store for an event as delivered, or null when there is nothing to do. */
  followUp(event: ChannelEvent): DeliveryFollowUp | null;
}

/** The recipient of a private message (`options: { to }`), if the event is one. Joins and leaves are never private. */
export function privateRecipient(event: ChannelEvent): string | null {
  if (event.action !== "MESSAGE") return null;
  const options = event.commandOptions;
  if (typeof options !== "object" || options === null) return null;
  const to = (options as { to?: unknown }).to;
  return typeof to === "string" ? to : null;
}

/** How long a channel keeps its messages (the channel configurations answer it). */
export interface ChannelPolicy {
  /** Messages the channel keeps as history; 0 keeps none. */
  historyKept(channel: string): number;
}

/** What the {@link Publisher} is built from. */
export interface PublisherParts {
  readonly bus: ChannelBus;
  readonly sequencer: ChannelSequencer;
  readonly history: HistoryWriter;
  readonly policy: ChannelPolicy;
  /**
   * Run on each event, in order, before it is committed. In this server that is the trigger
   * middleware (src/triggers/middleware.ts), where realtime triggers run.
   */
  readonly middleware: readonly EventMiddleware[];
  /**
   * Told of every delivered event; what it returns is stored before the sender is acknowledged, with
   * the history write when there is one. Never delays delivery to subscribers beyond that write.
   */
  readonly afterDelivery?: AfterDelivery;
  /** Told of every event received, and of every one not published. */
  readonly observer?: RealtimeObserver;
}

/**
 * The publish path: every event on every channel goes through {@link Publisher.publish}, which runs
 * the middleware chain (the triggers) and then commits what survives: public messages get the
 * channel's next sequence number and, where the channel keeps history, are stored before anyone
 * receives them. Nothing else publishes to the bus.
 */
export class Publisher {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly bus: ChannelBus;
  private readonly sequencer: ChannelSequencer;
  private readonly history: HistoryWriter;
  private readonly policy: ChannelPolicy;
  private readonly middleware: readonly EventMiddleware[];
  private readonly afterDelivery: AfterDelivery | undefined;
  private readonly observer: RealtimeObserver;

  constructor(parts: PublisherParts) {
    this.bus = parts.bus;
    this.sequencer = parts.sequencer;
    this.history = parts.history;
    this.policy = parts.policy;
    this.middleware = parts.middleware;
    this.afterDelivery = parts.afterDelivery;
    this.observer = parts.observer ?? NO_OBSERVER;
  }

  /**
   * Runs the middleware chain on an event, then publishes what is left of it. Resolves once the
   * event is stored (when its channel keeps history) and handed to the bus, and its follow-up
   * (AFTER trigger runs) is stored.
   */
  publish(event: ChannelEvent): Promise<PublishResult> {
    this.observer.received(event.action);
    const publishing = this.run(event);
    this.inFlight.add(publishing);
    const settled = () => void this.inFlight.delete(publishing);
    publishing.then(
      (result) => {
        settled();
        if (!result.delivered) this.observer.notPublished(event.action, "dropped");
      },
      () => {
        settled();
        this.observer.notPublished(event.action, "refused");
      },
    );
    return publishing;
  }

  /** Resolves once every publish under way has finished, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.allSettled([...this.inFlight]), timeout]);
    clearTimeout(timer);
  }

  private async run(event: ChannelEvent): Promise<PublishResult> {
    let current = event;
    for (const middleware of this.middleware) {
      const decision = await middleware(current);
      if (!decision.deliver) return { delivered: false };
      current = decision.event;
    }
    if (current.action !== "MESSAGE" || privateRecipient(current) !== null) {
      this.bus.publish(current.channel, current);
      await this.afterDelivery?.followUp(current)?.store();
      return { delivered: true, event: current };
    }
    let unstored: DeliveryFollowUp | null = null;
    const committed = await this.sequencer.run(current.channel, async (seq) => {
      const numbered = { ...current, seq };
      const keep = this.policy.historyKept(current.channel);
      const followUp = this.afterDelivery?.followUp(numbered) ?? null;
      if (keep > 0) await this.history.append(numbered, keep, followUp);
      else unstored = followUp;
      this.bus.publish(numbered.channel, numbered);
      return numbered;
    });
    // Stored after delivery, outside the channel's sequence, so it neither delays subscribers nor the next event.
    await (unstored as DeliveryFollowUp | null)?.store();
    return { delivered: true, event: committed };
  }
}
