import { type Prisma, storedTime, writeWithKnownOutcome } from "../db.js";
import type { ChannelEvent } from "./types.js";

/**
 * Rows that must be stored durably for an event before it is delivered (in this server, the runs of
 * AFTER triggers), so that an acknowledged event has them and a refused one was received by nobody.
 * Room for them is reserved when the event enters the publish path; exactly one of
 * {@link DeliveryFollowUp.stored}, a resolved {@link DeliveryFollowUp.store} or
 * {@link DeliveryFollowUp.release} settles it.
 */
export interface DeliveryFollowUp {
  /**
   * The rows for the event as delivered, as one `INSERT`, to run with its history entry, atomically
   * (its parameters numbered from `$<from>` on PostgreSQL; `?` on SQLite).
   */
  insert(event: ChannelEvent, from: number): { sql: string; params: unknown[] };
  /** Called once the history write holding {@link DeliveryFollowUp.insert} has committed. */
  stored(): void;
  /**
   * Writes the rows for the event as delivered on their own (events not kept as history), batched
   * with other events' rows. Rejects when the event must not be delivered without them.
   */
  store(event: ChannelEvent): Promise<void>;
  /** The event was not delivered (dropped, refused, or a write failed with `error`): the reserved room is given back. */
  release(error?: unknown): void;
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
    await writeWithKnownOutcome(
      () =>
        this.provider === "postgresql"
          ? this.appendInOneStatement(event, keep, followUp)
          : this.appendInOneTransaction(event, keep, followUp),
      "the message",
    );
    followUp?.stored();
  }

  /**
   * SQLite: the entry, the trim and the follow-up's rows as raw statements in one transaction (a
   * batch: no query planning per event, and one commit).
   */
  private async appendInOneTransaction(
    event: ChannelEvent & { seq: number },
    keep: number,
    followUp?: DeliveryFollowUp | null,
  ): Promise<void> {
    const statements = [
      this.prisma.$executeRawUnsafe(
        `INSERT INTO "HistoryEntry" ("id", "channel", "seq", "event", "createdAt") VALUES (?, ?, ?, ?, ?)`,
        ...entryValues(event, false),
      ),
    ];
    if (event.seq > keep) {
      statements.push(
        this.prisma.$executeRawUnsafe(`DELETE FROM "HistoryEntry" WHERE "channel" = ? AND "seq" <= ?`, event.channel, event.seq - keep),
      );
    }
    if (followUp) {
      const rows = followUp.insert(event, 1);
      statements.push(this.prisma.$executeRawUnsafe(rows.sql, ...rows.params));
    }
    // One statement needs no transaction of its own.
    if (statements.length === 1) await statements[0];
    else await this.prisma.$transaction(statements);
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
    const params = entryValues(event, true);
    const parts = [
      `entry AS (INSERT INTO "HistoryEntry" ("id", "channel", "seq", "event", "createdAt") VALUES ($1, $2, $3::integer, $4::jsonb, $5::timestamp(3)))`,
    ];
    if (event.seq > keep) {
      params.push(event.seq - keep);
      parts.push(`trimmed AS (DELETE FROM "HistoryEntry" WHERE "channel" = $2 AND "seq" <= $${params.length}::integer)`);
    }
    if (followUp) {
      const rows = followUp.insert(event, params.length + 1);
      params.push(...rows.params);
      parts.push(`follow_up AS (${rows.sql})`);
    }
    await this.prisma.$queryRawUnsafe(`WITH ${parts.join(", ")} SELECT 1`, ...params);
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

/** A history entry's values: id, channel, seq, the event as JSON text exactly as delivered (`"__proto__"` keys in a payload included), and its time. */
function entryValues(event: ChannelEvent & { seq: number }, postgres: boolean): unknown[] {
  return [event.id, event.channel, event.seq, JSON.stringify(event), storedTime(new Date(event.createdAt), postgres)];
}
