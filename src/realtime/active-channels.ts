import type { ChannelFanout } from "./fanout.js";
import type { Membership } from "./membership.js";
import type { PresenceTracker } from "./presence.js";
import type { RealtimeClient } from "./types.js";

/** A channel with members, as the admin's live view shows it. */
export interface ActiveChannel {
  readonly name: string;
  /** Clients that have joined it on this instance. */
  readonly members: number;
  /** Open subscriptions to it on this instance. */
  readonly subscribers: number;
  /** Members on every instance, where shared presence (Redis) knows them; null on a single instance. */
  readonly clusterMembers: number | null;
}

/** The channels with members on any instance, as shared presence knows them (see RedisPresence). */
export interface ClusterChannels extends PresenceTracker {
  /** Channels with members whose names start with `prefix`, in name order, at most `first`, with their members. */
  channelsWithPrefix(prefix: string, first: number): Promise<{ channel: string; members: RealtimeClient[] }[]>;
}

/** Largest page {@link listActiveChannels} returns. */
export const MAX_ACTIVE_CHANNELS = 500;

/**
 * The channels with members whose names start with `prefix`, in name order, at most `first` (capped
 * at {@link MAX_ACTIVE_CHANNELS}): those of this instance, and with `cluster` those of every
 * instance, each with its member count across the cluster. A channel with members here is listed
 * even when shared presence does not know it yet (its join's write to Redis is pending or failed).
 */
export async function listActiveChannels(
  parts: { membership: Membership; fanout: ChannelFanout; cluster: ClusterChannels | null },
  prefix: string,
  first: number,
): Promise<ActiveChannel[]> {
  const limit = Math.min(first, MAX_ACTIVE_CHANNELS);
  const local = new Map(parts.membership.channelsWithPrefix(prefix, limit).map(({ channel, members }) => [channel, members]));
  const { cluster } = parts;
  if (!cluster) {
    return [...local].map(([name, members]) => ({ name, members, subscribers: parts.fanout.listenerCount(name), clusterMembers: null }));
  }
  const shared = new Map((await cluster.channelsWithPrefix(prefix, limit)).map(({ channel, members }) => [channel, members.length]));
  const names = [...new Set([...local.keys(), ...shared.keys()])].sort().slice(0, limit);
  return Promise.all(
    names.map(async (name) => ({
      name,
      members: local.get(name) ?? 0,
      subscribers: parts.fanout.listenerCount(name),
      clusterMembers: shared.get(name) ?? (await cluster.list(name)).length,
    })),
  );
}
