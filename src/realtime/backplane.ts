import type { Logger } from "../logger.js";
import { whenReachable } from "../observability/outages.js";
import { type ChannelBus, createMemoryBus } from "./bus.js";
import type { Membership } from "./membership.js";
import { LocalPresence, type PresenceTracker } from "./presence.js";
import { createRedisBus, isRedisUnreachable, RedisConnection, RedisNotices, RedisPresence, RedisSequence } from "./redis.js";
import { LocalSequence, type SequenceSource } from "./sequence.js";

/**
 * What differs between one instance and several: the event bus, sequence numbers, presence and
 * the notices instances send each other. In memory by default; over Redis with `REDIS_URL`.
 */
export interface Backplane {
  readonly kind: "memory" | "redis";
  readonly bus: ChannelBus;
  /** Resolves once the bus delivers to every listener added so far (Redis confirms its SUBSCRIBEs). */
  readonly listening: () => Promise<void>;
  readonly sequence: SequenceSource;
  readonly presence: PresenceTracker;
  /** Cluster-wide presence, where there is a cluster. */
  readonly clusterPresence: RedisPresence | null;
  /** The other instances, where there is a cluster. */
  readonly notices: RedisNotices | null;
  /** The Redis connection, where there is a cluster (for state kept in Redis). */
  readonly redis: RedisConnection | null;
  /** False while Redis is unreachable. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** Settings of {@link createBackplane}. */
export interface BackplaneOptions {
  /** `redis://...` to share the backplane with other instances; in memory without it. */
  readonly redisUrl?: string;
  readonly redisPrefix: string;
  readonly presenceTtlSeconds: number;
  /** This instance's members: presence on a single instance is exactly them. */
  readonly membership: Membership;
  /** Where a channel's numbering resumes. */
  readonly resumeSequence: (channel: string) => Promise<number>;
  readonly logger: Logger;
}

/**
 * Builds the backplane: in memory, or over Redis once it answers (waiting while it is unreachable).
 * @throws Error naming REDIS_URL when Redis refuses the connection (a bad password, say)
 */
export async function createBackplane(options: BackplaneOptions): Promise<Backplane> {
  if (!options.redisUrl) {
    return {
      kind: "memory",
      bus: createMemoryBus(),
      listening: async () => {},
      sequence: new LocalSequence(options.resumeSequence),
      presence: new LocalPresence(options.membership),
      clusterPresence: null,
      notices: null,
      redis: null,
      healthy: () => true,
      close: async () => {},
    };
  }
  const redis = new RedisConnection(options.redisUrl, options.redisPrefix, options.logger);
  try {
    // Started while Redis is down: wait for it (the connection keeps trying), logged once.
    await whenReachable(
      () => redis.ready(),
      (error) => (isRedisUnreachable(error) ? redis.outage : null),
    );
  } catch (error) {
    await redis.close();
    throw new Error(`Redis refused the connection at REDIS_URL: ${(error as Error).message}`);
  }
  const { bus, listening } = createRedisBus(redis, options.logger);
  const presence = new RedisPresence(redis, options.membership, options.logger, options.presenceTtlSeconds);
  return {
    kind: "redis",
    bus,
    listening,
    sequence: new RedisSequence(redis, options.resumeSequence),
    presence,
    clusterPresence: presence,
    notices: new RedisNotices(redis),
    redis,
    healthy: () => redis.healthy(),
    close: async () => {
      await presence.close();
      await redis.close();
    },
  };
}
