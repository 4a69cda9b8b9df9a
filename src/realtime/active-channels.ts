import type { ChannelFanout } from "./fanout.js";
import type { Membership } from "./membership.js";
import type { PresenceTracker } from "./presence.js";

/** A channel with members on this instance, as the admin's live view shows it. */
export interface ActiveChannel {
  readonly name: string;
  /** Clients that have joined it on this instance. */
  readonly members: number;
  /** Open subscriptions to it on this instance. */
  readonly subscribers: number;
  /** Members on every instance, where shared presence (Redis) knows them; null on a single instance. */
  readonly clusterMembers: number | null;
}

/** Largest page {@link listActiveChannels} returns. */
export const MAX_ACTIVE_CHANNELS = 500;

/**
 * The channels with members on this instance whose names start with `prefix`, in name order, at most
 * `first` (capped at {@link MAX_ACTIVE_CHANNELS}). With `clusterPresence`, each also carries the
 * member count across the cluster (one presence read per channel listed).
 */
export async function listActiveChannels(
  parts: { membership: Membership; fanout: ChannelFanout; clusterPresence: PresenceTracker | null },
  prefix: string,
  first: number,
): Promise<ActiveChannel[]> {
  const page = parts.membership.channelsWithPrefix(prefix, Math.min(first, MAX_ACTIVE_CHANNELS));
  return Promise.all(
    page.map(async ({ channel, members }) => ({
      name: channel,
      members,
      subscribers: parts.fanout.listenerCount(channel),
      clusterMembers: parts.clusterPresence ? (await parts.clusterPresence.list(channel)).length : null,
    })),
  );
}
