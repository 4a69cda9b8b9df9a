import { randomUUID } from "node:crypto";
import { AppError, badInput, ErrorCode } from "../errors.js";
import type { Logger } from "../logger.js";
import { assertChannelName } from "./channel-name.js";
import type { ChannelConfigStore, ChannelRules } from "./channel-config.js";
import type { ChannelHistory } from "./history.js";
import type { Membership } from "./membership.js";
import type { PresenceTracker } from "./presence.js";
import type { ChannelFanout, ChannelListener } from "./fanout.js";
import { closableIterator, emptyStream } from "./iterators.js";
import type { RealtimeObserver } from "./observer.js";
import type { Publisher } from "./publisher.js";
import { RateLimiter } from "./rate-limit.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../validation.js";
import { type ChannelEvent, commandOf, type RealtimeAction, type RealtimeClient, type Session } from "./types.js";

/** The result of a send: the event as delivered, or `delivered: false` when a trigger dropped it. */
export type SendResult = { delivered: true; event: ChannelEvent } | { delivered: false; event: null };

/** The result of a join: the JOIN event as delivered, or `joined: false` when a trigger dropped it. */
export type JoinResult = { joined: true; event: ChannelEvent } | { joined: false; event: null };

/** Reaches the other instances of a cluster. */
export interface ClusterLeaves {
  /**
   * Asks every other instance to call {@link ChannelService.leaveHere} for the client; with
   * `announce`, those where it was a member publish its LEAVE event.
   */
  requestLeave(channel: string, clientId: string, announce: boolean): void;
}

/** A live channel subscription opened with {@link ChannelService.open}. */
export interface ChannelSubscription {
  /** Stops delivery and leaves the channel. Safe to call twice. */
  close(): void;
}

/** What a caller wants to do on a channel, for permission checks. */
type Access = "listen" | "send";

/** The parts of the server the channel operations use. */
export interface ChannelServiceDeps {
  readonly publisher: Publisher;
  readonly fanout: ChannelFanout;
  readonly membership: Membership;
  readonly configs: ChannelConfigStore;
  readonly history: ChannelHistory;
  readonly presence: PresenceTracker;
  /** Resolves once the bus delivers to every listener added so far (Redis confirms its SUBSCRIBEs). */
  readonly listening: () => Promise<void>;
  /** The other instances, when there are any (see {@link ChannelService.leaveHere}). */
  readonly cluster?: ClusterLeaves;
  readonly limits: ChannelLimits;
  readonly logger: Logger;
  /** Told about subscribers cut off for being slow. */
  readonly observer?: RealtimeObserver;
}

/** Per-client limits, each refused with a clear error. */
export interface ChannelLimits {
  /** Bytes of a message's payload (and, separately, of its options) as JSON. */
  readonly maxPayloadBytes: number;
  /** Open channel subscriptions on one WebSocket. */
  readonly maxSubscriptionsPerSocket: number;
  /** Channels one client may be a member of at once. */
  readonly maxChannelsPerClient: number;
  /** Messages one client may send per second (the admin is exempt). */
  readonly messagesPerSecond: number;
  /** Events a pulled subscription ({@link ChannelService.subscribe}) may have waiting for its reader. */
  readonly maxQueuedEvents: number;
}

/**
 * The channel operations clients perform: send, join, subscribe, leave, and read history and
 * presence. Each checks the channel's rules first; every event they create goes through the
 * {@link Publisher}, so triggers see it before anyone receives it.
 */
export class ChannelService {
  private readonly sendRate: RateLimiter;

  constructor(private readonly deps: ChannelServiceDeps) {
    this.sendRate = new RateLimiter(deps.limits.messagesPerSecond);
  }

  /** Publishes a MESSAGE event; with `options.to`, only that client's subscriptions receive it. */
  async sendMessage(session: Session, channel: string, payload: unknown, options: unknown): Promise<SendResult> {
    this.authorize(session, channel, "send");
    this.checkSize("payload", payload);
    this.checkSize("options", options);
    if (!session.isAdmin && !this.sendRate.take(session.client.id)) {
      throw new AppError(ErrorCode.RateLimited, `Too many messages: at most ${this.deps.limits.messagesPerSecond} per second`);
    }
    if (options != null && (typeof options !== "object" || Array.isArray(options))) {
      throw badInput("options must be a JSON object", { field: "options" });
    }
    if (options != null && "to" in options && typeof options.to !== "string") {
      throw badInput("options.to must be a client id", { field: "options.to" });
    }
    const result = await this.deps.publisher.publish(this.createEvent("MESSAGE", session.client, channel, payload, options));
    return result.delivered ? { delivered: true, event: result.event } : { delivered: false, event: null };
  }

  /**
   * Publishes a JOIN event and, when it is delivered, makes the client a member of the channel.
   * Over a WebSocket the membership lasts until `leaveChannel` or the connection closes; over HTTP
   * only authenticated clients, whose identity outlives the request, stay members.
   */
  async joinChannel(session: Session, channel: string, options: unknown): Promise<JoinResult> {
    if (session.socket || session.client.authenticated) this.checkChannelCount(session, channel);
    const result = await this.join(session, channel, options);
    if (result.joined && (session.socket || session.client.authenticated)) {
      this.addMember(session.client, channel);
      session.socket?.joins.push(channel);
    }
    return result;
  }

  /**
   * Joins the channel as the session's client, then calls `onEvent` with every event published on
   * it from the moment of the call, in publish order. With `options.history: n`, up to n past
   * messages come first, with no gap or duplicate between them and the live ones. Private messages
   * reach only their recipient. Throws when the join is refused; resolves to null when a trigger
   * drops it. `onEvent` runs synchronously on the publish path and must not throw. Closing the
   * subscription leaves the channel.
   */
  async open(session: Session, channel: string, options: unknown, onEvent: (event: ChannelEvent) => void): Promise<ChannelSubscription | null> {
    const rules = this.authorize(session, channel, "listen");
    const replay = replayCount(options, rules);
    const socket = session.socket;
    if (socket && socket.subscriptions >= this.deps.limits.maxSubscriptionsPerSocket) {
      throw new AppError(ErrorCode.LimitExceeded, `Too many subscriptions: at most ${this.deps.limits.maxSubscriptionsPerSocket} per connection`);
    }
    this.checkChannelCount(session, channel);
    // Listen before the join is published, so nothing published after this call is missed, and hold
    // live events back until the replayed history has been handed over.
    let held: ChannelEvent[] | null = [];
    let lastReplayed = 0;
    const listener: ChannelListener = {
      clientId: session.client.id,
      transport: socket ? "ws" : "http",
      deliver: (event) => {
        if (held) held.push(event);
        else if (event.seq === null || event.seq > lastReplayed) onEvent(event); // else: already replayed
      },
    };
    const { fanout } = this.deps;
    fanout.add(channel, listener);
    let replayed: ChannelEvent[];
    try {
      await this.deps.listening();
      const joined = await this.join(session, channel, options);
      if (!joined.joined) {
        fanout.remove(channel, listener);
        return null;
      }
      replayed = await this.deps.history.latest(channel, replay);
    } catch (error) {
      fanout.remove(channel, listener);
      throw error;
    }
    this.addMember(session.client, channel);
    if (socket) socket.subscriptions += 1;
    lastReplayed = replayed.at(-1)?.seq ?? 0;
    const live = held;
    held = null;
    for (const event of replayed) onEvent(event);
    for (const event of live) listener.deliver(event);

    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        fanout.remove(channel, listener);
        if (socket) socket.subscriptions -= 1;
        this.removeMember(session.client, channel);
      },
    };
  }

  /**
   * {@link ChannelService.open} as an async iterator, for transports that pull: the stream is empty
   * when a trigger drops the join, and ending it leaves the channel. A reader that falls
   * `maxQueuedEvents` behind is cut off: a WebSocket connection is dropped, any other stream fails
   * with `SLOW_CONSUMER`.
   */
  async subscribe(session: Session, channel: string, options: unknown): Promise<AsyncIterableIterator<ChannelEvent>> {
    const queue: ChannelEvent[] = [];
    const { maxQueuedEvents } = this.deps.limits;
    let wake: (() => void) | null = null;
    let overflowed = false;
    const subscription = await this.open(session, channel, options, (event) => {
      if (queue.length < maxQueuedEvents) {
        queue.push(event);
        wake?.();
        return;
      }
      overflowed = true;
      if (!session.socket) this.deps.observer?.slowConsumerDropped("http"); // a WebSocket's drop() counts its own
      void close();
      session.socket?.drop(`more than ${maxQueuedEvents} events waiting on channel ${channel}`);
    });
    if (!subscription) return emptyStream();
    let open = true;
    const close = async (): Promise<IteratorReturnResult<undefined>> => {
      open = false;
      queue.length = 0;
      subscription.close();
      wake?.();
      return { done: true, value: undefined };
    };
    return closableIterator(async () => {
      while (open && queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      if (overflowed) {
        throw new AppError(ErrorCode.SlowConsumer, `Too slow: more than ${maxQueuedEvents} events were waiting for this subscription`);
      }
      const event = queue.shift();
      return open && event ? { done: false, value: event } : close();
    }, close);
  }

  /**
   * Leaves a channel: undoes every join of the client on it, on every instance, and publishes a
   * LEAVE event (which triggers may enrich but not refuse). Returns false when the client was not a
   * member anywhere.
   */
  async leaveChannel(session: Session, channel: string): Promise<boolean> {
    assertChannelName(channel);
    const joins = session.socket?.joins;
    if (joins) for (let i = joins.indexOf(channel); i >= 0; i = joins.indexOf(channel)) joins.splice(i, 1);
    const { membership, cluster, presence } = this.deps;
    const here = membership.has(channel, session.client.id);
    if (here) {
      membership.remove(channel, session.client.id, true);
      presence.left(channel, session.client.id);
      await this.publishLeave(session.client, channel);
    }
    if (!cluster) return here;
    // An authenticated client's joins over HTTP may live on another instance: presence knows them all.
    const elsewhere = !here && (await presence.list(channel)).some((client) => client.id === session.client.id);
    if (here || elsewhere) cluster.requestLeave(channel, session.client.id, !here);
    return here || elsewhere;
  }

  /**
   * Undoes every join a client made on this instance of a channel, at another instance's request
   * (see {@link ChannelService.leaveChannel}); with `announce`, publishes its LEAVE event.
   */
  leaveHere(channel: string, clientId: string, announce: boolean): void {
    const client = this.deps.membership.member(channel, clientId);
    if (!client || !this.deps.membership.remove(channel, clientId, true)) return;
    this.deps.presence.left(channel, clientId);
    if (announce) void this.publishLeave(client, channel);
  }

  /** Undoes the joins a WebSocket connection made with `joinChannel`; called when it closes. */
  closeSession(session: Session): void {
    for (const channel of session.socket?.joins.splice(0) ?? []) this.removeMember(session.client, channel);
  }

  /**
   * What this instance holds right now: channels with members, memberships, channels the bus feeds
   * and the listeners it feeds. Every one of them returns to 0 once every connection has closed.
   */
  stats(): { channels: number; memberships: number; feeds: number; listeners: number } {
    const { channels, memberships } = this.deps.membership.counts();
    const fed = this.deps.fanout.counts();
    return { channels, memberships, feeds: fed.channels, listeners: fed.listeners };
  }

  /** The latest messages of a channel, oldest first, for callers allowed to listen to it. */
  async history(session: Session, channel: string, last: number): Promise<ChannelEvent[]> {
    const rules = this.authorize(session, channel, "listen");
    if (last < 0) throw badInput("last must be 0 or more", { field: "last" });
    return this.deps.history.latest(channel, Math.min(last, rules.history));
  }

  /** Who has joined a channel and not left, for callers allowed to listen to it, where presence is on. */
  async presence(session: Session, channel: string): Promise<RealtimeClient[]> {
    const rules = this.authorize(session, channel, "listen");
    if (!rules.presence) throw new AppError(ErrorCode.Forbidden, `Presence is off for channel ${channel}`, { channel });
    return this.deps.presence.list(channel);
  }

  private async join(session: Session, channel: string, options: unknown): Promise<JoinResult> {
    this.authorize(session, channel, "listen");
    const result = await this.deps.publisher.publish(this.createEvent("JOIN", session.client, channel, null, options));
    if (!result.delivered) return { joined: false, event: null };
    return { joined: true, event: result.event };
  }

  private checkSize(field: "payload" | "options", value: unknown): void {
    if (nestsDeeperThan(value)) {
      throw badInput(`The ${field} nests deeper than ${MAX_JSON_DEPTH} levels`, { field });
    }
    const bytes = value === undefined || value === null ? 0 : Buffer.byteLength(JSON.stringify(value));
    if (bytes > this.deps.limits.maxPayloadBytes) {
      throw new AppError(ErrorCode.PayloadTooLarge, `The ${field} is ${bytes} bytes; the limit is ${this.deps.limits.maxPayloadBytes}`, {
        field,
        limit: this.deps.limits.maxPayloadBytes,
      });
    }
  }

  private checkChannelCount(session: Session, channel: string): void {
    const { membership, limits } = this.deps;
    if (membership.has(channel, session.client.id) || membership.channelCount(session.client.id) < limits.maxChannelsPerClient) return;
    throw new AppError(ErrorCode.LimitExceeded, `Too many channels: a client may be in at most ${limits.maxChannelsPerClient}`);
  }

  private addMember(client: RealtimeClient, channel: string): void {
    if (this.deps.membership.add(channel, client)) this.deps.presence.joined(channel, client);
  }

  private removeMember(client: RealtimeClient, channel: string): void {
    if (this.deps.membership.remove(channel, client.id)) {
      this.deps.presence.left(channel, client.id);
      void this.publishLeave(client, channel);
    }
  }

  private async publishLeave(client: RealtimeClient, channel: string): Promise<void> {
    try {
      await this.deps.publisher.publish(this.createEvent("LEAVE", client, channel, null, null));
    } catch (error) {
      this.deps.logger.warn({ err: error, channel }, "could not publish a LEAVE event");
    }
  }

  /**
   * Checks the channel name and its rules for a caller; returns the rules.
   * @throws AppError `BAD_USER_INPUT`, `UNAUTHENTICATED` or `FORBIDDEN`
   */
  private authorize(session: Session, channel: string, access: Access): ChannelRules {
    assertChannelName(channel);
    const rules = this.deps.configs.rulesFor(channel);
    if (!rules.active) throw new AppError(ErrorCode.Forbidden, `Channel ${channel} is inactive`, { channel });
    if (session.isAdmin) return rules;
    const { authenticated } = session.client;
    if (!authenticated && !rules.anonymousClients) {
      throw new AppError(ErrorCode.Unauthenticated, `Channel ${channel} is for authenticated clients`, { channel });
    }
    if (access === "send" && rules.messaging === "NOBODY") {
      throw new AppError(ErrorCode.Forbidden, `Only the admin may send to channel ${channel}`, { channel });
    }
    if (access === "send" && rules.messaging === "AUTHENTICATED" && !authenticated) {
      throw new AppError(ErrorCode.Unauthenticated, `Only authenticated clients may send to channel ${channel}`, { channel });
    }
    return rules;
  }

  private createEvent(action: RealtimeAction, client: RealtimeClient, channel: string, payload: unknown, commandOptions: unknown): ChannelEvent {
    return {
      id: randomUUID(),
      action,
      command: commandOf[action],
      channel,
      payload: payload ?? null,
      commandOptions: commandOptions ?? null,
      client,
      createdAt: new Date().toISOString(),
      seq: null,
    };
  }
}

/** How many past messages a subscription asked for, capped by what the channel keeps. */
function replayCount(options: unknown, rules: ChannelRules): number {
  if (typeof options !== "object" || options === null || !("history" in options)) return 0;
  const wanted = options.history;
  if (typeof wanted !== "number" || !Number.isInteger(wanted) || wanted < 0) {
    throw badInput("options.history must be a whole number of messages", { field: "options.history" });
  }
  return Math.min(wanted, rules.history);
}
