import { createLogger } from "../../src/logger.js";
import { createMemoryBus } from "../../src/realtime/bus.js";
import type { ChannelRules } from "../../src/realtime/channel-config.js";
import { type ChannelLimits, ChannelService, type ChannelServiceDeps } from "../../src/realtime/channels.js";
import { ChannelFanout } from "../../src/realtime/fanout.js";
import { Membership } from "../../src/realtime/membership.js";
import { LocalPresence } from "../../src/realtime/presence.js";
import { type EventMiddleware, type HistoryWriter, Publisher } from "../../src/realtime/publisher.js";
import { ChannelSequencer, LocalSequence, resumeFromHistory } from "../../src/realtime/sequence.js";
import type { ChannelEvent, RealtimeClient, Session } from "../../src/realtime/types.js";

/** Rules every channel gets unless a test changes them. */
export const OPEN_RULES: ChannelRules = {
  active: true,
  anonymousClients: true,
  messaging: "ANYONE",
  presence: true,
  history: 100,
  membersOnly: false,
};

/** Limits high enough that only the one a test lowers matters. */
export const LOOSE_LIMITS: ChannelLimits = {
  maxPayloadBytes: 64 * 1024,
  maxSubscriptionsPerSocket: 1000,
  maxChannelsPerClient: 1000,
  messagesPerSecond: 1e6,
  joinsPerSecond: 1e6,
  addressMessagesPerSecond: 1e6,
  addressJoinsPerSecond: 1e6,
  maxQueuedEvents: 1000,
};

/** History kept in memory: the narrow interfaces the core reads and writes it through. */
export class MemoryHistory implements HistoryWriter {
  readonly byChannel = new Map<string, ChannelEvent[]>();

  async append(event: ChannelEvent & { seq: number }, keep: number): Promise<void> {
    const events = this.byChannel.get(event.channel) ?? [];
    events.push(event);
    this.byChannel.set(event.channel, events.slice(-keep));
  }

  async latest(channel: string, last: number): Promise<ChannelEvent[]> {
    return last <= 0 ? [] : (this.byChannel.get(channel) ?? []).slice(-last);
  }

  async lastSeq(channel: string): Promise<number> {
    return this.byChannel.get(channel)?.at(-1)?.seq ?? 0;
  }
}

/** The realtime core of one instance, in-process, on the in-memory bus. */
export interface Core {
  readonly channels: ChannelService;
  /** Rules per channel name; absent names get {@link OPEN_RULES}. Call `channels.enforceRules()` after a change. */
  readonly rules: Map<string, ChannelRules>;
  readonly history: MemoryHistory;
  readonly publisher: Publisher;
  /** Every event published on any channel, in order, as the bus carried it. */
  readonly published: ChannelEvent[];
  readonly fanout: ChannelFanout;
  readonly membership: Membership;
}

/**
 * Builds the core with real parts (bus, fan-out, membership, publisher) and in-memory history;
 * `deps` replaces parts of the service's (a cluster, an observer, a logger, presence).
 */
export function createCore(
  limits: Partial<ChannelLimits> = {},
  middleware: EventMiddleware[] = [],
  deps: (membership: Membership) => Partial<ChannelServiceDeps> = () => ({}),
): Core {
  const rules = new Map<string, ChannelRules>();
  const rulesFor = (name: string) => rules.get(name) ?? OPEN_RULES;
  const history = new MemoryHistory();
  const bus = createMemoryBus();
  const published: ChannelEvent[] = [];
  const policy = { historyKept: (channel: string) => rulesFor(channel).history };
  const record: EventMiddleware = async (event) => {
    published.push(event);
    return { deliver: true, event };
  };
  const publisher = new Publisher({
    bus,
    sequencer: new ChannelSequencer(new LocalSequence(resumeFromHistory(policy, history))),
    history,
    policy,
    middleware: [record, ...middleware],
  });
  const membership = new Membership();
  const fanout = new ChannelFanout(bus, createLogger("silent"));
  const channels = new ChannelService({
    publisher,
    fanout,
    membership,
    rules: { rulesFor },
    history,
    presence: new LocalPresence(membership),
    listening: async () => {},
    limits: { ...LOOSE_LIMITS, ...limits },
    logger: createLogger("silent"),
    ...deps(membership),
  });
  return { channels, rules, history, publisher, published, fanout, membership };
}

let clients = 0;

/** A client; anonymous unless `authenticated`. */
export function client(authenticated = false): RealtimeClient {
  clients += 1;
  return { id: `client-${clients}`, authenticated, extras: null };
}

/** A WebSocket-like session: one client for the life of a connection. */
export function socketSession(who: RealtimeClient = client(), extra: Partial<Session> = {}): Session {
  return {
    client: who,
    isAdmin: false,
    address: "127.0.0.1",
    socket: { joins: [], subscriptions: 0, closed: false, drop: () => {} },
    ...extra,
  };
}

/** An HTTP-like session: no socket. */
export function requestSession(who: RealtimeClient = client(), extra: Partial<Session> = {}): Session {
  return { client: who, isAdmin: false, address: "127.0.0.1", ...extra };
}

/** A subscription sink that records what it receives. */
export function recorder(): {
  events: ChannelEvent[];
  ended: { error?: unknown }[];
  event(e: ChannelEvent): void;
  end(error?: unknown): void;
} {
  const events: ChannelEvent[] = [];
  const ended: { error?: unknown }[] = [];
  return { events, ended, event: (e) => events.push(e), end: (error) => ended.push({ error }) };
}

/** Resolves after every event published so far has been delivered (the in-memory bus is asynchronous). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
