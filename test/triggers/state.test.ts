import { copyFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Database, migrate, openDatabase } from "../../src/db.js";
import { createLogger } from "../../src/logger.js";
import { RedisConnection } from "../../src/realtime/redis.js";
import { compileStack } from "../../src/triggers/compile/stack.js";
import { runStack, type TriggerInput } from "../../src/triggers/run/engine.js";
import { RedisStateStore } from "../../src/triggers/state/redis.js";
import { DatabaseStateStore, StateBoundError, TriggerState, type TriggerStateStore } from "../../src/triggers/state/state.js";
import { MAX_COUNT } from "../../src/triggers/state/statements.js";
import { eventually } from "../helpers/eventually.js";
import { assertProperty } from "../helpers/property.js";
import { REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { freshDataDir, freshPostgresUrl } from "../helpers/server.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

/** A message as a trigger run sees it. */
const stateInput: TriggerInput = {
  action: "message",
  command: "message",
  channel: "room",
  commandOptions: null,
  payload: {},
  client: { id: "c1", authenticated: true, extras: null },
};

// Both stores against one model: a map of keys to JSON values, with the key bound and incr's rule
// (only on whole numbers within ±MAX_COUNT, and only to results within them). Every sequence of steps
// must give the model's answers, on a real SQLite file, a real PostgreSQL and a real Redis.

const MAX_KEYS = 3;
type Op =
  | { kind: "get"; key: string }
  | { kind: "put"; key: string; value: unknown }
  | { kind: "incr"; key: string; by: number }
  | { kind: "delete"; key: string }
  | { kind: "dry"; key: string; by: number };

const key = fc.constantFrom("a", "b", "c", "d", "é:1", "a%_");

/** Keys a client could choose that look like the Redis store's own key kinds, separators and glob patterns. */
const HOSTILE_KEYS = [
  "x:exp",
  "a:b:exp",
  "exp",
  ":exp",
  "keys",
  "x:keys",
  "v:x",
  "v:exp",
  "*",
  "*:exp",
  "?",
  "?:exp",
  "[",
  "[a-z]:exp",
  "]",
  "{",
  "{t}:exp",
  "}",
  "\\",
  "a\\*:exp",
  ":",
  "::",
  "tstate:x:exp",
  "a b:exp",
  "é:exp",
];

/** Any key within the bounds (1 to 200 UTF-16 units), often built from the pieces above. */
const anyKey = fc
  .array(fc.oneof(fc.constantFrom(...HOSTILE_KEYS, ":"), fc.string({ unit: "binary", minLength: 1, maxLength: 8 })), {
    minLength: 1,
    maxLength: 6,
  })
  .map((parts) => parts.join(""));

/** What a Redis key prefix holds: string values, and members over all sorted sets. */
async function inventory(connection: RedisConnection): Promise<{ values: number; members: number }> {
  const found = { values: 0, members: 0 };
  let cursor = "0";
  do {
    const [next, keys] = await connection.commands.scan(cursor, "MATCH", `${connection.prefix}*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) {
      const type = await connection.commands.type(key);
      if (type === "string") found.values++;
      else if (type === "zset") found.members += await connection.commands.zcard(key);
      else throw new Error(`unexpected ${type} at ${key}`);
    }
  } while (cursor !== "0");
  return found;
}
/** Numbers at and around the edges of what `incr` counts: ±MAX_COUNT, ±2^53, past int64. */
const EDGES = [MAX_COUNT, -MAX_COUNT, MAX_COUNT - 1, -MAX_COUNT + 1, 2 ** 53, -(2 ** 53), 2 ** 63, 1e20, -1e20, 1e21];
const value = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(...EDGES), fc.jsonValue({ maxDepth: 2 }));
const amount = fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constantFrom(MAX_COUNT, -MAX_COUNT, 1, -1));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("get" as const), key }),
  fc.record({ kind: fc.constant("put" as const), key, value }),
  fc.record({ kind: fc.constant("incr" as const), key, by: amount }),
  fc.record({ kind: fc.constant("delete" as const), key }),
  fc.record({ kind: fc.constant("dry" as const), key, by: amount }),
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
      const next = ((current as number | undefined) ?? 0) + step.by;
      if (step.kind === "incr" && full) return "TOO_MANY_KEYS";
      if (Math.abs(next) > MAX_COUNT) return "BEYOND_MAX";
      if (step.kind === "dry") return next;
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
    if (/not a whole number/.test(error.message)) return "NOT_WHOLE";
    if (/would pass ±9007199254740991/.test(error.message)) return "BEYOND_MAX";
    return "TOO_MANY_KEYS";
  }
}

/** Counterexamples found earlier, run first every time. */
const REGRESSIONS: [Op[]][] = [
  // -2^53 is a whole number to SQLite, PostgreSQL and Redis, but not a safe integer: incr took it.
  [
    [
      { kind: "put", key: "c", value: -(2 ** 53) },
      { kind: "incr", key: "c", by: 0 },
    ],
  ],
];

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

/**
 * Concurrent increments of a key 10 below MAX_COUNT (PostgreSQL batches them): each is answered with a
 * value within ±MAX_COUNT or refused, and the stored value is the start plus the accepted amounts.
 */
async function concurrentIncrementsNearTheEdge(store: TriggerStateStore, newTrigger: () => Promise<string>): Promise<void> {
  const id = await newTrigger();
  const start = MAX_COUNT - 10;
  await store.put(id, "n", String(start), undefined, 10);
  const amounts = [4, 4, 4, -3, 4, -2, 4, MAX_COUNT, -MAX_COUNT];
  const answers = await Promise.allSettled(amounts.map((by) => store.incr(id, "n", by, undefined, 10)));
  let expected = start;
  for (const [i, answer] of answers.entries()) {
    if (answer.status === "fulfilled") {
      expect(Math.abs(answer.value)).toBeLessThanOrEqual(MAX_COUNT);
      expected += amounts[i]!;
    } else expect((answer.reason as Error).message).toMatch(/would pass ±9007199254740991/);
  }
  const accepted = answers.filter((answer) => answer.status === "fulfilled").length;
  expect(accepted).toBeGreaterThanOrEqual(3);
  expect(accepted).toBeLessThan(amounts.length);
  expect(await store.get(id, "n")).toBe(String(expected));
  // A fresh key takes amounts that together pass the bound one by one too.
  const fresh = await Promise.allSettled([MAX_COUNT, MAX_COUNT, -5].map((by) => store.incr(id, "m", by, undefined, 10)));
  expect(fresh.filter((answer) => answer.status === "rejected")).toHaveLength(1);
  expect(Math.abs(Number(await store.get(id, "m")))).toBeLessThanOrEqual(MAX_COUNT);
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
    store = new DatabaseStateStore(db);
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
    await assertProperty(agreesWithTheModel(new TriggerState(store, { maxKeys: MAX_KEYS, maxValueBytes: 16 * 1024 }), newTrigger), {
      numRuns: 60,
      examples: REGRESSIONS,
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

  it.skipIf(!reachable)(
    "counts every concurrent increment, and on SQLite keeps the key bound exactly under concurrent new keys",
    async () => {
      const id = await newTrigger();
      const amounts = Array.from({ length: 50 }, (_, i) => (i % 5) + 1);
      const values = await Promise.all(amounts.map((by) => store.incr(id, "n", by, undefined, 100)));
      const total = amounts.reduce((sum, by) => sum + by, 0);
      expect(await store.get(id, "n")).toBe(String(total));
      // Each increment returns the value after it: all distinct, the last one the total.
      expect(new Set(values).size).toBe(amounts.length);
      expect(Math.max(...values)).toBe(total);

      const bounded = await newTrigger();
      const written = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.put(bounded, `k${i}`, "1", undefined, 5)));
      const stored = written.filter((result) => result.status === "fulfilled").length;
      if (provider === "sqlite") expect(stored).toBe(5);
      else expect(stored).toBeGreaterThanOrEqual(5);
      expect((await store.list(bounded, "", 100)).length).toBe(stored);
    },
  );

  it.skipIf(!reachable)("answers concurrent increments near ±MAX_COUNT one by one, refusing those that would pass it", async () => {
    await concurrentIncrementsNearTheEdge(store, newTrigger);
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
    await assertProperty(
      agreesWithTheModel(state, async () => `trigger-${++count}`),
      { numRuns: 60, examples: REGRESSIONS },
    );
  });

  it.skipIf(!reachable)("answers concurrent increments near ±MAX_COUNT one by one, refusing those that would pass it", async () => {
    await concurrentIncrementsNearTheEdge(new RedisStateStore(redis), async () => `trigger-${++count}`);
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

  it.skipIf(!reachable)("purges every trigger's expired entries and nothing else, whatever keys a client chose", async () => {
    const own = testPrefix();
    const connection = new RedisConnection(REDIS_BASE_URL, own.prefix, createLogger("silent"));
    await connection.ready();
    const store = new RedisStateStore(connection);
    try {
      const triggers = Array.from({ length: 12 }, (_, i) => `purged-${i}`);
      const kept = new Map<string, string[]>();
      for (const [i, id] of triggers.entries()) {
        const keys = i === 0 ? HOSTILE_KEYS : ["a", "b", "c"];
        for (const key of keys) await store.put(id, key, JSON.stringify(key), 30, 1000);
        kept.set(id, i === 0 ? HOSTILE_KEYS.map((key) => `kept:${key}`) : ["kept"]);
        for (const key of kept.get(id)!) await store.put(id, key, JSON.stringify(key), undefined, 1000);
      }
      await eventually(
        "the first and last trigger's expiring values gone",
        async () => (await store.get(triggers[0]!, HOSTILE_KEYS[0]!)) === null && (await store.get(triggers[11]!, "c")) === null,
      );
      await store.purge();
      const keptCount = [...kept.values()].reduce((sum, keys) => sum + keys.length, 0);
      // One value and a member in each of two sets per kept key: whatever the layout, nothing expired is left.
      expect(await inventory(connection)).toEqual({ values: keptCount, members: 2 * keptCount });
      for (const [id, keys] of kept) {
        for (const key of keys) expect(await store.get(id, key)).toBe(JSON.stringify(key));
      }
    } finally {
      await store.close();
      await own.clean();
      await connection.close();
    }
  });

  it.skipIf(!reachable)(
    "keeps triggers and the store's own key kinds apart for any keys, and its purge removes exactly what expired",
    async () => {
      const own = testPrefix();
      const connection = new RedisConnection(REDIS_BASE_URL, own.prefix, createLogger("silent"));
      await connection.ready();
      const store = new RedisStateStore(connection);
      let run = 0;
      const entry = fc.record({ trigger: fc.integer({ min: 0, max: 2 }), key: anyKey, expires: fc.boolean() });
      try {
        await assertProperty(
          fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 12 }), async (entries) => {
            await own.clean();
            const triggers = [0, 1, 2].map((i) => `run-${++run}-${i}`);
            const model = triggers.map(() => new Map<string, { value: string; expires: boolean }>());
            for (const [i, { trigger, key, expires }] of entries.entries()) {
              const value = JSON.stringify(i);
              await store.put(triggers[trigger]!, key, value, expires ? 20 : undefined, 1000);
              model[trigger]!.set(key, { value, expires });
            }
            const expiring = model.flatMap((keys, t) =>
              [...keys].filter(([, e]) => e.expires).map(([key]) => [triggers[t]!, key] as const),
            );
            await eventually("every expiring value gone", () => Promise.all(expiring.map(([id, key]) => store.get(id, key))), {
              until: (values) => values.every((v) => v === null),
            });
            await store.purge();
            const live = model.map((keys) => new Map([...keys].filter(([, e]) => !e.expires)));
            const liveCount = live.reduce((sum, keys) => sum + keys.size, 0);
            expect(await inventory(connection)).toEqual({ values: liveCount, members: 2 * liveCount });
            for (const [t, id] of triggers.entries()) {
              for (const other of live.flat().flatMap((keys) => [...keys.keys()])) {
                expect(await store.get(id, other)).toBe(live[t]!.get(other)?.value ?? null);
              }
              const listed = await store.list(id, "", 100);
              expect(listed.map((e) => [e.key, JSON.stringify(e.value)])).toEqual(
                [...live[t]!].map(([key, e]) => [key, e.value]).sort(([x], [y]) => Buffer.compare(Buffer.from(x!), Buffer.from(y!))),
              );
            }
          }),
          { numRuns: 40 },
        );
      } finally {
        await store.close();
        await own.clean();
        await connection.close();
      }
    },
  );

  it.skipIf(!reachable)("purges expired keys from the sets of a trigger that stopped writing", async () => {
    const store = new RedisStateStore(redis);
    const id = `trigger-${++count}`;
    for (const key of ["a", "b"]) await store.put(id, key, "1", 30, 10);
    await store.put(id, "kept", "1", undefined, 10);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const sets = [`${redis.prefix}trigger-state:expiry:${id}`, `${redis.prefix}trigger-state:keys:${id}`];
    for (const set of sets) expect(await redis.commands.zcard(set)).toBe(3);
    expect(await store.purge()).toBe(0);
    for (const set of sets) expect(await redis.commands.zrange(set, 0, -1)).toEqual(["kept"]);
    await store.close();
  });

  it.skipIf(!reachable)("goes on past a trigger whose keys it cannot purge, and reports each failure", async () => {
    const own = testPrefix();
    const connection = new RedisConnection(REDIS_BASE_URL, own.prefix, createLogger("silent"));
    await connection.ready();
    const failures: (string | null)[] = [];
    const store = new RedisStateStore(connection, { background: false, onFailure: ({ triggerId }) => failures.push(triggerId) });
    try {
      // Not a sorted set where the store keeps one: a key written by hand, or by something else sharing the prefix.
      await connection.commands.set(`${own.prefix}trigger-state:expiry:damaged`, "x");
      const triggers = ["one", "two", "three"];
      for (const id of triggers) {
        await store.put(id, "gone", "1", 20, 10);
        await store.put(id, "kept", "2", undefined, 10);
      }
      await eventually('every "gone" value expired', () => Promise.all(triggers.map((id) => store.get(id, "gone"))), {
        until: (values) => values.every((value) => value === null),
      });
      expect(await store.purge()).toBe(1);
      expect(failures).toEqual(["damaged"]);
      expect(await inventory(connection)).toEqual({ values: 3 + 1, members: 2 * 3 });
    } finally {
      await store.close();
      await own.clean();
      await connection.close();
    }
  });

  it.skipIf(!reachable)("moves the keys of the layout of earlier versions, keeping values and expiries", async () => {
    const own = testPrefix();
    const connection = new RedisConnection(REDIS_BASE_URL, own.prefix, createLogger("silent"));
    await connection.ready();
    const store = new RedisStateStore(connection, { background: false });
    const commands = connection.commands;
    /** Writes a key as versions before this layout did: `tstate:<id>:v:<key>`, and the `exp` and `keys` sets. */
    const legacyPut = async (id: string, key: string, json: string, ttlMs?: number) => {
      const base = `${own.prefix}tstate:${id}:`;
      if (ttlMs) await commands.set(`${base}v:${key}`, json, "PX", ttlMs);
      else await commands.set(`${base}v:${key}`, json);
      await commands.zadd(`${base}exp`, ttlMs ? String(Date.now() + ttlMs) : "inf", key);
      await commands.zadd(`${base}keys`, 0, key);
    };
    try {
      const keys = ["n", "x:exp", "y:keys", "v:z", "*", "{a}"];
      for (const [i, key] of keys.entries()) await legacyPut("legacy-a", key, JSON.stringify(i));
      await legacyPut("legacy-a", "window", "7", 60_000);
      await legacyPut("legacy-b", "gone", "1", 1);
      await legacyPut("legacy-b", "written since", "1");
      await store.put("legacy-b", "written since", "2", undefined, 10); // by an instance of this version: it wins
      await eventually('the legacy value "gone" expired', () => commands.exists(`${own.prefix}tstate:legacy-b:v:gone`), {
        until: (count) => count === 0,
      });

      expect(await store.moveLegacyKeys()).toBe(2);
      expect(await commands.keys(`${own.prefix}tstate:*`)).toEqual([]);
      const listed = await store.list("legacy-a", "", 100);
      expect(listed.map((e) => [e.key, e.value])).toEqual(
        [...keys.map((key, i) => [key, i]), ["window", 7]].sort(([x], [y]) =>
          Buffer.compare(Buffer.from(String(x)), Buffer.from(String(y))),
        ),
      );
      const window = listed.find((e) => e.key === "window")!.expiresAt!.getTime() - Date.now();
      expect(window).toBeGreaterThan(50_000);
      expect(window).toBeLessThanOrEqual(60_000);
      expect(await store.list("legacy-b", "", 100)).toEqual([{ key: "written since", value: 2, expiresAt: null }]);
      expect(await inventory(connection)).toEqual({ values: keys.length + 2, members: 2 * (keys.length + 2) });
      expect(await store.moveLegacyKeys()).toBe(0);
    } finally {
      await store.close();
      await own.clean();
      await connection.close();
    }
  });

  it.skipIf(!reachable)(
    "a run out of time after waiting on a slow store half its limit fails as an outage, not as the trigger's fault",
    async () => {
      // Every state step answers, but slowly (60 ms each way): no step waits half the limit, yet together they do.
      const own = testPrefix();
      const { proxy, url } = await TcpProxy.inFront(REDIS_BASE_URL);
      const connection = new RedisConnection(url, own.prefix, createLogger("silent"));
      await connection.ready();
      const state = new TriggerState(new RedisStateStore(connection, { background: false }));
      try {
        proxy.setLatency(60);
        const stack = compileStack(Array.from({ length: 20 }, (_, i) => ({ get: `'k${i}'`, as: "v" })));
        const slow = await runStack(stack, stateInput, { timeoutMs: 500, state: state.live("slow-store") });
        expect(slow.outcome).toBe("FAILED");
        expect(slow.error).toEqual({
          code: "SERVICE_UNAVAILABLE",
          message: expect.stringMatching(/^stack\[\d+\]: timeout: the state store did not answer in time \(limit 500 ms\)$/),
        });
        proxy.setLatency(0);
        // The same store answering at once: a run out of time computing is the trigger's own failure.
        const busy = compileStack([
          { get: "'k0'", as: "v" },
          ...Array.from({ length: 50 }, () => ({ set: "payload.n", value: "$count([1..10000].$string($))" })),
        ]);
        const computing = await runStack(busy, stateInput, { timeoutMs: 50, state: state.live("slow-store") });
        expect(computing.error?.code).toBe("TRIGGER_FAILED");
        expect(computing.error?.message).toMatch(/timeout/);
      } finally {
        await state.store.close();
        await connection.close();
        await proxy.close();
        await own.clean();
      }
    },
  );
});
