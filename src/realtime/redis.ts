import { randomUUID } from "node:crypto";
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { Redis } from "ioredis";
import type { Logger } from "../logger.js";
import type { ChannelEventTarget } from "./bus.js";
import type { PresenceTracker } from "./presence.js";
import type { SequenceSource } from "./sequence.js";
import type { RealtimeClient } from "./types.js";

/**
 * The Redis connections of one server instance: one for commands and publishing, one in subscriber
 * mode. ioredis reconnects by itself; {@link RedisConnection.healthy} tells /health whether both are up.
 */
export class RedisConnection {
  readonly commands: Redis;
  readonly subscriber: Redis;
  /** Identifies this instance (its presence entries, its heartbeat). */
  readonly instanceId = randomUUID();

  constructor(
    url: string,
    /** Prepended to every key and pub/sub channel, so several deployments or test runs share a Redis. */
    readonly prefix: string,
    private readonly logger: Logger,
  ) {
    const options = {
      connectionName: `realtime:${this.instanceId}`,
      maxRetriesPerRequest: 2,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
    // Commands issued in one turn of the event loop (a message's sequence number, presence, publish,
    // for every message in flight) leave in one write; the subscriber connection only subscribes.
    this.commands = new Redis(url, { ...options, enableAutoPipelining: true });
    this.subscriber = new Redis(url, options);
    for (const [role, client] of [
      ["commands", this.commands],
      ["subscriber", this.subscriber],
    ] as const) {
      client.on("error", (error: Error) => this.logger.warn({ role, err: { message: error.message } }, "redis connection error"));
      client.on("reconnecting", () => this.logger.warn({ role }, "redis reconnecting"));
    }
  }

  /** Resolves once both connections are ready (or rejects if Redis cannot be reached). */
  async ready(): Promise<void> {
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

/**
 * The event bus over Redis pub/sub (graphql-yoga's Redis event target), with this deployment's
 * prefix on every topic. `listening()` resolves once Redis has processed every SUBSCRIBE sent so far.
 */
export function createRedisBus(redis: RedisConnection): { target: ChannelEventTarget; listening: () => Promise<void> } {
  const inner = createRedisEventTarget<CustomEvent>({ publishClient: redis.commands, subscribeClient: redis.subscriber });
  const prefixed = (type: string) => `${redis.prefix}${type}`;
  const target: ChannelEventTarget = {
    addEventListener: (type, listener) => inner.addEventListener(prefixed(type), listener as never),
    removeEventListener: (type, listener) => inner.removeEventListener(prefixed(type), listener as never),
    dispatchEvent: (event) => inner.dispatchEvent(new CustomEvent(prefixed(event.type), { detail: event.detail })),
  };
  // Commands on one connection run in order: a PING answered after a SUBSCRIBE means it is active.
  return { target, listening: async () => void (await redis.subscriber.ping()) };
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

/**
 * Presence shared by every instance: a Redis hash per channel of `instance/client` entries. Each
 * instance keeps a heartbeat key alive; entries of an instance whose heartbeat expired (it died)
 * are ignored and removed when read, so they never stay forever.
 */
export class RedisPresence implements PresenceTracker {
  private readonly timer: NodeJS.Timeout;

  /** @param ttlSeconds - how long this instance's entries outlive its last heartbeat (sent every third of it) */
  constructor(
    private readonly redis: RedisConnection,
    private readonly logger: Logger,
    private readonly ttlSeconds: number,
  ) {
    void this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat(), (ttlSeconds * 1000) / 3);
    this.timer.unref();
  }

  joined(channel: string, client: RealtimeClient): void {
    this.write(this.redis.commands.hset(this.key(channel), this.field(client.id), JSON.stringify(client)));
  }

  left(channel: string, clientId: string): void {
    this.write(this.redis.commands.hdel(this.key(channel), this.field(clientId)));
  }

  async list(channel: string): Promise<RealtimeClient[]> {
    const entries = Object.entries(await this.redis.commands.hgetall(this.key(channel)));
    const instances = [...new Set(entries.map(([field]) => field.slice(0, field.indexOf("/"))))];
    const alive = new Set(
      instances.length === 0
        ? []
        : (await this.redis.commands.mget(instances.map((id) => this.instanceKey(id)))).flatMap((value, i) =>
            value ? [instances[i]!] : [],
          ),
    );
    const byClient = new Map<string, RealtimeClient>();
    const dead: string[] = [];
    for (const [field, value] of entries) {
      if (!alive.has(field.slice(0, field.indexOf("/")))) dead.push(field);
      else {
        const client = JSON.parse(value) as RealtimeClient;
        byClient.set(client.id, client);
      }
    }
    if (dead.length > 0) this.write(this.redis.commands.hdel(this.key(channel), ...dead));
    return [...byClient.values()];
  }

  /** Stops the heartbeat and removes this instance's liveness, so its entries stop counting at once. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.commands.del(this.instanceKey(this.redis.instanceId)).catch(() => undefined);
  }

  private async heartbeat(): Promise<void> {
    await this.redis.commands.set(this.instanceKey(this.redis.instanceId), "1", "EX", this.ttlSeconds).catch(() => undefined);
  }

  private key(channel: string): string {
    return `${this.redis.prefix}presence:${channel}`;
  }

  private field(clientId: string): string {
    return `${this.redis.instanceId}/${clientId}`;
  }

  private instanceKey(instanceId: string): string {
    return `${this.redis.prefix}instance:${instanceId}`;
  }

  private write(command: Promise<unknown>): void {
    command.catch((error: Error) => this.logger.warn({ err: { message: error.message } }, "could not update presence in redis"));
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
