import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "../logger.js";
import { OutageLog } from "../observability/outages.js";
import type { BusListener, ChannelBus } from "./bus.js";
import type { Membership } from "./membership.js";
import type { PresenceTracker } from "./presence.js";
import type { SequenceSource } from "./sequence.js";
import type { ChannelEvent, PresenceMember } from "./types.js";

/**
 * The Redis connections of one server instance: one for commands and publishing, one in subscriber
 * mode. ioredis reconnects by itself; {@link RedisConnection.healthy} tells /health whether both are up.
 */
export class RedisConnection {
  readonly commands: Redis;
  readonly subscriber: Redis;
  /** Identifies this instance (its presence entries, its heartbeat). */
  readonly instanceId = randomUUID();
  /** Logs when Redis goes away and when it is back; commands that failed meanwhile count toward it. */
  readonly outage: OutageLog;

  constructor(
    url: string,
    /** Prepended to every key and pub/sub channel, so several deployments or test runs share a Redis. */
    readonly prefix: string,
    logger: Logger,
  ) {
    const options = {
      connectionName: `realtime:${this.instanceId}`,
      maxRetriesPerRequest: 2,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
    // Commands issued in one turn of the event loop (a message's sequence number, presence, publish,
    // for every message in flight) leave in one write; the subscriber connection only subscribes.
    // While Redis is away a command fails at once (SERVICE_UNAVAILABLE for its client) instead of
    // waiting through reconnect attempts past the trigger and request time limits.
    this.commands = new Redis(url, { ...options, enableAutoPipelining: true, enableOfflineQueue: false });
    this.subscriber = new Redis(url, options);
    // One warning when Redis goes away and one line when both connections are back, not one per attempt.
    this.outage = new OutageLog("redis", logger);
    for (const client of [this.commands, this.subscriber]) {
      client.on("error", (error: Error) => this.outage.failed(error.message));
      client.on("ready", () => {
        if (this.healthy()) this.outage.recovered();
      });
    }
  }

  /** Resolves once both connections are ready (or rejects if Redis cannot be reached). */
  async ready(): Promise<void> {
    await Promise.all([this.commands, this.subscriber].map((client) => connected(client, READY_WAIT_MS)));
    await Promise.all([this.commands.ping(), this.subscriber.ping()]);
  }

  /** True when both connections are ready. */
  healthy(): boolean {
    return this.commands.status === "ready" && this.subscriber.status === "ready";
  }

  /** Calls `listener` each time the subscriber connection is ready again after a disconnect. */
  onReconnect(listener: () => void): void {
    let connectedOnce = false;
    this.subscriber.on("ready", () => {
      if (connectedOnce) listener();
      connectedOnce = true;
    });
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    await Promise.allSettled([this.commands.quit(), this.subscriber.quit()]);
    this.commands.disconnect();
    this.subscriber.disconnect();
  }
}

/** How long {@link RedisConnection.ready} waits for a connection before it reports Redis unreachable. */
const READY_WAIT_MS = 2000;

/** Redis did not accept a connection in time (see {@link RedisConnection.ready}). */
class RedisNotConnected extends Error {
  override readonly name = "RedisNotConnected";
}

/** Resolves once `client` is connected and ready, or fails with {@link RedisNotConnected} after `ms`. */
function connected(client: Redis, ms: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new RedisNotConnected(`no connection to Redis within ${ms} ms`));
    }, ms);
    client.once("ready", onReady);
  });
}

/**
 * True when an error means Redis could not be reached (ioredis gave up on a command while
 * disconnected, or the connection closed under it): worth retrying, not a bug.
 */
export function isRedisUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === "MaxRetriesPerRequestError" ||
    error instanceof RedisNotConnected ||
    error.message === "Connection is closed." ||
    error.message.startsWith("Stream isn't writeable")
  );
}

/**
 * The event bus over Redis pub/sub: one topic per channel, `<prefix>channel:<name>`, carrying each
 * event as JSON (the names and format graphql-yoga's Redis event target used, so instances of
 * earlier versions share the channels). Nothing it sends to Redis can fail unobserved: a publish
 * returns its outcome, and a SUBSCRIBE that failed while Redis was unreachable is sent again once
 * the connection is ready. `listening()` resolves once Redis has processed every SUBSCRIBE sent so far.
 */
export function createRedisBus(redis: RedisConnection, logger: Logger): { bus: ChannelBus; listening: () => Promise<void> } {
  const listeners = new Map<string, Set<BusListener>>();
  /** Topics with listeners whose SUBSCRIBE failed: subscribed again when the connection is ready. */
  const unsubscribed = new Set<string>();
  const topic = (channel: string) => `${redis.prefix}channel:${channel}`;
  const subscribeTopic = (name: string) => {
    redis.subscriber.subscribe(name).catch(() => {
      if (listeners.has(name)) unsubscribed.add(name);
    });
  };
  redis.subscriber.on("ready", () => {
    for (const name of unsubscribed) {
      unsubscribed.delete(name);
      if (listeners.has(name)) subscribeTopic(name);
    }
  });
  redis.subscriber.on("message", (name: string, message: string) => {
    const reached = listeners.get(name);
    if (!reached) return;
    const event = (message === "" ? null : JSON.parse(message)) as ChannelEvent;
    for (const listener of reached) listener(event);
  });
  const bus: ChannelBus = {
    publish(channel, event) {
      const sent = redis.commands.publish(topic(channel), JSON.stringify(event)).then(() => undefined);
      sent.catch((error: Error) => logger.debug({ channel, err: { message: error.message } }, "could not publish an event to redis"));
      return sent;
    },
    subscribe(channel, listener) {
      const name = topic(channel);
      let set = listeners.get(name);
      if (!set) {
        set = new Set();
        listeners.set(name, set);
        subscribeTopic(name);
      }
      set.add(listener);
      return () => {
        if (!set.delete(listener) || set.size > 0 || listeners.get(name) !== set) return;
        listeners.delete(name);
        unsubscribed.delete(name);
        redis.subscriber.unsubscribe(name).catch(() => undefined); // a topic left subscribed only costs ignored messages
      };
    },
  };
  // Commands on one connection run in order: a PING answered after a SUBSCRIBE means it is active.
  return { bus, listening: async () => void (await redis.subscriber.ping()) };
}

/** How long a channel's sequence counter outlives its last message in Redis: 30 days. */
export const SEQUENCE_TTL_SECONDS = 30 * 24 * 3600;

/** INCR of an existing counter, with its expiry renewed; nil (null) when the counter does not exist. */
const NEXT_SEQUENCE = `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local next = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return next`;

/** The connection's command running {@link NEXT_SEQUENCE} (ioredis sends it by hash, loading it once). */
interface SequenceCommands {
  nextSequence(key: string, ttlSeconds: number): Promise<number | null>;
}

/**
 * Sequence numbers shared by every instance: a Redis counter per channel, one round trip per
 * message, starting where the channel's history ends when the counter does not exist yet. A counter
 * expires {@link SEQUENCE_TTL_SECONDS} after the channel's last message, so channels no longer used
 * do not stay in Redis forever; a channel used again after that resumes from its history (from 0
 * when it keeps none).
 */
export class RedisSequence implements SequenceSource {
  private readonly commands: SequenceCommands;

  constructor(
    private readonly redis: RedisConnection,
    private readonly initial: (channel: string) => Promise<number>,
    private readonly ttlSeconds: number = SEQUENCE_TTL_SECONDS,
  ) {
    redis.commands.defineCommand("nextSequence", { numberOfKeys: 1, lua: NEXT_SEQUENCE });
    this.commands = redis.commands as unknown as SequenceCommands;
  }

  async next(channel: string): Promise<number> {
    const key = `${this.redis.prefix}seq:${channel}`;
    for (;;) {
      const next = await this.commands.nextSequence(key, this.ttlSeconds);
      if (next !== null) return next;
      await this.redis.commands.set(key, await this.initial(channel), "EX", this.ttlSeconds, "NX");
    }
  }
}

/** Removes a channel (ARGV[1]) from the index (KEYS[2]) when its presence hash (KEYS[1]) has no entries. */
const UNINDEX_IF_EMPTY = `if redis.call("HLEN", KEYS[1]) == 0 then return redis.call("ZREM", KEYS[2], ARGV[1]) end return 0`;

interface PresenceIndexCommands {
  unindexIfEmpty(presenceKey: string, indexKey: string, channel: string): Promise<number>;
}

/**
 * Presence shared by every instance: a Redis hash per channel of `instance/client` entries. Each
 * instance keeps a heartbeat key alive; entries of an instance whose heartbeat expired (it died)
 * are ignored and removed when read, so they never stay forever.
 *
 * This instance's membership is the truth its entries follow: a join or leave whose write failed
 * (Redis unreachable) is written again from the membership at the next heartbeat, and when the
 * heartbeat finds its key gone (the instance was paused, or cut off from Redis, past the TTL, and
 * readers removed its entries) every entry is written again. So presence converges within one
 * heartbeat once Redis is reachable.
 *
 * A sorted set of channel names (all of score 0, so in name order) indexes the channels that have a
 * presence hash, for the admin's list of active channels across the cluster: a join adds its channel
 * after writing its entry, and a channel leaves the index only when its hash is found empty (by the
 * last leave, or by a listing that finds only entries of dead instances), in one script, so a
 * channel with members is never missing from it for longer than a join takes.
 */
export class RedisPresence implements PresenceTracker {
  private readonly timer: NodeJS.Timeout;
  private readonly indexCommands: PresenceIndexCommands;
  /** Members whose entry may not match the membership: a write for them failed. */
  private readonly unsynced = new Map<string, { channel: string; clientId: string }>();

  /** @param ttlSeconds - how long this instance's entries outlive its last heartbeat (sent every third of it) */
  constructor(
    private readonly redis: RedisConnection,
    private readonly membership: Membership,
    private readonly logger: Logger,
    private readonly ttlSeconds: number,
  ) {
    redis.commands.defineCommand("unindexIfEmpty", { numberOfKeys: 2, lua: UNINDEX_IF_EMPTY });
    this.indexCommands = redis.commands as unknown as PresenceIndexCommands;
    void this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat(), (ttlSeconds * 1000) / 3);
    this.timer.unref();
  }

  joined(channel: string, client: PresenceMember): void {
    const entry = this.redis.commands.hset(this.key(channel), this.field(client.id), JSON.stringify(client));
    // After the entry (commands on one connection run in order): an index entry is removed only with no entries left.
    const indexed = this.redis.commands.zadd(this.indexKey(), 0, channel);
    this.write(channel, client.id, Promise.all([entry, indexed]));
  }

  left(channel: string, clientId: string): void {
    const entry = this.redis.commands.hdel(this.key(channel), this.field(clientId));
    // The last member out takes the channel out of the index (after the entry: commands run in order).
    const unindexed = this.indexCommands.unindexIfEmpty(this.key(channel), this.indexKey(), channel);
    this.write(channel, clientId, Promise.all([entry, unindexed]));
  }

  async list(channel: string): Promise<PresenceMember[]> {
    const entries = Object.entries(await this.redis.commands.hgetall(this.key(channel)));
    const instances = [...new Set(entries.map(([field]) => field.slice(0, field.indexOf("/"))))];
    const alive = new Set(
      instances.length === 0
        ? []
        : (await this.redis.commands.mget(instances.map((id) => this.instanceKey(id)))).flatMap((value, i) =>
            value ? [instances[i]!] : [],
          ),
    );
    const byClient = new Map<string, PresenceMember>();
    const dead: string[] = [];
    for (const [field, value] of entries) {
      if (!alive.has(field.slice(0, field.indexOf("/")))) dead.push(field);
      else {
        const client = JSON.parse(value) as PresenceMember;
        byClient.set(client.id, client);
      }
    }
    if (dead.length > 0) void this.redis.commands.hdel(this.key(channel), ...dead).catch(() => undefined);
    return [...byClient.values()];
  }

  /**
   * The channels with members on any live instance whose names start with `prefix`, in name order,
   * at most `first`, each with its members. Channels found empty leave the index on the way.
   */
  async channelsWithPrefix(prefix: string, first: number): Promise<{ channel: string; members: PresenceMember[] }[]> {
    const found: { channel: string; members: PresenceMember[] }[] = [];
    // `[` makes a bound inclusive; every name that starts with the prefix sorts below prefix + U+FFFF.
    let from = `[${prefix}`;
    const to = `[${prefix}\uffff`;
    while (found.length < first) {
      const names = await this.redis.commands.zrangebylex(this.indexKey(), from, to, "LIMIT", 0, first);
      const pages = await Promise.all(names.map(async (channel) => ({ channel, members: await this.list(channel) })));
      for (const page of pages) {
        if (page.members.length > 0) found.push(page);
        else void this.indexCommands.unindexIfEmpty(this.key(page.channel), this.indexKey(), page.channel).catch(() => undefined);
      }
      if (names.length < first) break;
      from = `(${names.at(-1)}`;
    }
    return found.slice(0, first);
  }

  /** Stops the heartbeat and removes this instance's liveness, so its entries stop counting at once. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.commands.del(this.instanceKey(this.redis.instanceId)).catch(() => undefined);
  }

  /** Renews this instance's liveness, and writes again what Redis may have lost or missed. */
  private async heartbeat(): Promise<void> {
    let previous: string | null;
    try {
      previous = await this.redis.commands.set(this.instanceKey(this.redis.instanceId), "1", "EX", this.ttlSeconds, "GET");
    } catch {
      return; // Redis is unreachable: the next heartbeat tries again
    }
    if (previous === null) {
      // Gone (or the first heartbeat): readers may have removed every entry of this instance.
      for (const { channel, clients } of this.membership.all()) {
        for (const client of clients) this.unsynced.set(`${channel}\n${client.id}`, { channel, clientId: client.id });
      }
    }
    for (const [key, { channel, clientId }] of this.unsynced) {
      this.unsynced.delete(key);
      const client = this.membership.member(channel, clientId);
      if (client) this.joined(channel, client);
      else this.left(channel, clientId);
    }
  }

  private key(channel: string): string {
    return `${this.redis.prefix}presence:${channel}`;
  }

  /** The index of channels with presence entries (no channel's key: those all start with `presence:`). */
  private indexKey(): string {
    return `${this.redis.prefix}presence-index`;
  }

  private field(clientId: string): string {
    return `${this.redis.instanceId}/${clientId}`;
  }

  private instanceKey(instanceId: string): string {
    return `${this.redis.prefix}instance:${instanceId}`;
  }

  /** A write that failed leaves its member to the next heartbeat (logged at debug: the outage itself is logged once). */
  private write(channel: string, clientId: string, command: Promise<unknown>): void {
    command.catch((error: Error) => {
      this.unsynced.set(`${channel}\n${clientId}`, { channel, clientId });
      this.logger.debug({ err: { message: error.message } }, "could not update presence in redis; written again at the next heartbeat");
    });
  }
}

/**
 * What one instance tells the others: a configuration change to apply (their caches follow at once),
 * or a client's leave of a channel, for the instances where it joined.
 */
export type ClusterNotice =
  | { readonly kind: "trigger"; readonly id: string }
  | { readonly kind: "channel" }
  | { readonly kind: "leave"; readonly channel: string; readonly clientId: string; readonly announce: boolean };

/**
 * Carries {@link ClusterNotice}s between instances over a Redis pub/sub channel. Notices missed while
 * disconnected are not replayed: after a reconnect, the caller reloads its configuration.
 */
export class RedisNotices {
  private readonly channel: string;

  constructor(private readonly redis: RedisConnection) {
    this.channel = `${redis.prefix}notices`;
  }

  /** Starts listening; `apply` is called for each notice from another instance, `reloadAll` after every reconnect. */
  async listen(apply: (notice: ClusterNotice) => void, reloadAll: () => void): Promise<void> {
    this.redis.subscriber.on("message", (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const parsed = JSON.parse(message) as ClusterNotice & { from: string };
      if (parsed.from !== this.redis.instanceId) apply(parsed);
    });
    this.redis.onReconnect(reloadAll);
    await this.redis.subscriber.subscribe(this.channel);
  }

  /** Tells every other instance. */
  publish(notice: ClusterNotice): void {
    void this.redis.commands.publish(this.channel, JSON.stringify({ ...notice, from: this.redis.instanceId })).catch(() => undefined);
  }
}
