import { exactJson, type Prisma } from "../db.js";
import type { ChannelEvent } from "./types.js";

/** Delivered MESSAGE events kept per channel in the database, for catching up. */
export class ChannelHistory {
  constructor(private readonly prisma: Prisma) {}

  /** Stores a delivered event and trims the channel to its latest `keep` events. */
  async append(event: ChannelEvent & { seq: number }, keep: number): Promise<void> {
    await this.prisma.historyEntry.create({
      // exactJson: the event as delivered, `"__proto__"` keys in a payload included.
      data: {
        id: event.id,
        channel: event.channel,
        seq: event.seq,
        event: exactJson(event) as object,
        createdAt: new Date(event.createdAt),
      },
    });
    if (event.seq > keep) {
      await this.prisma.historyEntry.deleteMany({ where: { channel: event.channel, seq: { lte: event.seq - keep } } });
    }
  }

  /** The latest `last` events of a channel, oldest first. */
  async latest(channel: string, last: number): Promise<ChannelEvent[]> {
    if (last <= 0) return [];
    const rows = await this.prisma.historyEntry.findMany({ where: { channel }, orderBy: { seq: "desc" }, take: last });
    return rows.reverse().map((row) => row.event as unknown as ChannelEvent);
  }

  /** The highest sequence number stored for a channel (0 when none). */
  async lastSeq(channel: string): Promise<number> {
    const row = await this.prisma.historyEntry.findFirst({ where: { channel }, orderBy: { seq: "desc" }, select: { seq: true } });
    return row?.seq ?? 0;
  }
}
