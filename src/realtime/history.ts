import { exactJson, type Prisma, type PrismaTransaction } from "../db.js";
import type { ChannelEvent } from "./types.js";

/**
 * Rows that must be stored durably with a delivered event before its sender is acknowledged (in this
 * server, the runs of AFTER triggers).
 */
export interface DeliveryFollowUp {
  /** Writes them inside the transaction that stores the event's history entry. */
  write(tx: PrismaTransaction): Promise<void>;
  /** Writes them on their own (events not kept as history), batched with other events' rows. */
  store(): Promise<void>;
}

/** Delivered MESSAGE events kept per channel in the database, for catching up. */
export class ChannelHistory {
  constructor(private readonly prisma: Prisma) {}

  /**
   * Stores a delivered event and trims the channel to its latest `keep` events; with `followUp`,
   * its rows are written in the same transaction.
   */
  async append(event: ChannelEvent & { seq: number }, keep: number, followUp?: DeliveryFollowUp | null): Promise<void> {
    if (followUp) {
      await this.prisma.$transaction(async (tx) => {
        await this.write(tx, event, keep);
        await followUp.write(tx);
      });
    } else {
      await this.write(this.prisma, event, keep);
    }
  }

  private async write(prisma: PrismaTransaction, event: ChannelEvent & { seq: number }, keep: number): Promise<void> {
    await prisma.historyEntry.create({
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
      await prisma.historyEntry.deleteMany({ where: { channel: event.channel, seq: { lte: event.seq - keep } } });
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
