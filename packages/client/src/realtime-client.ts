/**
 * A typed, framework-free client for the realtime channels server, for browsers (and Node, given a
 * WebSocket implementation). One WebSocket (graphql-ws) carries every channel, send, history and
 * presence call; the operations and their types come from `./generated/` (`npm run codegen`).
 *
 * It reconnects with exponential backoff and resumes every joined channel without missing or
 * duplicating messages: it remembers the last `seq` seen per channel, re-subscribes with
 * `options: { history: n }` so the server replays what was kept, and skips what it had already seen.
 * Messages older than the channel's history are reported through `onGap` instead.
 *
 * @example
 * const realtime = createRealtimeClient({ url: "ws://localhost:4000/graphql" });
 * realtime.onStatus((status) => console.log(status)); // connecting, connected, reconnecting, closed
 * const room = await realtime.join("room:lobby", (event) => console.log(event.action, event.payload), { history: 50 });
 * await realtime.send("room:lobby", { text: "hello" });
 * room.leave();
 */
import { type Client, createClient } from "graphql-ws";
import type {
  ChannelEventFieldsFragment,
  ChannelEventsSubscription,
  ChannelPresenceQuery,
  SendMessageMutation,
} from "./generated/graphql.js";
import { isGraphQLErrors, RealtimeError } from "./graphql-errors.js";
import { ChannelEventsDocument, ChannelHistoryDocument, ChannelPresenceDocument, SendMessageDocument } from "./operations.js";
import type { TypedDocument } from "./typed-document.js";

/**
 * A channel event as delivered (after the server's triggers). `TPayload` and `TOptions` type its
 * `payload` and `commandOptions` as the app declares them: the server does not check them, so a
 * channel's triggers and senders must keep to the shape declared.
 */
export type ChannelEvent<TPayload = unknown, TOptions = unknown> = Omit<ChannelEventFieldsFragment, "payload" | "commandOptions"> & {
  readonly payload: TPayload;
  readonly commandOptions: TOptions;
};
/** A client present on a channel, with the options of its latest JOIN (`joinOptions`). */
export type ChannelMember = ChannelPresenceQuery["presence"][number];
/** What `send` returns: `delivered: false` (and no event) when a trigger dropped the message. */
export type SendResult<TPayload = unknown> = Omit<SendMessageMutation["sendMessage"], "event"> & {
  readonly event: ChannelEvent<TPayload> | null;
};

/** What changed in a channel's presence (see {@link JoinOptions.onPresence}). */
export type PresenceChange =
  /** The members were read from the server: on joining, and again after every reconnect. */
  | { readonly kind: "sync" }
  | { readonly kind: "join"; readonly member: ChannelMember }
  | { readonly kind: "leave"; readonly member: ChannelMember }
  /** Presence could not be read (`FORBIDDEN` where it is off); `members` is empty until the next sync. */
  | { readonly kind: "unavailable"; readonly error: RealtimeError };

/** A channel's members after a change, and the change. */
export interface PresenceUpdate {
  readonly members: readonly ChannelMember[];
  readonly change: PresenceChange;
}

/** Handlers of a custom subscription (see {@link RealtimeClient.subscribe}). */
export interface SubscriptionHandlers<TResult> {
  /** Each result's data. */
  next(data: TResult): void;
  /** The server refused or ended the subscription with an error; it is over. */
  error?(error: RealtimeError): void;
  /** The server completed the subscription; it is over. */
  complete?(): void;
}

/** Facts about a delivered event. */
export interface EventInfo {
  /** Sent by this client: its own JOIN, and events from any client id it had on the channel. */
  readonly self: boolean;
}

/** Receives a channel's events. */
export type EventHandler<TPayload = unknown, TOptions = unknown> = (event: ChannelEvent<TPayload, TOptions>, info: EventInfo) => void;

/** The state of the client's connection. */
export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "closed";

/** Details of a status change. */
export interface StatusDetail {
  /** Reconnection attempts since the last successful connection. */
  readonly attempt: number;
  /** With `reconnecting`: the wait before the next attempt. */
  readonly retryInMs?: number;
  /** With `closed`: why, unless `close()` was called. */
  readonly error?: RealtimeError;
}

export type StatusListener = (status: ConnectionStatus, detail: StatusDetail) => void;

/** How to back off between reconnection attempts: `initialDelayMs * 2^n`, capped, with jitter. */
export interface ReconnectOptions {
  /** Default 500. */
  readonly initialDelayMs?: number;
  /** Default 10 000. */
  readonly maxDelayMs?: number;
  /** Attempts before giving up (status `closed`); default unlimited. */
  readonly maxAttempts?: number;
}

export interface RealtimeClientOptions {
  /** The WebSocket endpoint, e.g. `ws://localhost:4000/graphql`. */
  readonly url: string;
  /** A client JWT (`connectionParams.authToken`); a function is asked again on every connection. */
  readonly authToken?: string | null | (() => string | null | undefined | Promise<string | null | undefined>);
  /** The admin token (`connectionParams.adminToken`): admins may listen to any channel. */
  readonly adminToken?: string | null;
  /** A WebSocket class where there is no global one (Node 20: `ws`). */
  readonly webSocketImpl?: unknown;
  readonly reconnect?: ReconnectOptions;
  /** How many kept messages to ask for when resuming a channel after a reconnect; default 100. */
  readonly resumeHistory?: number;
  /** Ping interval; a connection whose pong does not come back within it is replaced. Default 15 000; 0 disables. */
  readonly keepAliveMs?: number;
}

/** A gap the client could not fill: messages after `afterSeq` and before `nextSeq` were missed. */
export interface ChannelGap {
  readonly channel: string;
  readonly afterSeq: number;
  readonly nextSeq: number;
}

export interface JoinOptions {
  /** Past messages to receive before live ones on the first join (capped by the channel's history). */
  readonly history?: number;
  /** Options sent with the join (`commandOptions` of the JOIN event; triggers see them). */
  readonly options?: Record<string, unknown>;
  /** Called when messages were missed and the channel's history no longer has them. */
  readonly onGap?: (gap: ChannelGap) => void;
  /** Called when the server ends the membership (an error, or `null` when it completed it). */
  readonly onEnd?: (error: RealtimeError | null) => void;
  /**
   * Follows the channel's presence: called with every member after a sync (on joining, and again
   * after every reconnect, so the list stays right across outages) and after each JOIN and LEAVE
   * since. Events that arrive while a sync is under way are applied after it, in order.
   */
  readonly onPresence?: (update: PresenceUpdate) => void;
}

/** A joined channel. */
export interface ChannelMembership {
  readonly channel: string;
  /** This client's id on the channel (from its own JOIN). Anonymous clients get a new one per connection. */
  readonly clientId: string;
  /** The last message sequence number seen, or null before the first public message. */
  readonly lastSeq: number | null;
  /** With {@link JoinOptions.onPresence}: the members now, after the last sync and the events since; else empty. */
  readonly members: readonly ChannelMember[];
  /** Leaves the channel (ends the subscription; the server publishes a LEAVE). */
  leave(): void;
}

/** Close codes after which reconnecting cannot help (bad request or token, protocol errors). */
const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4406, 4409, 4429, 4500]);
const CLOSE_REASONS: Record<number, string> = { 4401: "unauthorized", 4403: "forbidden (check the token)", 4400: "bad request" };

interface Connection {
  readonly gql: Client;
  connected: boolean;
}

interface ChannelState {
  readonly channel: string;
  readonly onEvent: EventHandler;
  readonly options: JoinOptions;
  /** Identifies the current subscription; callbacks of older ones are ignored. */
  token: object | null;
  unsubscribe: (() => void) | null;
  /** Whether the current subscription has delivered this client's own JOIN. */
  ownJoinSeen: boolean;
  everJoined: boolean;
  clientId: string;
  /** Every client id this client had on the channel (one per connection for anonymous clients). */
  readonly ownIds: Set<string>;
  lastSeq: number | null;
  /** When the first own JOIN was created: resuming before any message was seen skips older replays. */
  joinedAt: number | null;
  /** With `onPresence`: the members by id, and the JOIN and LEAVE events held back while a sync is under way. */
  readonly presence: { members: Map<string, ChannelMember>; pending: ChannelEvent[] | null; sync: object | null };
  readonly membership: ChannelMembership;
  readonly joined: { resolve(membership: ChannelMembership): void; reject(error: RealtimeError): void };
}

/** Creates a client and starts connecting. */
export function createRealtimeClient(options: RealtimeClientOptions): RealtimeClient {
  return new RealtimeClient(options);
}

/** See the module documentation; create one with {@link createRealtimeClient}. */
export class RealtimeClient {
  private currentStatus: ConnectionStatus = "connecting";
  private readonly statusListeners = new Set<StatusListener>();
  private readonly channels = new Map<string, ChannelState>();
  private readonly customs = new Set<CustomSubscription>();
  private connection: Connection | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private waiters: { resolve(client: Client): void; reject(error: RealtimeError): void }[] = [];
  private closedError: RealtimeError | null = null;

  constructor(private readonly options: RealtimeClientOptions) {
    this.open();
  }

  /** The connection's state now. */
  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** Calls `listener` with the status now and on every change; returns a function that stops it. */
  onStatus(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    listener(this.currentStatus, { attempt: this.attempt, ...(this.closedError ? { error: this.closedError } : {}) });
    return () => this.statusListeners.delete(listener);
  }

  /**
   * Joins a channel: `onEvent` receives its events in order (first the requested history, then the
   * own JOIN, then live events), across reconnects, until {@link ChannelMembership.leave}. Resolves
   * once joined.
   * @throws RealtimeError when the server refuses the join (`FORBIDDEN`, `UNAUTHENTICATED`,
   * `TRIGGER_REJECTED`, ...) or a trigger drops it (`JOIN_DROPPED`)
   */
  join<TPayload = unknown, TOptions = unknown>(
    channel: string,
    onEvent: EventHandler<TPayload, TOptions>,
    options: JoinOptions = {},
  ): Promise<ChannelMembership> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.channels.has(channel)) return Promise.reject(new RealtimeError(`Already joined ${channel}`, "ALREADY_JOINED"));
    return new Promise((resolve, reject) => {
      const state: ChannelState = {
        channel,
        onEvent: onEvent as EventHandler,
        options,
        token: null,
        unsubscribe: null,
        ownJoinSeen: false,
        everJoined: false,
        clientId: "",
        ownIds: new Set(),
        lastSeq: null,
        joinedAt: null,
        presence: { members: new Map(), pending: null, sync: null },
        joined: { resolve, reject },
        membership: {
          channel,
          get clientId() {
            return state.clientId;
          },
          get lastSeq() {
            return state.lastSeq;
          },
          get members() {
            return [...state.presence.members.values()];
          },
          leave: () => void this.leave(channel),
        },
      };
      this.channels.set(channel, state);
      if (this.connection?.connected) this.subscribeChannel(state, this.connection);
    });
  }

  /** Leaves a joined channel; false when it was not joined. */
  leave(channel: string): boolean {
    const state = this.channels.get(channel);
    if (!state) return false;
    this.channels.delete(channel);
    state.token = null;
    state.unsubscribe?.();
    if (!state.everJoined) state.joined.reject(new RealtimeError(`Left ${channel} before joining it`, "LEFT"));
    return true;
  }

  /**
   * Sends a message; it reaches every subscriber (this client's own subscriptions included) after the
   * channel's triggers. `options.to` makes it private to one client id. Waits while reconnecting.
   * @throws RealtimeError e.g. `FORBIDDEN`, `TRIGGER_REJECTED`, or `CONNECTION_LOST` when the
   * connection dropped before the answer (the message may or may not have been delivered)
   */
  async send<TPayload = unknown>(channel: string, payload: TPayload, options?: Record<string, unknown>): Promise<SendResult<TPayload>> {
    return (await this.execute(SendMessageDocument, { channel, payload, options })).sendMessage as SendResult<TPayload>;
  }

  /** The latest `last` kept messages of a channel, oldest first (empty where history is off). */
  async history<TPayload = unknown>(channel: string, last = 50): Promise<ChannelEvent<TPayload>[]> {
    return (await this.execute(ChannelHistoryDocument, { channel, last })).history as ChannelEvent<TPayload>[];
  }

  /**
   * Who has joined a channel and not left.
   * @throws RealtimeError `FORBIDDEN` where presence is off
   */
  async presence(channel: string): Promise<ChannelMember[]> {
    return (await this.execute(ChannelPresenceDocument, { channel })).presence;
  }

  /**
   * Runs any typed query or mutation over the client's WebSocket and returns its data: the app's own
   * generated documents (client preset, `documentMode: "string"`, see {@link TypedDocument}).
   */
  async execute<TResult, TVariables>(document: TypedDocument<TResult, TVariables>, variables: TVariables): Promise<TResult> {
    const gql = await this.connected();
    return new Promise<TResult>((resolve, reject) => {
      let result: { data?: TResult | null; errors?: readonly { message: string }[] } | undefined;
      gql.subscribe<TResult>(
        { query: String(document), variables: variables as Record<string, unknown> },
        {
          next: (value) => void (result = value),
          error: (error) => reject(isGraphQLErrors(error) ? RealtimeError.fromErrors(error) : connectionLost()),
          complete: () => {
            if (result?.errors?.length) reject(RealtimeError.fromErrors(result.errors));
            else if (result?.data) resolve(result.data);
            else reject(connectionLost());
          },
        },
      );
    });
  }

  /**
   * Runs any typed subscription over the client's WebSocket (the app's own generated documents, like
   * {@link execute}), handing each result's data to `handlers.next`. After a reconnect it subscribes
   * again with the same variables; what was published meanwhile is not replayed (channel events
   * are: use {@link join} for them). Returns a function that ends it.
   */
  subscribe<TResult, TVariables>(
    document: TypedDocument<TResult, TVariables>,
    variables: TVariables,
    handlers: SubscriptionHandlers<TResult>,
  ): () => void {
    const custom: CustomSubscription = {
      query: String(document),
      variables: variables as Record<string, unknown>,
      handlers: handlers as SubscriptionHandlers<unknown>,
      token: null,
      unsubscribe: null,
    };
    if (this.closedError) {
      handlers.error?.(this.closedError);
      return () => {};
    }
    this.customs.add(custom);
    if (this.connection?.connected) this.subscribeCustom(custom, this.connection);
    return () => this.endCustom(custom);
  }

  /** Leaves every channel, closes the connection and stops reconnecting. Safe to call twice. */
  close(): void {
    this.shutdown(null);
  }

  private open(): void {
    const keepAlive = this.options.keepAliveMs ?? 15_000;
    let pongTimer: ReturnType<typeof setTimeout> | undefined;
    let socket: { close(code: number, reason: string): void } | undefined;
    const connection: Connection = {
      connected: false,
      gql: createClient({
        url: this.options.url,
        webSocketImpl: this.options.webSocketImpl,
        lazy: false,
        retryAttempts: 0, // this class reconnects, so it can resume each channel with fresh options
        keepAlive,
        connectionParams: () => this.connectionParams(),
        onNonLazyError: () => {}, // reported through the closed event below
        on: {
          connected: (opened) => {
            socket = opened as typeof socket;
            if (this.connection === connection) this.connectionOpened(connection);
          },
          ping: (received) => {
            if (!received) pongTimer = setTimeout(() => socket?.close(4408, "Pong timeout"), keepAlive);
          },
          pong: (received) => {
            if (received) clearTimeout(pongTimer);
          },
          closed: (event) => {
            clearTimeout(pongTimer);
            if (this.connection === connection) this.connectionClosed(connection, event);
          },
        },
      }),
    };
    this.connection = connection;
  }

  private async connectionParams(): Promise<Record<string, unknown>> {
    const { authToken, adminToken } = this.options;
    const token = typeof authToken === "function" ? await authToken() : authToken;
    return { ...(token ? { authToken: token } : {}), ...(adminToken ? { adminToken } : {}) };
  }

  private connectionOpened(connection: Connection): void {
    connection.connected = true;
    this.attempt = 0;
    this.setStatus("connected", {});
    for (const waiter of this.waiters.splice(0)) waiter.resolve(connection.gql);
    for (const state of this.channels.values()) this.subscribeChannel(state, connection);
    for (const custom of this.customs) this.subscribeCustom(custom, connection);
  }

  private connectionClosed(connection: Connection, event: unknown): void {
    this.connection = null;
    // Disposing first stops graphql-ws from retrying on its own; its sinks then complete, ignored below.
    for (const state of this.channels.values()) {
      state.token = null;
      state.presence.sync = null; // a sync under way answers for the connection that is gone
    }
    for (const custom of this.customs) custom.token = null;
    void Promise.resolve(connection.gql.dispose()).catch(() => {});
    const code = typeof event === "object" && event !== null && "code" in event ? Number(event.code) : undefined;
    // An expired token is worth a reconnect when the token comes from a function: it is asked again.
    const renewable =
      code === 4403 && String((event as { reason?: unknown }).reason) === "Token expired" && typeof this.options.authToken === "function";
    if (code !== undefined && FATAL_CLOSE_CODES.has(code) && !renewable) {
      const reason = CLOSE_REASONS[code] ?? String((event as { reason?: unknown }).reason ?? "");
      this.shutdown(new RealtimeError(`The server refused the connection: ${code} ${reason}`.trim(), "CONNECTION_REFUSED"));
      return;
    }
    const { initialDelayMs = 500, maxDelayMs = 10_000, maxAttempts = Infinity } = this.options.reconnect ?? {};
    if (this.attempt >= maxAttempts) {
      this.shutdown(new RealtimeError(`Could not reconnect after ${this.attempt} attempts`, "CONNECTION_LOST"));
      return;
    }
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** this.attempt);
    const retryInMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt++;
    this.setStatus("reconnecting", { retryInMs });
    this.retryTimer = setTimeout(() => this.open(), retryInMs);
  }

  /** (Re)subscribes a channel on a connection: from its last seen `seq` when resuming. */
  private subscribeChannel(state: ChannelState, connection: Connection): void {
    const token = {};
    state.token = token;
    state.ownJoinSeen = false;
    const history = state.lastSeq === null && !state.everJoined ? (state.options.history ?? 0) : (this.options.resumeHistory ?? 100);
    const variables = { name: state.channel, options: { ...state.options.options, ...(history > 0 ? { history } : {}) } };
    state.unsubscribe = connection.gql.subscribe<ChannelEventsSubscription>(
      { query: ChannelEventsDocument.toString(), variables },
      {
        next: (result) => {
          if (state.token !== token) return;
          if (result.errors?.length) this.endChannel(state, RealtimeError.fromErrors(result.errors));
          else if (result.data) this.receive(state, result.data.channel);
        },
        error: (error) => {
          // Anything but GraphQL errors is the connection closing: the channel resumes on the next one.
          if (state.token === token && isGraphQLErrors(error)) this.endChannel(state, RealtimeError.fromErrors(error));
        },
        complete: () => {
          if (state.token !== token) return;
          this.endChannel(
            state,
            state.everJoined ? null : new RealtimeError(`A trigger dropped the join to ${state.channel}`, "JOIN_DROPPED"),
          );
        },
      },
    );
  }

  /**
   * Delivers an event unless it was already seen. A (re)subscription first replays kept messages,
   * then delivers the client's own JOIN: replayed messages at or below the last seen `seq` are
   * duplicates (or, before any message was seen, those older than the first join). After the JOIN every message is new; a `seq` at or below the last one means the
   * server restarted the channel's numbering (a channel without history), not a duplicate.
   */
  private receive(state: ChannelState, event: ChannelEvent): void {
    if (!state.ownJoinSeen) {
      if (event.action === "JOIN") {
        state.ownJoinSeen = true;
        state.clientId = event.client.id;
        state.ownIds.add(event.client.id);
        if (state.options.onPresence) this.syncPresence(state);
        if (state.everJoined) return; // a rejoin after reconnecting is not news to the application
        state.everJoined = true;
        state.joinedAt = Date.parse(event.createdAt);
        this.deliver(state, event);
        state.joined.resolve(state.membership);
        return;
      }
      if (event.seq != null && state.lastSeq !== null && event.seq <= state.lastSeq) return;
      if (state.lastSeq === null && state.joinedAt !== null && Date.parse(event.createdAt) < state.joinedAt) return;
    }
    if (event.seq != null) {
      if (state.lastSeq !== null && event.seq > state.lastSeq + 1) {
        state.options.onGap?.({ channel: state.channel, afterSeq: state.lastSeq, nextSeq: event.seq });
      }
      state.lastSeq = event.seq;
    }
    this.deliver(state, event);
  }

  /** Reads the members afresh; JOIN and LEAVE events that arrive meanwhile wait for the answer. */
  private syncPresence(state: ChannelState): void {
    const sync = {};
    state.presence.sync = sync;
    state.presence.pending = [];
    const current = () => state.presence.sync === sync && this.channels.get(state.channel) === state;
    this.execute(ChannelPresenceDocument, { channel: state.channel }).then(
      ({ presence }) => {
        if (!current()) return;
        state.presence.members = new Map(presence.map((member) => [member.id, member]));
        for (const event of state.presence.pending ?? []) applyPresence(state.presence.members, event);
        state.presence.pending = null;
        state.presence.sync = null;
        this.notifyPresence(state, { kind: "sync" });
      },
      (error: unknown) => {
        if (!current()) return;
        state.presence.members.clear();
        state.presence.pending = null;
        state.presence.sync = null;
        const reason = error instanceof RealtimeError ? error : new RealtimeError(String(error), "PRESENCE_UNAVAILABLE");
        this.notifyPresence(state, { kind: "unavailable", error: reason });
      },
    );
  }

  /** Follows a JOIN or LEAVE in the channel's presence (held back while a sync is under way). */
  private followPresence(state: ChannelState, event: ChannelEvent): void {
    if (!state.options.onPresence || (event.action !== "JOIN" && event.action !== "LEAVE")) return;
    if (state.presence.pending) {
      state.presence.pending.push(event);
      return;
    }
    const member = applyPresence(state.presence.members, event);
    this.notifyPresence(state, event.action === "JOIN" ? { kind: "join", member } : { kind: "leave", member });
  }

  private notifyPresence(state: ChannelState, change: PresenceChange): void {
    try {
      state.options.onPresence?.({ members: [...state.presence.members.values()], change });
    } catch (error) {
      console.error(`realtime client: the presence handler of ${state.channel} threw`, error);
    }
  }

  private deliver(state: ChannelState, event: ChannelEvent): void {
    this.followPresence(state, event);
    try {
      state.onEvent(event, { self: state.ownIds.has(event.client.id) });
    } catch (error) {
      console.error(`realtime client: the event handler of ${state.channel} threw`, error);
    }
  }

  private endChannel(state: ChannelState, error: RealtimeError | null): void {
    if (this.channels.get(state.channel) !== state) return;
    this.channels.delete(state.channel);
    state.token = null;
    state.unsubscribe?.();
    if (!state.everJoined) state.joined.reject(error ?? new RealtimeError(`The server ended ${state.channel}`, "JOIN_ENDED"));
    else state.options.onEnd?.(error);
  }

  private subscribeCustom(custom: CustomSubscription, connection: Connection): void {
    const token = {};
    custom.token = token;
    custom.unsubscribe = connection.gql.subscribe<unknown>(
      { query: custom.query, variables: custom.variables },
      {
        next: (result) => {
          if (custom.token !== token) return;
          if (result.errors?.length) {
            this.endCustom(custom);
            custom.handlers.error?.(RealtimeError.fromErrors(result.errors));
          } else if (result.data) {
            try {
              custom.handlers.next(result.data);
            } catch (error) {
              console.error("realtime client: a subscription handler threw", error);
            }
          }
        },
        error: (error) => {
          // Anything but GraphQL errors is the connection closing: it subscribes again on the next one.
          if (custom.token !== token || !isGraphQLErrors(error)) return;
          this.endCustom(custom);
          custom.handlers.error?.(RealtimeError.fromErrors(error));
        },
        complete: () => {
          if (custom.token !== token) return;
          this.endCustom(custom);
          custom.handlers.complete?.();
        },
      },
    );
  }

  private endCustom(custom: CustomSubscription): void {
    if (!this.customs.delete(custom)) return;
    custom.token = null;
    custom.unsubscribe?.();
  }

  private connected(): Promise<Client> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.connection?.connected) return Promise.resolve(this.connection.gql);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private shutdown(error: RealtimeError | null): void {
    if (this.closedError) return;
    this.closedError = error ?? new RealtimeError("The client is closed", "CLIENT_CLOSED");
    clearTimeout(this.retryTimer);
    for (const state of [...this.channels.values()]) {
      state.token = null;
      state.unsubscribe?.();
      if (!state.everJoined) state.joined.reject(this.closedError);
      else if (error) state.options.onEnd?.(error);
    }
    this.channels.clear();
    for (const custom of [...this.customs]) {
      this.endCustom(custom);
      if (error) custom.handlers.error?.(error);
    }
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.closedError);
    const connection = this.connection;
    this.connection = null;
    if (connection) void Promise.resolve(connection.gql.dispose()).catch(() => {});
    this.setStatus("closed", error ? { error } : {});
  }

  private setStatus(status: ConnectionStatus, detail: Omit<StatusDetail, "attempt">): void {
    this.currentStatus = status;
    for (const listener of this.statusListeners) {
      try {
        listener(status, { attempt: this.attempt, ...detail });
      } catch (error) {
        console.error("realtime client: a status listener threw", error);
      }
    }
  }
}

interface CustomSubscription {
  readonly query: string;
  readonly variables: Record<string, unknown>;
  readonly handlers: SubscriptionHandlers<unknown>;
  /** Identifies the current subscription; callbacks of older ones are ignored. */
  token: object | null;
  unsubscribe: (() => void) | null;
}

/** Applies a JOIN or LEAVE to a channel's members; returns the member it concerns. */
function applyPresence(members: Map<string, ChannelMember>, event: ChannelEvent): ChannelMember {
  const { id, authenticated, extras } = event.client;
  if (event.action === "LEAVE") {
    const member = members.get(id) ?? { id, authenticated, extras, joinOptions: null };
    members.delete(id);
    return member;
  }
  const member = { id, authenticated, extras, joinOptions: event.commandOptions ?? null };
  members.set(id, member);
  return member;
}

function connectionLost(): RealtimeError {
  return new RealtimeError("The connection was lost before the server answered", "CONNECTION_LOST");
}
