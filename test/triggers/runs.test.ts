import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/db.js";
import { createLogger } from "../../src/logger.js";
import { type TriggerRunRecord, TriggerRunRecorder } from "../../src/triggers/runs.js";
import { freshDataDir } from "../helpers/server.js";

const databases: Database[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.close()));
});

/** A recorder over a real, migrated SQLite file holding triggers `a` and `b`. */
async function recorder(options: { keepPerTrigger: number; maxBuffered: number }) {
  const db = await openDatabase(`file:${join(freshDataDir(), "realtime.db")}`);
  databases.push(db);
  for (const id of ["a", "b"]) {
    await db.prisma.trigger.create({ data: { id, name: id, tags: [], actions: ["MESSAGE"], channel: "c", stack: [] } });
  }
  // A long interval: only close() and reads write, so the buffer bound is what is tested.
  return new TriggerRunRecorder(db.prisma, createLogger("silent"), { ...options, flushIntervalMs: 60_000 });
}

const run = (triggerId: string, n: number): Omit<TriggerRunRecord, "id" | "createdAt"> => ({
  triggerId,
  action: "MESSAGE",
  channel: "c",
  outcome: "DELIVERED",
  durationMs: n,
  error: null,
  log: [],
});

describe("the trigger run recorder", () => {
  it("keeps the newest runs of every trigger when more arrive than its buffer holds", async () => {
    const runs = await recorder({ keepPerTrigger: 3, maxBuffered: 10 });
    for (let n = 1; n <= 50; n++) runs.record(run(n % 5 === 0 ? "b" : "a", n));
    const newest = async (id: string) => (await runs.latest(id, 10)).map((r) => r.durationMs);
    expect(await newest("a")).toEqual([49, 48, 47]);
    expect(await newest("b")).toEqual([50, 45, 40]);
    await runs.close();
  });

  it("writes only the newest keepPerTrigger of a batch and prunes older ones already stored", async () => {
    const runs = await recorder({ keepPerTrigger: 2, maxBuffered: 1000 });
    runs.record(run("a", 1));
    runs.record(run("a", 2));
    await runs.flush();
    runs.record(run("a", 3));
    expect((await runs.latest("a", 10)).map((r) => r.durationMs)).toEqual([3, 2]);
    await runs.close();
  });
});
