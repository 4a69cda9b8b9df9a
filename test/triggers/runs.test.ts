import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { type Database, migrate, openDatabase } from "../../src/db.js";
import { createLogger } from "../../src/logger.js";
import { TriggerRunRecorder } from "../../src/triggers/run/recorder.js";
import { capJson, MAX_RUN_DATA_BYTES, type TriggerRunReport } from "../../src/triggers/run/records.js";
import { describePostgres } from "../helpers/postgres.js";
import { assertProperty } from "../helpers/property.js";
import { freshDataDir, freshPostgresUrl } from "../helpers/server.js";

const databases: Database[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.close()));
});

type Kind = "sqlite" | "postgres";

/** JSON text with every object's keys sorted, own `__proto__` keys included. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === "object" && inner !== null && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : 1)))
      : inner,
  );
}

/** A recorder over a real, migrated database (an SQLite file, or a PostgreSQL schema) holding triggers `a` and `b`. */
async function recorder(kind: Kind, options: { keepPerTrigger: number; maxBuffered: number }) {
  let url = `file:${join(freshDataDir(), "realtime.db")}`;
  if (kind === "postgres") {
    url = await freshPostgresUrl();
    await migrate(url);
  }
  const db = await openDatabase(url);
  databases.push(db);
  for (const id of ["a", "b"]) {
    await db.prisma.trigger.create({ data: { id, name: id, tags: [], actions: ["MESSAGE"], channel: "c", stack: [] } });
  }
  // A long interval: only close() and reads write, so the buffer bound is what is tested.
  return new TriggerRunRecorder(db.prisma, createLogger("silent"), { ...options, flushIntervalMs: 60_000 });
}

const run = (triggerId: string, n: number, payload: unknown = n): TriggerRunReport => ({
  triggerId,
  action: "MESSAGE",
  channel: "c",
  outcome: "DELIVERED",
  durationMs: n,
  error: null,
  log: [],
  clientId: `client-${n}`,
  revision: 1,
  input: { payload, commandOptions: null },
  output: { payload, commandOptions: null },
});

/** The recorder's behaviour, on one kind of database. */
function recorderSuite(kind: Kind) {
  it("keeps the newest runs of every trigger when more arrive than its buffer holds", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 3, maxBuffered: 10 });
    for (let n = 1; n <= 50; n++) runs.record(run(n % 5 === 0 ? "b" : "a", n));
    const newest = async (id: string) => (await runs.latest(id, 10)).map((r) => r.durationMs);
    expect(await newest("a")).toEqual([49, 48, 47]);
    expect(await newest("b")).toEqual([50, 45, 40]);
    await runs.close();
  });

  it("writes only the newest keepPerTrigger of a batch and prunes older ones already stored", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 2, maxBuffered: 1000 });
    runs.record(run("a", 1));
    runs.record(run("a", 2));
    await runs.flush();
    runs.record(run("a", 3));
    expect((await runs.latest("a", 10)).map((r) => r.durationMs)).toEqual([3, 2]);
    await runs.close();
  });
  it("stores client, revision, input and output, and flags a run whose payload was cut", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 10, maxBuffered: 100 });
    runs.record(run("a", 1, { text: "small" }));
    runs.record(run("a", 2, { text: "x".repeat(5000) }));
    const [big, small] = await runs.latest("a", 10);
    expect(small).toMatchObject({
      clientId: "client-1",
      revision: 1,
      truncated: false,
      input: { payload: { text: "small" }, commandOptions: null },
    });
    expect(big!.truncated).toBe(true);
    expect(big!.input).toEqual(JSON.stringify({ payload: { text: "x".repeat(5000) }, commandOptions: null }).slice(0, MAX_RUN_DATA_BYTES));
    await runs.close();
  });

  it("streams runs live, of one trigger or of all, and stops when the stream is closed", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 10, maxBuffered: 100 });
    const onlyB = runs.live("b");
    const all = runs.live();
    runs.record(run("a", 1));
    runs.record(run("b", 2));
    expect((await onlyB.next()).value).toMatchObject({ triggerId: "b", durationMs: 2 });
    expect((await all.next()).value).toMatchObject({ triggerId: "a", durationMs: 1 });
    expect((await all.next()).value).toMatchObject({ triggerId: "b", durationMs: 2 });
    const pending = onlyB.next();
    await onlyB.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    await all.return!();
    await runs.close();
  });

  it('stores logged values and captured payloads exactly, "__proto__" keys included', async () => {
    const runs = await recorder(kind, { keepPerTrigger: 10, maxBuffered: 100 });
    const payload = JSON.parse('{"__proto__": {"x": 1}, "a": 1}');
    runs.record({ ...run("a", 1, payload), log: [JSON.parse('{"__proto__": "logged"}')] });
    const [stored] = await runs.latest("a", 1);
    expect(JSON.stringify(stored!.log)).toBe('[{"__proto__":"logged"}]');
    // Key order aside: PostgreSQL's jsonb keeps keys in an order of its own.
    expect(canonical(stored!.input)).toBe(canonical({ payload, commandOptions: null }));
    await runs.close();
  });

  it("leaves out the runs of a trigger deleted before they were written, and writes the rest of the batch", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 10, maxBuffered: 100 });
    runs.record(run("a", 1));
    runs.record(run("gone", 2));
    runs.record(run("b", 3));
    await runs.flush();
    expect((await runs.latest("a", 10)).map((r) => r.durationMs)).toEqual([1]);
    expect((await runs.latest("b", 10)).map((r) => r.durationMs)).toEqual([3]);
    expect(await runs.latest("gone", 10)).toEqual([]);
    await runs.close();
  });

  it("stores a lone surrogate in a run's error or client as U+FFFD, and the batch's other runs with it", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 10, maxBuffered: 100 });
    runs.record({ ...run("a", 1), error: "bad \uD800 text", clientId: "client-\uDC00" });
    runs.record(run("a", 2));
    const [second, first] = await runs.latest("a", 10);
    expect(first).toMatchObject({ durationMs: 1, error: "bad \uFFFD text", clientId: "client-\uFFFD" });
    expect(second).toMatchObject({ durationMs: 2, error: null });
    await runs.close();
  });

  it("writes a big batch in one go, orders runs by time, and prunes each trigger to its newest", async () => {
    const runs = await recorder(kind, { keepPerTrigger: 700, maxBuffered: 5000 });
    for (let n = 1; n <= 1500; n++)
      runs.record({ ...run(n % 3 === 0 ? "b" : "a", n), error: n % 7 === 0 ? `failed ${n}` : null, log: [n, { n }] });
    await runs.flush();
    const a = await runs.latest("a", 1000);
    expect(a.map((r) => r.durationMs)).toEqual(
      Array.from({ length: 1500 }, (_, i) => 1500 - i)
        .filter((n) => n % 3 !== 0)
        .slice(0, 700),
    );
    expect(a[0]).toMatchObject({
      triggerId: "a",
      action: "MESSAGE",
      channel: "c",
      outcome: "DELIVERED",
      error: null,
      log: [1499, { n: 1499 }],
      truncated: false,
    });
    expect(a.find((r) => r.durationMs === 1498)!.error).toBe("failed 1498");
    expect(a[0]!.createdAt).toBeInstanceOf(Date);
    expect((await runs.latest("b", 1000)).length).toBe(500);
    runs.record(run("b", 2000));
    expect((await runs.latest("b", 1)).map((r) => r.durationMs)).toEqual([2000]);
    await runs.close();
  });
}

describe("the trigger run recorder, on SQLite", () => recorderSuite("sqlite"));
describePostgres("the trigger run recorder, on PostgreSQL", () => recorderSuite("postgres"));

describe("run input and output", () => {
  it("keeps a value whole when its JSON fits in 4 KiB, else its JSON text cut to at most 4 KiB", () => {
    assertProperty(
      fc.property(fc.jsonValue(), (value) => {
        const { value: kept, truncated } = capJson(value);
        const text = JSON.stringify(value);
        if (Buffer.byteLength(text) <= MAX_RUN_DATA_BYTES) {
          expect(truncated).toBe(false);
          expect(kept).toBe(value);
        } else {
          expect(truncated).toBe(true);
          expect(typeof kept).toBe("string");
          expect(Buffer.byteLength(kept as string)).toBeLessThanOrEqual(MAX_RUN_DATA_BYTES);
          expect(text.startsWith(kept as string)).toBe(true);
        }
      }),
    );
    assertProperty(
      fc.property(fc.string({ unit: "grapheme", minLength: 1500, maxLength: 3000 }), (text) => {
        const { value: kept, truncated } = capJson({ text });
        expect(truncated).toBe(Buffer.byteLength(JSON.stringify({ text })) > MAX_RUN_DATA_BYTES);
        if (truncated) expect(JSON.stringify({ text }).startsWith(kept as string)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});
