/**
 * Trigger state operations per second, through the stores a run's state steps use: the database
 * store on SQLite (a file in a temporary folder) and on PostgreSQL (a schema of its own, dropped
 * after), and the Redis store (a key prefix of its own, deleted after). Not part of `npm run bench`.
 *
 *   npx tsx bench/state-ops.ts [--ops=5000] [--concurrency=1,100] [--postgres=postgres://127.0.0.1:5432/test] [--redis=redis://127.0.0.1:6379] [--stores=sqlite,postgres,redis]
 *
 * For each store and concurrency c, c loops run the same operation `--ops` times in all, then the
 * "run" mix: get, get, put, incr (the stack of the state tests), counted as four operations.
 *
 * - get: one of 1,000 keys; put: one of 1,000 keys, a small JSON value; incr (spread): one of
 *   1,000 keys; incr (hot): one key every loop increments.
 *
 * Prints operations per second and the 99th percentile of one operation's latency, in µs. Asserts
 * nothing. A store whose server is unreachable is skipped, by name.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type Database, migrate, openDatabase } from "../src/db.js";
import { createLogger } from "../src/logger.js";
import { RedisConnection } from "../src/realtime/redis.js";
import { RedisStateStore } from "../src/triggers/state/redis.js";
import { DatabaseStateStore, type TriggerStateStore } from "../src/triggers/state/state.js";

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, ...value] = arg.replace(/^--/, "").split("=");
    return [key!, value.length ? value.join("=") : "true"] as const;
  }),
);
const OPS = Number(args.get("ops") ?? 5000);
const CONCURRENCY = (args.get("concurrency") ?? "1,100").split(",").map(Number);
const POSTGRES_URL = args.get("postgres") ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = args.get("redis") ?? "redis://127.0.0.1:6379";
const STORES = (args.get("stores") ?? "sqlite,postgres,redis").split(",");
const KEYS = 1000;
const MAX_KEYS = 100_000;

type Operation = (i: number) => Promise<unknown>;

/** The operations measured, on one trigger's state. */
function operations(store: TriggerStateStore, triggerId: string): [string, Operation, number][] {
  const key = (i: number) => `key:${i % KEYS}`;
  return [
    ["get", (i) => store.get(triggerId, key(i)), 1],
    ["put", (i) => store.put(triggerId, key(i), JSON.stringify({ n: i }), undefined, MAX_KEYS), 1],
    ["incr (spread)", (i) => store.incr(triggerId, `n:${i % KEYS}`, 1, undefined, MAX_KEYS), 1],
    ["incr (hot)", () => store.incr(triggerId, "total", 1, undefined, MAX_KEYS), 1],
    [
      "run: get, get, put, incr",
      async (i) => {
        await store.get(triggerId, key(i));
        await store.get(triggerId, `topic:${i % 3}`);
        await store.put(triggerId, key(i), JSON.stringify({ n: i }), undefined, MAX_KEYS);
        await store.incr(triggerId, "total", 1, undefined, MAX_KEYS);
      },
      4,
    ],
  ];
}

interface Row {
  readonly store: string;
  readonly operation: string;
  readonly concurrency: number;
  readonly opsPerSecond: number;
  readonly p99Micros: number;
}

/** Runs `operation` `count` times from `concurrency` loops; operations per second and p99 of one call. */
async function measure(operation: Operation, count: number, concurrency: number, weight: number) {
  const latencies = new Float64Array(count);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t = performance.now();
        await operation(i);
        latencies[i] = performance.now() - t;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort();
  return { opsPerSecond: (count * weight) / seconds, p99Micros: latencies[Math.floor(count * 0.99)]! * 1000 };
}

async function bench(name: string, store: TriggerStateStore, triggerId: string, rows: Row[]): Promise<void> {
  const ops = operations(store, triggerId);
  for (const [, operation] of ops) await measure(operation, Math.min(OPS, 1000), 10, 1); // warm-up
  for (const concurrency of CONCURRENCY) {
    for (const [operation, run, weight] of ops) {
      const count = Math.max(1, Math.round(OPS / weight));
      rows.push({ store: name, operation, concurrency, ...(await measure(run, count, concurrency, weight)) });
      const row = rows.at(-1)!;
      console.error(`${name} ${operation} ×${concurrency}: ${Math.round(row.opsPerSecond)} ops/s, p99 ${Math.round(row.p99Micros)} µs`);
    }
  }
}

/** A trigger row for the state's foreign key. */
async function createTrigger(db: Database): Promise<string> {
  const id = "bench-trigger";
  await db.prisma.trigger.create({ data: { id, name: id, tags: [], actions: ["MESSAGE"], channel: "bench", stack: [] } });
  return id;
}

async function benchDatabase(name: string, url: string, rows: Row[]): Promise<void> {
  await migrate(url);
  const db = await openDatabase(url);
  const store = new DatabaseStateStore(db, { background: false });
  try {
    await bench(name, store, await createTrigger(db), rows);
  } finally {
    await store.close();
    await db.close();
  }
}

const rows: Row[] = [];
if (STORES.includes("sqlite")) {
  const dir = mkdtempSync(join(tmpdir(), "bench-state-"));
  try {
    await benchDatabase("SQLite", `file:${join(dir, "state.db")}`, rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (STORES.includes("postgres")) {
  const schema = `bench_state_${process.pid}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  const reachable = await admin.connect().then(
    () => true,
    () => false,
  );
  if (!reachable) console.error(`skipped, PostgreSQL unreachable at ${POSTGRES_URL}`);
  else {
    try {
      await admin.query(`CREATE SCHEMA "${schema}"`);
      const url = new URL(POSTGRES_URL);
      url.searchParams.set("schema", schema);
      await benchDatabase("PostgreSQL", url.href, rows);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  }
}
if (STORES.includes("redis")) {
  const prefix = `bench-state-${process.pid}:`;
  const redis = new RedisConnection(REDIS_URL, prefix, createLogger("silent"));
  const reachable = await Promise.race([
    redis.ready().then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
  ]).catch(() => false);
  if (!reachable) console.error(`skipped, Redis unreachable at ${REDIS_URL}`);
  else {
    const store = new RedisStateStore(redis, { background: false });
    try {
      await bench("Redis", store, "bench-trigger", rows);
    } finally {
      await store.close();
      const keys = await redis.commands.keys(`${prefix}*`);
      if (keys.length > 0) await redis.commands.del(...keys);
    }
  }
  await redis.close();
}

console.log("| store | operation | concurrency | ops/s | p99 µs |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const row of rows) {
  console.log(`| ${row.store} | ${row.operation} | ${row.concurrency} | ${Math.round(row.opsPerSecond)} | ${Math.round(row.p99Micros)} |`);
}
