/** What can happen on a channel: the one list that actions, trigger actions and their GraphQL enums derive from. */
export const REALTIME_ACTIONS = ["MESSAGE", "JOIN", "LEAVE"] as const;

/** What happened on a channel. */
export type RealtimeAction = (typeof REALTIME_ACTIONS)[number];

/** The command name that caused an event, as Xano names it ("message" | "join" | "leave"). */
export type RealtimeCommand = Lowercase<RealtimeAction>;

/** The lower-case command for each action. */
export const commandOf: Record<RealtimeAction, RealtimeCommand> = {
  MESSAGE: "message",
  JOIN: "join",
  LEAVE: "leave",
};

/** JSON object of extra facts about a client (for authenticated clients, the token's own claims). */
export type ClientExtras = Record<string, unknown>;

/**
 * A connected party. A WebSocket connection is one client for its lifetime; an HTTP request without
 * credentials is a client of its own.
 */
export interface RealtimeClient {
  readonly id: string;
  readonly authenticated: boolean;
  readonly extras: ClientExtras | null;
}

/**
 * A client as presence lists it: with the options of its JOIN on the channel as they were delivered
 * (after triggers; its latest JOIN when it joined more than once), as other members saw them.
 */
export interface PresenceMember extends RealtimeClient {
  readonly joinOptions?: unknown;
}

/** One event on a channel, as delivered to subscribers. Plain JSON: no Dates, no class instances. */
export interface ChannelEvent {
  readonly id: string;
  readonly action: RealtimeAction;
  readonly command: RealtimeCommand;
  readonly channel: string;
  readonly payload: unknown;
  readonly commandOptions: unknown;
  readonly client: RealtimeClient;
  /** ISO 8601 time the event was created; events stay JSON-safe so any event bus can carry them. */
  readonly createdAt: string;
  /**
   * The channel's sequence number for public MESSAGE events (null for joins, leaves and private
   * messages). It grows by one per message, so a jump tells a client it missed messages, which it
   * can recover from the channel's history.
   */
  readonly seq: number | null;
}

/**
 * Who is calling, and over what. A WebSocket session lives as long as its connection; an HTTP
 * session lives for one request (or one SSE stream).
 */
export interface Session {
  readonly client: RealtimeClient;
  /** True when the caller presented the admin token. */
  readonly isAdmin: boolean;
  /**
   * The caller's network address (`X-Forwarded-For` is believed only through `TRUST_PROXY` hops),
   * for the limits that apply per address. IPv6 callers are grouped by their /64 network.
   */
  readonly address: string;
  /** When the client's token stops being valid, in ms since the epoch; absent when it never does. */
  readonly expiresAt?: number;
  /** State of the WebSocket connection the session lives on. Absent over HTTP. */
  readonly socket?: SocketState;
}

/** What the server tracks per WebSocket connection. */
export interface SocketState {
  /** Channels joined with `joinChannel`, undone when the connection closes. */
  readonly joins: string[];
  /** Channel subscriptions open or being opened (a slot is taken before the first await). */
  subscriptions: number;
  /** Set once the connection has closed: nothing may join through it any more. */
  closed: boolean;
  /** Ends the connection; called when it falls too far behind on its subscriptions. */
  drop(reason: string): void;
}
