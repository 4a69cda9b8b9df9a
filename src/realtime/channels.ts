import { randomUUID } from "node:crypto";
import { AppError, badInput, ErrorCode } from "../errors.js";
import type { Logger } from "../logger.js";
import type { ChannelRules } from "./channel-config.js";
import { assertChannelName } from "./channel-name.js";
import type { ChannelListener } from "./fanout.js";
import { ChannelGate, type ChannelRulesSource } from "./gate.js";
import { closableIterator, emptyStream } from "./iterators.js";
import type { Membership } from "./membership.js";
import type { RealtimeObserver, Transport } from "./observer.js";
import type { PresenceTracker } from "./presence.js";
import type { PublishResult } from "./publisher.js";
import { type ChannelEvent, commandOf, type PresenceMember, type RealtimeAction, type RealtimeClient, type Session } from "./types.js";

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

/** Where the events of a subscription opened with {@link ChannelService.open} go. */
export interface SubscriptionSink {
  /** Called synchronously for each event, in publish order. Must not throw. */
  event(event: ChannelEvent): void;
  /** Called instead of `event` with several consecutive events at once, when present. Must not throw. */
  eventBatch?(events: readonly ChannelEvent[]): void;
  /**
   * The server ended the subscription; no event follows. With an error the subscriber may no longer
   * listen (the channel's rules changed, its token expired); without one its client left the channel.
   */
  end(error?: AppError): void;
}

/** Publishes events through the middleware chain (the {@link Publisher}). */
export interface EventPublisher {
  publish(event: ChannelEvent): Promise<PublishResult>;
}

/** Hands a channel's events to its listeners on this instance (the {@link ChannelFanout}). */
export interface ChannelFeeds {
  add(channel: string, listener: ChannelListener): void;
  remove(channel: string, listener: ChannelListener): void;
  counts(): { channels: number; listeners: number };
}

/** Reads a channel's stored messages (the {@link ChannelHistory}). */
export interface HistoryReader {
  /** The latest `last` messages, oldest first. */
  latest(channel: string, last: number): Promise<ChannelEvent[]>;
}

/** The parts of the server the channel operations use. */
export interface ChannelServiceDeps {
  readonly publisher: EventPublisher;
  readonly fanout: ChannelFeeds;
  readonly membership: Membership;
  readonly rules: ChannelRulesSource;
  readonly history: HistoryReader;
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

/** Per-client and per-address limits, each refused with a clear error. The admin is exempt from rates. */
export interface ChannelLimits {
  /** Bytes of a message's payload (and, separately, of any options) as JSON. */
  readonly maxPayloadBytes: number;
  /** Open channel subscriptions on one WebSocket. */
  readonly maxSubscriptionsPerSocket: number;
  /** Channels one client may be a member of at once. */
  readonly maxChannelsPerClient: number;
  /** Messages one client may send per second. */
  readonly messagesPerSecond: number;
  /** Joins (a `joinChannel` or a channel subscription) one client may make per second. */
  readonly joinsPerSecond: number;
  /** Messages anonymous clients may send per second from one address, all together. */
  readonly addressMessagesPerSecond: number;
  /** Joins anonymous clients may make per second from one address, all together. */
  readonly addressJoinsPerSecond: number;
  /** Events a pulled subscription ({@link ChannelService.subscribe}) may have waiting for its reader. */
  readonly maxQueuedEvents: number;
}

/** What an {@link OpenSubscription} asks of its {@link ChannelService}. */
interface SubscriptionOwner {
  close(subscription: OpenSubscription, leave: boolean): void;
}

/**
 * An open subscription, as the service tracks it: its channel's listener in the fan-out, and the
 * handle {@link ChannelService.open} returns. Until {@link OpenSubscription.goLive} it holds live
 * events back; from then on it hands each event to its sink, except those the replayed history
 * already held. A class rather than closures: a server holds one per subscription, tens of
 * thousands of them, and its methods are shared.
 */
class OpenSubscription implements ChannelListener, ChannelSubscription {
  readonly clientId: string;
  readonly transport: Transport;
  /** Live events waiting for the replay to end; null once it has. */
  // Stryker disable next-line ArrayDeclaration: a placeholder entry has no seq, so goLive drops it as already replayed
  private held: ChannelEvent[] | null = [];
  /** The sequence number of the last replayed message. */
  private lastReplayed = 0;
  /** Holds one of its WebSocket's subscription slots. */
  // Stryker disable next-line BooleanLiteral: every socket subscription sets it on taking its slot before any release, and a socketless one is never released
  holdsSlot = false;
  expiry?: NodeJS.Timeout;
  closed = false;

  constructor(
    private readonly owner: SubscriptionOwner,
    readonly session: Session,
    readonly channel: string,
    readonly sink: SubscriptionSink,
    /** The admin's: watching without being a member. */
    readonly observer: boolean,
  ) {
    this.clientId = session.client.id;
    this.transport = session.socket ? "ws" : "http";
  }

  deliver(event: ChannelEvent): void {
    if (this.held) this.held.push(event);
    else if (this.fresh(event)) this.sink.event(event);
  }

  deliverAll(batch: readonly ChannelEvent[]): void {
    if (this.held) this.held.push(...batch);
    else if (!this.sink.eventBatch) for (const event of batch) this.deliver(event);
    else if (batch.every((event) => this.fresh(event))) this.sink.eventBatch(batch);
    else if (batch.some((event) => this.fresh(event))) this.sink.eventBatch(batch.filter((event) => this.fresh(event)));
  }

  /** Hands over the replayed history, then the subscriber's own JOIN when given, then the live events held meanwhile. */
  goLive(replayed: readonly ChannelEvent[], ownJoin: ChannelEvent | null): void {
    this.lastReplayed = replayed.at(-1)?.seq ?? 0;
    const live = this.held ?? [];
    this.held = null;
    for (const event of replayed) this.sink.event(event);
    if (ownJoin) this.sink.event(ownJoin);
    for (const event of live) this.deliver(event);
  }

  close(): void {
    this.owner.close(this, true);
  }

  /** False for a live event the replayed history already held. */
  private fresh(event: ChannelEvent): boolean {
    return event.seq === null || event.seq > this.lastReplayed;
  }
}

/** Options the server acts on itself; they are not part of the JOIN event members receive. */
const SERVER_OPTIONS = new Set(["history"]);

/** Longest a timer may be set for (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The channel operations clients perform: send, join, subscribe, leave, and read history and
 * presence. Every one of them passes one gate (channel name, token validity, the channel's rules,
 * rate limits, and for members-only channels membership) whatever transport it came through, and
 * every event they create goes through the {@link EventPublisher}, so triggers see it before anyone
 * receives it.
 *
 * Memberships and subscriptions end exactly once: slots are taken synchronously before the first
 * await and released on every path, and a client that goes away yields one LEAVE per channel.
 */
export class ChannelService {
  private readonly gate: ChannelGate;
  /** Channels each client is joining right now, with how many joins are under way. */
  private readonly joining = new Map<string, Map<string, number>>();
  private readonly subscriptions = new Map<string, Set<OpenSubscription>>();
  private readonly bySession = new WeakMap<Session, Set<OpenSubscription>>();
  /** WebSocket sessions holding `joinChannel` memberships, by channel. */
  private readonly joinedSockets = new Map<string, Set<Session>>();
  private readonly subscriptionOwner: SubscriptionOwner = { close: (subscription, leave) => this.close(subscription, leave) };

  constructor(private readonly deps: ChannelServiceDeps) {
    this.gate = new ChannelGate(deps.rules, deps.limits);
  }

  /** Publishes a MESSAGE event; with `options.to`, only that client's subscriptions receive it. */
  async sendMessage(session: Session, channel: string, payload: unknown, options: unknown): Promise<SendResult> {
    const rules = this.gate.check(session, channel, "send");
    this.gate.checkJson("payload", payload);
    this.gate.checkJson("options", options);
    if (options != null && (typeof options !== "object" || Array.isArray(options))) {
      throw badInput("options must be a JSON object", { field: "options" });
    }
    if (options != null && "to" in options && typeof options.to !== "string") {
      throw badInput("options.to must be a client id", { field: "options.to" });
    }
    await this.requireMember(session, channel, rules, "send to it");
    const result = await this.deps.publisher.publish(this.createEvent("MESSAGE", session.client, channel, payload, options));
    return result.delivered ? { delivered: true, event: result.event } : { delivered: false, event: null };
  }

  /**
   * Publishes a JOIN event and, when it is delivered, makes the client a member of the channel.
   * Over a WebSocket the membership lasts until `leaveChannel` or the connection closes; over HTTP
   * only authenticated clients, whose identity outlives the request, stay members: an anonymous
   * client's JOIN is followed by its LEAVE, so members never count someone who cannot leave.
   */
  async joinChannel(session: Session, channel: string, options: unknown): Promise<JoinResult> {
    this.gate.check(session, channel, "join");
    this.gate.checkJson("options", options);
    const stays = session.socket !== undefined || session.client.authenticated;
    const releaseChannel = stays ? this.reserveChannel(session, channel) : () => {};
    try {
      const result = await this.join(session, channel, options);
      if (!result.joined) return result;
      if (!stays) {
        await this.publishLeave(session.client, channel);
        return result;
      }
      this.addMember(session.client, channel, result.event.commandOptions);
      // The connection closed while the JOIN was under way: it leaves at once.
      if (session.socket?.closed) this.removeMember(session.client, channel);
      else if (session.socket) this.trackJoin(session, channel);
      return result;
    } finally {
      releaseChannel();
    }
  }

  /**
   * Joins the channel as the session's client, then hands `sink` every event published on it from
   * the moment of the call, in publish order. With `options.history: n`, up to n past messages come
   * first, with no gap or duplicate between them and the live ones. Private messages reach only
   * their recipient. Throws when the join is refused; resolves to null when a trigger drops it.
   * Closing the subscription leaves the channel; the server may also end it (`sink.end`).
   *
   * The admin watches as an observer: no JOIN is published and no membership made (presence does
   * not list it, no LEAVE follows); its own JOIN, unpublished, reaches only its own subscription, so
   * every subscription still starts the same way.
   */
  async open(session: Session, channel: string, options: unknown, sink: SubscriptionSink): Promise<ChannelSubscription | null> {
    const rules = this.gate.check(session, channel, "join");
    this.gate.checkJson("options", options);
    const replay = replayCount(options, rules);
    const observer = session.isAdmin;
    // Listens before the join is published, so nothing published after this call is missed, and
    // holds live events back until the replayed history has been handed over.
    const subscription = new OpenSubscription(this.subscriptionOwner, session, channel, sink, observer);
    this.takeSubscriptionSlot(subscription);
    let releaseChannel: () => void = () => {};
    try {
      if (!observer) releaseChannel = this.reserveChannel(session, channel);
    } catch (error) {
      this.releaseSlot(subscription);
      throw error;
    }
    const { fanout } = this.deps;
    fanout.add(channel, subscription);
    let member = false;
    let replayed: ChannelEvent[];
    let ownJoin: ChannelEvent | null = null;
    try {
      await this.deps.listening();
      if (observer) {
        ownJoin = this.createEvent("JOIN", session.client, channel, null, broadcastOptions(options));
      } else {
        const joined = await this.join(session, channel, options);
        if (!joined.joined) {
          fanout.remove(channel, subscription);
          this.releaseSlot(subscription);
          return null;
        }
        this.addMember(session.client, channel, joined.event.commandOptions);
        member = true;
      }
      replayed = await this.deps.history.latest(channel, replay);
      // The rules may have changed, or the connection closed, while the join was under way.
      // Stryker disable next-line StringLiteral: the gate treats "listen" like any operation other than send and join
      this.gate.check(session, channel, "listen");
      if (session.socket?.closed) throw new AppError(ErrorCode.Forbidden, "The connection has closed");
    } catch (error) {
      fanout.remove(channel, subscription);
      this.releaseSlot(subscription);
      if (member) this.removeMember(session.client, channel);
      throw error;
    } finally {
      releaseChannel();
    }

    this.track(subscription);
    if (session.expiresAt !== undefined && !session.socket) {
      // A WebSocket is closed when its token expires; a stream over HTTP (SSE) ends on its own.
      subscription.expiry = setTimeout(
        () => this.end(subscription, new AppError(ErrorCode.Unauthenticated, "Token expired")),
        Math.min(Math.max(session.expiresAt - Date.now(), 0), MAX_TIMER_MS),
      );
    }
    subscription.goLive(replayed, ownJoin);
    return subscription;
  }

  /**
   * {@link ChannelService.open} as an async iterator, for transports that pull: the stream is empty
   * when a trigger drops the join, and ending it leaves the channel. A reader that falls
   * `maxQueuedEvents` behind is cut off: a WebSocket connection is dropped, any other stream fails
   * with `SLOW_CONSUMER`. A subscription the server ends fails with the reason, or finishes when the
   * client left the channel.
   */
  async subscribe(session: Session, channel: string, options: unknown): Promise<AsyncIterableIterator<ChannelEvent>> {
    const queue: ChannelEvent[] = [];
    const { maxQueuedEvents } = this.deps.limits;
    let wake: (() => void) | null = null;
    let ended = false;
    let failure: AppError | null = null;
    let opened: ChannelSubscription | null = null;
    const finish = (error?: AppError) => {
      if (ended) return;
      ended = true;
      failure = error ?? null;
      wake?.();
    };
    const subscription = await this.open(session, channel, options, {
      event: (event) => {
        if (ended) return;
        if (queue.length < maxQueuedEvents) {
          queue.push(event);
          wake?.();
          return;
        }
        queue.length = 0;
        if (!session.socket) this.deps.observer?.slowConsumerDropped("http"); // a WebSocket's drop() counts its own
        finish(new AppError(ErrorCode.SlowConsumer, `Too slow: more than ${maxQueuedEvents} events were waiting for this subscription`));
        opened?.close(); // leaves at once; during the replay `opened` is not known yet, see below
        session.socket?.drop(`more than ${maxQueuedEvents} events waiting on channel ${channel}`);
      },
      end: finish,
    });
    if (!subscription) return emptyStream();
    opened = subscription;
    if (ended) subscription.close(); // cut off while the history was replayed
    const close = async (): Promise<IteratorReturnResult<undefined>> => {
      finish();
      queue.length = 0;
      subscription.close();
      return { done: true, value: undefined };
    };
    return closableIterator<ChannelEvent>(async () => {
      while (!ended && queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      const event = queue.shift();
      if (event) return { done: false, value: event };
      const error = failure;
      await close();
      if (error) throw error;
      return { done: true, value: undefined };
    }, close);
  }

  /**
   * Leaves a channel: ends the client's subscriptions to it (each completes), undoes every join of
   * the client on it, on every instance, and publishes one LEAVE event (which triggers may enrich
   * but not refuse). Returns false when the client was not a member anywhere.
   */
  async leaveChannel(session: Session, channel: string): Promise<boolean> {
    assertChannelName(channel);
    const { membership, cluster, presence } = this.deps;
    const clientId = session.client.id;
    this.untrackJoins(channel, clientId);
    this.endClientSubscriptions(channel, clientId);
    const client = membership.member(channel, clientId) ?? session.client;
    const here = membership.remove(channel, clientId, true);
    if (here) {
      presence.left(channel, clientId);
      await this.publishLeave(client, channel);
    }
    if (!cluster) return here;
    // An authenticated client's joins over HTTP may live on another instance: presence knows them all.
    const elsewhere = !here && (await presence.list(channel)).some((member) => member.id === clientId);
    if (here || elsewhere) cluster.requestLeave(channel, clientId, !here);
    return here || elsewhere;
  }

  /**
   * Undoes every join a client made on this instance of a channel, and ends its subscriptions to
   * it, at another instance's request (see {@link ChannelService.leaveChannel}); with `announce`,
   * publishes its LEAVE event.
   */
  leaveHere(channel: string, clientId: string, announce: boolean): void {
    this.untrackJoins(channel, clientId);
    this.endClientSubscriptions(channel, clientId);
    const client = this.deps.membership.member(channel, clientId);
    if (!client || !this.deps.membership.remove(channel, clientId, true)) return;
    this.deps.presence.left(channel, clientId);
    if (announce) void this.publishLeave(client, channel);
  }

  /**
   * Ends what a WebSocket connection holds when it closes: its subscriptions and the joins it made
   * with `joinChannel`. Joins still under way when it closes leave as soon as they finish.
   */
  closeSession(session: Session): void {
    if (session.socket) session.socket.closed = true;
    for (const subscription of this.bySession.get(session) ?? []) this.close(subscription, true);
    // Stryker disable next-line ArrayDeclaration: without a socket a placeholder channel has no member to remove
    for (const channel of session.socket?.joins.splice(0) ?? []) {
      this.joinedSockets.get(channel)?.delete(session);
      if (this.joinedSockets.get(channel)?.size === 0) this.joinedSockets.delete(channel);
      this.removeMember(session.client, channel);
    }
  }

  /**
   * Applies the channels' current rules to every open subscription and every WebSocket's
   * `joinChannel` membership: a client that may no longer listen (the channel became inactive or
   * closed to anonymous clients, or is no longer configured) is removed: its subscription ends with
   * the refusal and its LEAVE is published. Called after every channel configuration change,
   * wherever it was made.
   */
  enforceRules(): void {
    const refusal = (session: Session, channel: string): AppError | null => {
      try {
        // Stryker disable next-line StringLiteral: the gate treats "listen" like any operation other than send and join
        this.gate.check(session, channel, "listen");
        return null;
      } catch (error) {
        return error instanceof AppError ? error : new AppError(ErrorCode.Forbidden, "No longer allowed");
      }
    };
    for (const subscriptions of this.subscriptions.values()) {
      for (const subscription of [...subscriptions]) {
        const error = refusal(subscription.session, subscription.channel);
        if (error) this.end(subscription, error);
      }
    }
    for (const [channel, sessions] of [...this.joinedSockets]) {
      for (const session of [...sessions]) {
        if (!refusal(session, channel)) continue;
        const joins = session.socket!.joins;
        for (let i = joins.indexOf(channel); i >= 0; i = joins.indexOf(channel)) {
          joins.splice(i, 1);
          this.removeMember(session.client, channel);
        }
        sessions.delete(session);
      }
      if (sessions.size === 0) this.joinedSockets.delete(channel);
    }
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

  /** The latest messages of a channel, oldest first, for callers allowed to read it. */
  async history(session: Session, channel: string, last: number): Promise<ChannelEvent[]> {
    // Stryker disable next-line StringLiteral: the gate treats "read" like any operation other than send and join
    const rules = this.gate.check(session, channel, "read");
    if (last < 0) throw badInput("last must be 0 or more", { field: "last" });
    await this.requireMember(session, channel, rules, "read its history");
    return this.deps.history.latest(channel, Math.min(last, rules.history));
  }

  /** Who has joined a channel and not left, for callers allowed to read it, where presence is on. */
  async presence(session: Session, channel: string): Promise<PresenceMember[]> {
    // Stryker disable next-line StringLiteral: the gate treats "read" like any operation other than send and join
    const rules = this.gate.check(session, channel, "read");
    if (!rules.presence) throw new AppError(ErrorCode.Forbidden, `Presence is off for channel ${channel}`, { channel });
    await this.requireMember(session, channel, rules, "see who is in it");
    return this.deps.presence.list(channel);
  }

  /**
   * On a members-only channel, refuses callers that are not members (the admin is exempt). In a
   * cluster an authenticated client may have joined through another instance: presence knows.
   */
  private async requireMember(session: Session, channel: string, rules: ChannelRules, what: string): Promise<void> {
    if (!rules.membersOnly || session.isAdmin) return;
    const { membership, cluster, presence } = this.deps;
    const clientId = session.client.id;
    if (membership.has(channel, clientId)) return;
    if (cluster && session.client.authenticated && (await presence.list(channel)).some((member) => member.id === clientId)) return;
    throw new AppError(ErrorCode.Forbidden, `Only members of channel ${channel} may ${what}`, { channel });
  }

  private async join(session: Session, channel: string, options: unknown): Promise<JoinResult> {
    const result = await this.deps.publisher.publish(this.createEvent("JOIN", session.client, channel, null, broadcastOptions(options)));
    if (!result.delivered) return { joined: false, event: null };
    return { joined: true, event: result.event };
  }

  /** Takes one of the socket's subscription slots for the subscription ({@link ChannelService.releaseSlot} gives it back). */
  private takeSubscriptionSlot(subscription: OpenSubscription): void {
    const socket = subscription.session.socket;
    if (!socket) return;
    if (socket.closed) throw new AppError(ErrorCode.Forbidden, "The connection has closed");
    const max = this.deps.limits.maxSubscriptionsPerSocket;
    if (socket.subscriptions >= max) throw new AppError(ErrorCode.LimitExceeded, `Too many subscriptions: at most ${max} per connection`);
    socket.subscriptions += 1;
    subscription.holdsSlot = true;
  }

  /** Gives back the subscription's slot, once. */
  private releaseSlot(subscription: OpenSubscription): void {
    const socket = subscription.session.socket;
    // Stryker disable next-line LogicalOperator: releaseSlot runs at most once per subscription (close() is guarded, open's failure paths exclude each other), so a socket's holdsSlot is always true here
    if (!socket || !subscription.holdsSlot) return;
    // Stryker disable next-line BooleanLiteral: releaseSlot runs at most once per subscription (see above)
    subscription.holdsSlot = false;
    socket.subscriptions -= 1;
  }

  /**
   * Holds a place for the channel among the client's channels while a join is under way (a join
   * that succeeds becomes a membership, which counts instead); the returned release runs once.
   */
  private reserveChannel(session: Session, channel: string): () => void {
    const { membership, limits } = this.deps;
    const clientId = session.client.id;
    let pending = this.joining.get(clientId);
    const counted = membership.has(channel, clientId) || (pending?.has(channel) ?? false);
    if (!counted && membership.channelCount(clientId) + this.pendingOutside(clientId, pending) >= limits.maxChannelsPerClient) {
      throw new AppError(ErrorCode.LimitExceeded, `Too many channels: a client may be in at most ${limits.maxChannelsPerClient}`);
    }
    if (!pending) this.joining.set(clientId, (pending = new Map()));
    pending.set(channel, (pending.get(channel) ?? 0) + 1);
    const held = pending;
    return once(() => {
      const left = (held.get(channel) ?? 1) - 1;
      if (left > 0) held.set(channel, left);
      else held.delete(channel);
      if (held.size === 0 && this.joining.get(clientId) === held) this.joining.delete(clientId);
    });
  }

  /** Channels a client is joining that it is not a member of already (those count as memberships). */
  private pendingOutside(clientId: string, pending: ReadonlyMap<string, number> | undefined): number {
    let outside = 0;
    for (const channel of pending?.keys() ?? []) if (!this.deps.membership.has(channel, clientId)) outside++;
    return outside;
  }

  private trackJoin(session: Session, channel: string): void {
    session.socket!.joins.push(channel);
    let sessions = this.joinedSockets.get(channel);
    if (!sessions) this.joinedSockets.set(channel, (sessions = new Set()));
    sessions.add(session);
  }

  /** Forgets a client's `joinChannel` memberships of a channel (the caller undoes the membership itself). */
  private untrackJoins(channel: string, clientId: string): void {
    const sessions = this.joinedSockets.get(channel);
    for (const session of sessions ?? []) {
      if (session.client.id !== clientId) continue;
      const joins = session.socket!.joins;
      for (let i = joins.indexOf(channel); i >= 0; i = joins.indexOf(channel)) joins.splice(i, 1);
      sessions!.delete(session);
    }
    if (sessions?.size === 0) this.joinedSockets.delete(channel);
  }

  private track(subscription: OpenSubscription): void {
    let onChannel = this.subscriptions.get(subscription.channel);
    if (!onChannel) this.subscriptions.set(subscription.channel, (onChannel = new Set()));
    onChannel.add(subscription);
    let ofSession = this.bySession.get(subscription.session);
    if (!ofSession) this.bySession.set(subscription.session, (ofSession = new Set()));
    ofSession.add(subscription);
  }

  /** Stops a subscription's delivery and gives back its slot, once; with `leave`, leaves the channel. */
  private close(subscription: OpenSubscription, leave: boolean): void {
    if (subscription.closed) return;
    subscription.closed = true;
    clearTimeout(subscription.expiry);
    const { channel, session } = subscription;
    this.deps.fanout.remove(channel, subscription);
    const onChannel = this.subscriptions.get(channel);
    // Stryker disable next-line OptionalChaining: a subscription is tracked before it can be closed, so its channel's set exists
    onChannel?.delete(subscription);
    // Stryker disable next-line OptionalChaining: a subscription is tracked before it can be closed, so its channel's set exists
    if (onChannel?.size === 0) this.subscriptions.delete(channel);
    // Stryker disable next-line OptionalChaining: a subscription is tracked before it can be closed, so its session's set exists
    this.bySession.get(session)?.delete(subscription);
    this.releaseSlot(subscription);
    if (leave && !subscription.observer) this.removeMember(session.client, channel);
  }

  /** Ends a subscription from the server's side: it leaves the channel and its subscriber is told why. */
  private end(subscription: OpenSubscription, error: AppError): void {
    if (subscription.closed) return;
    this.close(subscription, true);
    subscription.sink.end(error);
  }

  /** Completes every subscription a client holds on a channel, without a LEAVE each (the caller publishes one). */
  private endClientSubscriptions(channel: string, clientId: string): void {
    for (const subscription of [...(this.subscriptions.get(channel) ?? [])]) {
      if (subscription.session.client.id !== clientId) continue;
      this.close(subscription, false);
      subscription.sink.end();
    }
  }

  /**
   * Makes the client a member. Presence lists it with the options of its latest JOIN as delivered
   * (after triggers), so shared presence is written again on every join, not only the first.
   */
  private addMember(client: RealtimeClient, channel: string, joinOptions: unknown): void {
    const member: PresenceMember = { ...client, joinOptions: joinOptions ?? null };
    this.deps.membership.add(channel, member);
    this.deps.presence.joined(channel, member);
  }

  private removeMember(client: RealtimeClient, channel: string): void {
    if (this.deps.membership.remove(channel, client.id)) {
      this.deps.presence.left(channel, client.id);
      void this.publishLeave(client, channel);
    }
  }

  private async publishLeave(member: PresenceMember, channel: string): Promise<void> {
    // The event carries the client alone: its join options are presence's, not part of the LEAVE.
    const client: RealtimeClient = { id: member.id, authenticated: member.authenticated, extras: member.extras };
    try {
      await this.deps.publisher.publish(this.createEvent("LEAVE", client, channel, null, null));
    } catch (error) {
      this.deps.logger.warn({ err: error, channel }, "could not publish a LEAVE event");
    }
  }

  private createEvent(
    action: RealtimeAction,
    client: RealtimeClient,
    channel: string,
    payload: unknown,
    commandOptions: unknown,
  ): ChannelEvent {
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

/** A function that does its work the first time it is called only. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    // Stryker disable next-line BooleanLiteral: each release is called once, in a finally
    done = true;
    fn();
  };
}

/** The join options members see: without the ones the server acts on itself (`history`). */
function broadcastOptions(options: unknown): unknown {
  if (typeof options !== "object" || options === null || Array.isArray(options)) return options;
  if (!Object.keys(options).some((key) => SERVER_OPTIONS.has(key))) return options;
  const shown = Object.fromEntries(Object.entries(options).filter(([key]) => !SERVER_OPTIONS.has(key)));
  return Object.keys(shown).length > 0 ? shown : null;
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
