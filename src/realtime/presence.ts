import type { Membership } from "./membership.js";
import type { PresenceMember } from "./types.js";

/** Who is on a channel, as presence reports it. */
export interface PresenceTracker {
  /** A client joined a channel on this instance (for the first time, or again with new join options). */
  joined(channel: string, client: PresenceMember): void;
  /** A client stopped being a member of a channel on this instance. */
  left(channel: string, clientId: string): void;
  /** The members of a channel, one entry per client. */
  list(channel: string): Promise<PresenceMember[]>;
}

/** Presence for a single instance: its own membership. */
export class LocalPresence implements PresenceTracker {
  constructor(private readonly membership: Membership) {}

  joined(): void {}

  left(): void {}

  async list(channel: string): Promise<PresenceMember[]> {
    return this.membership.members(channel);
  }
}
