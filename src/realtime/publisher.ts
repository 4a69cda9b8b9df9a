import type { ChannelBus } from "./bus.js";
import type { DeliveryFollowUp } from "./history.js";
import { NO_OBSERVER, type RealtimeObserver } from "./observer.js";
import type { ChannelPolicy, ChannelSequencer } from "./sequence.js";
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
  /**
   * Room reserved for the rows to store for an event before it is delivered, or null when there is
   * nothing to do. Throws (an `AppError`) to refuse the event when they cannot be stored.
   */
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

/** What the {@link Publisher} is built from. */
export interface PublisherParts {
  readonly bus: ChannelBus;
  readonly sequencer: ChannelSequencer;
  readonly history: HistoryWriter;
  readonly policy: ChannelPolicy;
  /**
   * Run on each event, in order, before it is committed. In this server that is the trigger
   * middleware (src/triggers/run/middleware.ts), where realtime triggers run.
   */
  readonly middleware: readonly EventMiddleware[];
  /**
   * Asked about every event before the middleware runs, and may refuse it; what it returns is stored
   * before the event is delivered, with the history write when there is one (else batched with other
   * events' follow-ups), so an event is delivered only with it stored.
   */
  readonly afterDelivery?: AfterDelivery;
  /** Told of every event received, and of every one not published. */
  readonly observer?: RealtimeObserver;
}

/**
 * The publish path: every event on every channel goes through {@link Publisher.publish}, which runs
 * the middleware chain (the triggers) and then commits what survives: public messages get the
 * channel's next sequence number and, where the channel keeps history, are stored before anyone
 * receives them, as is any event's follow-up (AFTER trigger runs). Nothing else publishes to the bus.
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
   * event and its follow-up (AFTER trigger runs) are stored (the event when its channel keeps
   * history) and the event is handed to the bus; an event refused (rejects) was delivered to nobody.
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

  /** Publishes under way. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Resolves once every publish under way has finished, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.allSettled([...this.inFlight]), timeout]);
    clearTimeout(timer);
  }

  private async run(event: ChannelEvent): Promise<PublishResult> {
    // Before any trigger runs (and before the event takes a sequence number): a refusal here costs nothing else.
    const followUp = this.afterDelivery?.followUp(event) ?? null;
    if (!followUp) return this.deliver(event, null);
    try {
      const result = await this.deliver(event, followUp);
      if (!result.delivered) followUp.release();
      return result;
    } catch (error) {
      followUp.release(error);
      throw error;
    }
  }

  /** Runs the middleware, then stores and publishes what is left of the event, its follow-up stored first. */
  private async deliver(event: ChannelEvent, followUp: DeliveryFollowUp | null): Promise<PublishResult> {
    let current = event;
    for (const middleware of this.middleware) {
      const decision = await middleware(current);
      if (!decision.deliver) return { delivered: false };
      current = decision.event;
    }
    if (current.action !== "MESSAGE" || privateRecipient(current) !== null) {
      await followUp?.store(current);
      this.bus.publish(current.channel, current);
      return { delivered: true, event: current };
    }
    const committed = await this.sequencer.run(current.channel, async (seq) => {
      const numbered = { ...current, seq };
      const keep = this.policy.historyKept(current.channel);
      if (keep > 0) await this.history.append(numbered, keep, followUp);
      else await followUp?.store(numbered);
      this.bus.publish(numbered.channel, numbered);
      return numbered;
    });
    return { delivered: true, event: committed };
  }
}
