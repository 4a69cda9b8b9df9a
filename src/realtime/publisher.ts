import type { ChannelPubSub } from "./pubsub.js";
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
  /** Stores a numbered event and trims the channel to its latest `keep` events. */
  append(event: ChannelEvent & { seq: number }, keep: number): Promise<void>;
}

/** The recipient of a private message (`options: { to }`), if the event is one. Joins and leaves are never private. */
export function privateRecipient(event: ChannelEvent): string | null {
  if (event.action !== "MESSAGE") return null;
  const options = event.commandOptions;
  if (typeof options !== "object" || options === null) return null;
  const to = (options as { to?: unknown }).to;
  return typeof to === "string" ? to : null;
}

/**
 * The publish path: every event on every channel goes through {@link Publisher.publish}, which runs
 * the middleware chain (this is where realtime triggers run) and then commits what survives: public
 * messages get the channel's next sequence number and, where the channel keeps history, are stored
 * before anyone receives them. Nothing else publishes to the bus.
 */
export class Publisher {
  private readonly middleware: EventMiddleware[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly pubsub: ChannelPubSub,
    private readonly sequencer: ChannelSequencer,
    private readonly history: HistoryWriter,
    private readonly historyKept: (channel: string) => number,
  ) {}

  /** Adds a middleware at the end of the chain. */
  use(middleware: EventMiddleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /**
   * Runs the middleware chain on an event, then publishes what is left of it. Resolves once the
   * event is stored (when its channel keeps history) and handed to the bus.
   */
  publish(event: ChannelEvent): Promise<PublishResult> {
    const publishing = this.run(event);
    this.inFlight.add(publishing);
    const settled = () => void this.inFlight.delete(publishing);
    publishing.then(settled, settled);
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
      this.pubsub.publish("channel", current.channel, current);
      return { delivered: true, event: current };
    }
    const committed = await this.sequencer.run(current.channel, async (seq) => {
      const numbered = { ...current, seq };
      const keep = this.historyKept(current.channel);
      if (keep > 0) await this.history.append(numbered, keep);
      this.pubsub.publish("channel", numbered.channel, numbered);
      return numbered;
    });
    return { delivered: true, event: committed };
  }
}
