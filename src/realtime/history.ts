import { exactJson, type Prisma, type PrismaTransaction } from "../db.js";
import type { ChannelEvent } from "./types.js";

/**
 * Rows that must be stored durably with a delivered event before its sender is acknowledged (in this
 * server, the runs of AFTER triggers).
 */
export interface DeliveryFollowUp {
  /**
   * The rows as one `INSERT`, to run with the event's history entry, atomically (its parameters
   * numbered from `$<from>` on PostgreSQL; `?` on SQLite).
   */
  insert(from: number): { sql: string; params: unknown[] };
  /** Called once the history write holding {@link DeliveryFollowUp.insert} has committed. */
  stored(): void;
  /** Writes them on their own (events not kept as history), batched with other events' rows. */
  store(): Promise<void>;
}

/** Delivered MESSAGE events kept per channel in the database, for catching up. */
export class ChannelHistory {
  constructor(
    private readonly prisma: Prisma,
    private readonly provider: "sqlite" | "postgresql",
  ) {}

  /**
   * Stores a delivered event and trims the channel to its latest `keep` events; with `followUp`,
   * its rows are written atomically with them.
   */
  async append(event: ChannelEvent & { seq: number }, keep: number, followUp?: DeliveryFollowUp | null): Promise<void> {
    if (this.provider === "postgresql") {
      await this.appendInOneStatement(event, keep, followUp);
    } else if (followUp) {
      await this.prisma.$transaction(async (tx) => {
        await this.write(tx, event, keep);
        const rows = followUp.insert(1);
        await tx.$executeRawUnsafe(rows.sql, ...rows.params);
      });
    } else {
      await this.write(this.prisma, event, keep);
    }
    followUp?.stored();
  }

  /**
   * PostgreSQL: the entry, the trim and the follow-up's rows in one statement (data-modifying `WITH`
   * clauses, atomic as any statement): one round trip, where a transaction took five.
   */
  private async appendInOneStatement(
    event: ChannelEvent & { seq: number },
    keep: number,
    followUp?: DeliveryFollowUp | null,
  ): Promise<void> {
    // The event as JSON text exactly as delivered (`"__proto__"` keys in a payload included); times as Prisma stores them (UTC).
    const params: unknown[] = [event.id, event.channel, event.seq, JSON.stringify(event), new Date(event.createdAt).toISOString()];
    const parts = [
      `entry AS (INSERT INTO "HistoryEntry" ("id", "channel", "seq", "event", "createdAt") VALUES ($1, $2, $3::integer, $4::jsonb, $5::timestamp(3)))`,
    ];
    if (event.seq > keep) {
      params.push(event.seq - keep);
      parts.push(`trimmed AS (DELETE FROM "HistoryEntry" WHERE "channel" = $2 AND "seq" <= $${params.length}::integer)`);
    }
    if (followUp) {
      const rows = followUp.insert(params.length + 1);
      params.push(...rows.params);
      parts.push(`follow_up AS (${rows.sql})`);
    }
    await this.prisma.$queryRawUnsafe(`WITH ${parts.join(", ")} SELECT 1`, ...params);
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
