import { copyFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Database, migrate, openDatabase } from "../../src/db.js";
import { createLogger } from "../../src/logger.js";
import { RedisConnection } from "../../src/realtime/redis.js";
import { RedisStateStore } from "../../src/triggers/redis-state.js";
import { DatabaseStateStore, StateBoundError, TriggerState, type TriggerStateStore } from "../../src/triggers/state.js";
import { REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { freshDataDir, freshPostgresUrl } from "../helpers/server.js";

// Both stores against one model: a map of keys to JSON values, with the key bound and incr's rule
// (only on whole numbers). Every sequence of steps must give the model's answers, on a real SQLite
// file and on a real Redis.

const MAX_KEYS = 3;
type Op =
  | { kind: "get"; key: string }
  | { kind: "put"; key: string; value: unknown }
  | { kind: "incr"; key: string; by: number }
  | { kind: "delete"; key: string }
  | { kind: "dry"; key: string; by: number };

const key = fc.constantFrom("a", "b", "c", "d", "é:1", "a%_");
const value = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.jsonValue({ maxDepth: 2 }));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("get" as const), key }),
  fc.record({ kind: fc.constant("put" as const), key, value }),
  fc.record({ kind: fc.constant("incr" as const), key, by: fc.integer({ min: -50, max: 50 }) }),
  fc.record({ kind: fc.constant("delete" as const), key }),
  fc.record({ kind: fc.constant("dry" as const), key, by: fc.integer({ min: -50, max: 50 }) }),
);

/** A whole number as the stores see one: its JSON text is digits (so not 1e+21). */
function wholeNumber(value: unknown): boolean {
  return typeof value === "number" && Number.isSafeInteger(value) && /^-?\d+$/.test(JSON.stringify(value));
}

/** What the model answers for one step: a value, or the kind of failure. */
function modelStep(model: Map<string, unknown>, step: Op): unknown {
  const full = !model.has(step.key) && model.size >= MAX_KEYS;
  switch (step.kind) {
    case "get":
      return model.get(step.key) ?? null;
    case "put":
      if (full) return "TOO_MANY_KEYS";
      model.set(step.key, JSON.parse(JSON.stringify(step.value)));
      return undefined;
    case "incr":
    case "dry": {
      const current = model.get(step.key);
      if (current !== undefined && !wholeNumber(current)) return "NOT_WHOLE";
      if (step.kind === "dry") return ((current as number | undefined) ?? 0) + step.by;
      if (full) return "TOO_MANY_KEYS";
      const next = ((current as number | undefined) ?? 0) + step.by;
      model.set(step.key, next);
      return next;
    }
    case "delete":
      model.delete(step.key);
      return undefined;
  }
}

async function storeStep(state: TriggerState, triggerId: string, step: Op): Promise<unknown> {
  const live = state.live(triggerId);
  try {
    switch (step.kind) {
      case "get":
        return await live.get(step.key);
      case "put":
        return await live.put(step.key, step.value, undefined);
      case "incr":
        return await live.incr(step.key, step.by, undefined);
      case "delete":
        return await live.delete(step.key);
      case "dry":
        return await state.dry(triggerId).incr(step.key, step.by, undefined);
    }
  } catch (error) {
    if (!(error instanceof StateBoundError)) throw error;
    return /not a whole number/.test(error.message) ? "NOT_WHOLE" : "TOO_MANY_KEYS";
  }
}

function agreesWithTheModel(state: TriggerState, newTrigger: () => Promise<string>) {
  return fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (steps) => {
    const triggerId = await newTrigger();
    const model = new Map<string, unknown>();
    for (const step of steps) expect(await storeStep(state, triggerId, step)).toEqual(modelStep(model, step));
    const listed = await state.list(triggerId, "", 100);
    expect(listed.map((entry) => [entry.key, entry.value])).toEqual(
      [...model.entries()].sort(([x], [y]) => (Buffer.from(x) < Buffer.from(y) ? -1 : 1)),
    );
    expect(await state.store.clear(triggerId, "")).toBe(model.size);
    expect(await state.list(triggerId, "", 100)).toEqual([]);
  });
}

describe.each(["sqlite", "postgresql"] as const)("DatabaseStateStore on %s", (provider) => {
  const reachable = provider === "sqlite" || inject("postgresReachable");
  if (!reachable) console.warn("skipped, PostgreSQL unreachable: DatabaseStateStore on postgresql");
  let db: Database;
  let store: TriggerStateStore;
  let count = 0;
  beforeAll(async () => {
    if (!reachable) return;
    let url: string;
    if (provider === "sqlite") {
      const dir = freshDataDir({ migrated: false });
      copyFileSync(inject("sqliteTemplate"), join(dir, "state.db"));
      url = `file:${join(dir, "state.db")}`;
    } else {
      url = await freshPostgresUrl();
      await migrate(url);
    }
    db = await openDatabase(url);
    store = new DatabaseStateStore(db.prisma, db.provider);
  });
  afterAll(async () => {
    await store?.close();
    await db?.close();
  });

  const newTrigger = async () => {
    const id = `trigger-${++count}`;
    await db.prisma.trigger.create({ data: { id, name: id, tags: [], actions: ["MESSAGE"], channel: "c", stack: [] } });
    return id;
  };

  it.skipIf(!reachable)("answers every sequence of steps as the model does", async () => {
    await fc.assert(agreesWithTheModel(new TriggerState(store, { maxKeys: MAX_KEYS, maxValueBytes: 16 * 1024 }), newTrigger), {
      numRuns: 60,
    });
  });

  it.skipIf(!reachable)("lists and clears by prefix exactly, past pages of keys that differ only in case", async () => {
    const id = await newTrigger();
    const keys = [...Array.from({ length: 600 }, (_, i) => `A:${String(i).padStart(3, "0")}`), "a:1", "a:2", "b:1"];
    await db.prisma.triggerState.createMany({
      data: keys.map((key) => ({ triggerId: id, key, value: "1", expiresAt: null, updatedAt: 0 })),
    });
    expect((await store.list(id, "a:", 10)).map((e) => e.key)).toEqual(["a:1", "a:2"]);
    expect(await store.clear(id, "a:")).toBe(2);
    expect(await store.clear(id, "A:")).toBe(600);
    expect((await store.list(id, "", 10)).map((e) => e.key)).toEqual(["b:1"]);
  });

  it.skipIf(!reachable)("reads an expired key as null before the purge, and the purge deletes it", async () => {
    const id = await newTrigger();
    await store.put(id, "short", "1", 1, 10);
    await store.put(id, "long", "2", 60_000, 10);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.get(id, "short")).toBeNull();
    expect(await store.incr(id, "short", 5, undefined, 10)).toBe(5); // a new key, without expiry
    await store.put(id, "gone", "3", 1, 10);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await (store as DatabaseStateStore).purge()).toBe(1);
    expect((await store.list(id, "", 10)).map((e) => e.key)).toEqual(["long", "short"]);
  });
});

describe("RedisStateStore", () => {
  const reachable = inject("redisReachable");
  if (!reachable) console.warn("skipped, Redis unreachable: RedisStateStore");
  let redis: RedisConnection;
  let clean: () => Promise<void>;
  let count = 0;
  beforeAll(async () => {
    if (!reachable) return;
    const test = testPrefix();
    clean = test.clean;
    redis = new RedisConnection(REDIS_BASE_URL, test.prefix, createLogger("silent"));
    await redis.ready();
  });
  afterAll(async () => {
    await clean?.();
    await redis?.close();
  });

  it.skipIf(!reachable)("answers every sequence of steps as the model does", async () => {
    const state = new TriggerState(new RedisStateStore(redis), { maxKeys: MAX_KEYS, maxValueBytes: 16 * 1024 });
    await fc.assert(
      agreesWithTheModel(state, async () => `trigger-${++count}`),
      { numRuns: 60 },
    );
  });

  it.skipIf(!reachable)("expires keys by Redis's clock and frees their room under the key bound", async () => {
    const store = new RedisStateStore(redis);
    const id = `trigger-${++count}`;
    await store.put(id, "a", "1", 50, 2);
    expect(await store.incr(id, "b", 1, 50, 2)).toBe(1);
    await expect(store.put(id, "c", "1", undefined, 2)).rejects.toThrow(StateBoundError);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.get(id, "a")).toBeNull();
    await store.put(id, "c", "1", undefined, 2);
    expect(await store.list(id, "", 10)).toEqual([{ key: "c", value: 1, expiresAt: null }]);
    await store.close();
  });

  it.skipIf(!reachable)("purges expired keys from the sets of a trigger that stopped writing", async () => {
    const store = new RedisStateStore(redis);
    const id = `trigger-${++count}`;
    for (const key of ["a", "b"]) await store.put(id, key, "1", 30, 10);
    await store.put(id, "kept", "1", undefined, 10);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const sets = [`${redis.prefix}tstate:${id}:exp`, `${redis.prefix}tstate:${id}:keys`];
    for (const set of sets) expect(await redis.commands.zcard(set)).toBe(3);
    await store.purge();
    for (const set of sets) expect(await redis.commands.zrange(set, 0, -1)).toEqual(["kept"]);
    await store.close();
  });
});
