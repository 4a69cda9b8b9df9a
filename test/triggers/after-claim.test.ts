import { join } from "node:path";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, describe, expect, inject, it } from "vitest";
import { type Database, openDatabase } from "../../src/db.js";
import { AfterRunQueue } from "../../src/triggers/after/queue.js";
import { TriggerStore } from "../../src/triggers/store/trigger-store.js";
import { createDatabaseFrom, describePostgres } from "../helpers/postgres.js";
import { assertProperty } from "../helpers/property.js";
import { freshDataDir } from "../helpers/server.js";

/** A run as the property generates it: its trigger, when it is due relative to now, its state and lease. */
interface RunSpec {
  readonly trigger: number;
  /** Distinct across runs, so the expected claim is unambiguous; positive means not yet due. */
  readonly dueInMs: number;
  readonly status: "PENDING" | "DELIVERED";
  readonly lease: "none" | "held" | "expired";
}

interface Case {
  readonly triggers: number;
  readonly runs: RunSpec[];
  readonly inFlight: number[];
  readonly perTrigger: number;
  readonly limit: number;
}

const HOUR_MS = 3_600_000;

const cases: fc.Arbitrary<Case> = fc.integer({ min: 1, max: 5 }).chain((triggers) =>
  fc.record({
    triggers: fc.constant(triggers),
    runs: fc.uniqueArray(fc.integer({ min: -HOUR_MS, max: HOUR_MS }), { maxLength: 40 }).chain((dues) =>
      fc.tuple(
        ...dues.map((dueInMs) =>
          fc.record({
            trigger: fc.integer({ min: 0, max: triggers - 1 }),
            // A run not due stays so for the test's duration, whatever the clock does meanwhile.
            dueInMs: fc.constant(dueInMs > 0 ? dueInMs + 60_000 : dueInMs),
            status: fc.constantFrom("PENDING" as const, "PENDING" as const, "DELIVERED" as const),
            lease: fc.constantFrom("none" as const, "none" as const, "held" as const, "expired" as const),
          }),
        ),
      ),
    ),
    inFlight: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: triggers, maxLength: triggers }),
    perTrigger: fc.integer({ min: 1, max: 4 }),
    limit: fc.integer({ min: 1, max: 12 }),
  }),
);

/**
 * What a claim must take: of each trigger's due, unleased pending runs (oldest first), as many as its
 * limit leaves beside its attempts under way, each numbered after them; then the `limit` lowest
 * numbers, oldest first among equal numbers.
 */
function expectedClaim(spec: Case, ids: string[], now: number): Set<string> {
  const candidates: { id: string; slot: number; due: number }[] = [];
  for (let trigger = 0; trigger < spec.triggers; trigger++) {
    const due = spec.runs
      .map((run, i) => ({ run, id: ids[i]! }))
      .filter(({ run }) => run.trigger === trigger && run.status === "PENDING" && run.dueInMs <= 0 && run.lease !== "held")
      .sort((a, b) => a.run.dueInMs - b.run.dueInMs);
    const room = Math.max(0, spec.perTrigger - spec.inFlight[trigger]!);
    for (const [n, { id, run }] of due.slice(0, room).entries()) {
      candidates.push({ id, slot: spec.inFlight[trigger]! + n + 1, due: now + run.dueInMs });
    }
  }
  candidates.sort((a, b) => a.slot - b.slot || a.due - b.due);
  return new Set(candidates.slice(0, spec.limit).map((candidate) => candidate.id));
}

async function holdsClaimProperty(db: Database, numRuns: number): Promise<void> {
  const queue = new AfterRunQueue(db.prisma, db.provider, new TriggerStore(db.prisma), pino({ level: "silent" }), {
    maxPending: 1000,
    maxPendingPerTrigger: 1000,
    countIntervalMs: 500,
    keepPerTrigger: 100,
    leaseMs: 60_000,
    attemptsKept: 5,
  });
  let round = 0;
  await assertProperty(
    fc.asyncProperty(cases, async (spec) => {
      round++;
      await db.prisma.triggerAfterRun.deleteMany();
      await db.prisma.trigger.deleteMany();
      const triggerIds = Array.from({ length: spec.triggers }, (_, i) => `t${round}-${i}`);
      for (const id of triggerIds)
        await db.prisma.trigger.create({
          data: { id, name: id, tags: [], actions: ["MESSAGE"], channel: "c", timing: "AFTER", stack: [] },
        });
      const now = Date.now();
      const ids = spec.runs.map((_, i) => `r${round}-${String(i).padStart(3, "0")}`);
      await db.prisma.triggerAfterRun.createMany({
        data: spec.runs.map((run, i) => ({
          id: ids[i]!,
          triggerId: triggerIds[run.trigger]!,
          action: "MESSAGE",
          channel: "c",
          event: { id: ids[i], channel: "c" },
          status: run.status,
          nextAttemptAt: run.status === "PENDING" ? BigInt(now + run.dueInMs) : null,
          leaseOwner: run.lease === "none" ? null : "another-instance",
          leaseUntil: run.lease === "none" ? null : BigInt(run.lease === "held" ? now + HOUR_MS : now - HOUR_MS),
          log: [],
        })),
      });
      const inFlight = new Map(triggerIds.flatMap((id, i) => (spec.inFlight[i]! > 0 ? [[id, spec.inFlight[i]!] as const] : [])));

      const claimed = await queue.claim("me", spec.limit, spec.perTrigger, inFlight);
      expect(new Set(claimed.map((run) => run.id))).toEqual(expectedClaim(spec, ids, now));
      for (const run of claimed) expect(run.triggerId).toBe(triggerIds[spec.runs[ids.indexOf(run.id)]!.trigger]);
      // Leased to this claimant: a second claim does not take them again.
      const stored = await db.prisma.triggerAfterRun.findMany({ where: { id: { in: claimed.map((run) => run.id) } } });
      expect(stored.every((row) => row.leaseOwner === "me" && row.attempts === 1)).toBe(true);
      const again = await queue.claim("other", 100, 100, new Map());
      expect(again.some((run) => claimed.some((mine) => mine.id === run.id))).toBe(false);
    }),
    { numRuns },
  );
}

describe("claiming AFTER runs fairly across triggers", () => {
  it("takes each trigger's oldest due runs, at most its limit beside its attempts under way, lowest number first (SQLite)", async () => {
    const db = await openDatabase(`file:${join(freshDataDir(), "realtime.db")}`);
    try {
      await holdsClaimProperty(db, 60);
    } finally {
      await db.close();
    }
  });
});

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop();
});

describePostgres("claiming AFTER runs fairly across triggers on PostgreSQL", () => {
  it("takes each trigger's oldest due runs, at most its limit beside its attempts under way, lowest number first", {
    timeout: 120_000,
  }, async () => {
    const copy = await createDatabaseFrom(inject("postgresTemplate")!);
    drops.push(copy.drop);
    const db = await openDatabase(copy.url);
    try {
      await holdsClaimProperty(db, 40);
    } finally {
      await db.close();
    }
  });
});
