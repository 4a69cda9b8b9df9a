import type { PresenceMember } from "./types.js";

interface Member {
  client: PresenceMember;
  /** Joins not yet left: a client may hold several subscriptions on one channel. */
  joins: number;
}

/**
 * Who has joined which channel on this server instance. A client stays a member until it has left
 * as many times as it joined (each subscription joins once and leaves when it ends).
 */
export class Membership {
  private readonly byChannel = new Map<string, Map<string, Member>>();
  private readonly byClient = new Map<string, Set<string>>();

  /** Records a join. Returns true when the client was not yet a member. */
  add(channel: string, client: PresenceMember): boolean {
    let members = this.byChannel.get(channel);
    if (!members) this.byChannel.set(channel, (members = new Map()));
    const member = members.get(client.id);
    if (member) {
      member.joins += 1;
      member.client = client;
      return false;
    }
    members.set(client.id, { client, joins: 1 });
    let channels = this.byClient.get(client.id);
    if (!channels) this.byClient.set(client.id, (channels = new Set()));
    channels.add(channel);
    return true;
  }

  /**
   * Records a leave. With `all`, every join of the client on the channel is undone at once.
   * Returns true when the client is no longer a member.
   */
  remove(channel: string, clientId: string, all = false): boolean {
    const members = this.byChannel.get(channel);
    const member = members?.get(clientId);
    if (!members || !member) return false;
    member.joins = all ? 0 : member.joins - 1;
    if (member.joins > 0) return false;
    members.delete(clientId);
    if (members.size === 0) this.byChannel.delete(channel);
    const channels = this.byClient.get(clientId);
    channels?.delete(channel);
    if (channels?.size === 0) this.byClient.delete(clientId);
    return true;
  }

  /** The client, when it is a member of the channel. */
  member(channel: string, clientId: string): PresenceMember | undefined {
    return this.byChannel.get(channel)?.get(clientId)?.client;
  }

  /** True when the client is a member of the channel. */
  has(channel: string, clientId: string): boolean {
    return this.byChannel.get(channel)?.has(clientId) ?? false;
  }

  /** The members of a channel, in join order. */
  members(channel: string): PresenceMember[] {
    return [...(this.byChannel.get(channel)?.values() ?? [])].map((member) => member.client);
  }

  /** Every channel with members, with its members. */
  *all(): Generator<{ channel: string; clients: PresenceMember[] }> {
    for (const channel of this.byChannel.keys()) yield { channel, clients: this.members(channel) };
  }

  /** How many channels have members, and how many memberships there are in all. */
  counts(): { channels: number; memberships: number } {
    let memberships = 0;
    for (const members of this.byChannel.values()) memberships += members.size;
    return { channels: this.byChannel.size, memberships };
  }

  /**
   * Channels with members whose names start with `prefix`, in name order, at most `first` of them,
   * each with its member count.
   */
  channelsWithPrefix(prefix: string, first: number): { channel: string; members: number }[] {
    const names: string[] = [];
    for (const channel of this.byChannel.keys()) if (channel.startsWith(prefix)) names.push(channel);
    names.sort();
    return names.slice(0, first).map((channel) => ({ channel, members: this.byChannel.get(channel)!.size }));
  }

  /** How many channels a client is a member of. */
  channelCount(clientId: string): number {
    return this.byClient.get(clientId)?.size ?? 0;
  }
}
