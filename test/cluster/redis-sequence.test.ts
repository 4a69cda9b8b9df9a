/**
 * RedisSequence against the real Redis: one counter per channel shared by every instance, resuming
 * from history when it does not exist, with an expiry renewed by every message.
 */
import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { RedisConnection, RedisSequence } from "../../src/realtime/redis.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function connect(prefix: string): Promise<RedisConnection> {
  const connection = new RedisConnection(REDIS_BASE_URL, prefix, createLogger("silent"));
  cleanups.push(() => connection.close());
  await connection.ready();
  return connection;
}

describeRedis("sequence numbers in Redis", () => {
  it("numbers a channel once across instances, resumes from history when the counter is missing, and renews its expiry on use", async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    let historyEnds = 40;
    let resumed = 0;
    const initial = async () => {
      resumed += 1;
      return historyEnds;
    };
    const ttl = 600;
    const a = new RedisSequence(await connect(prefix), initial, ttl);
    const b = new RedisSequence(await connect(prefix), initial, ttl);

    // Both instances at once, from a counter that does not exist yet: every number once, no gap.
    const numbers = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).next("room")));
    expect([...numbers].sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => 41 + i));
    expect(await a.next("other")).toBe(41); // channels count apart

    const raw = new Redis(REDIS_BASE_URL);
    cleanups.push(async () => void raw.disconnect());
    const key = `${prefix}seq:room`;
    const remaining = await raw.ttl(key);
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(ttl);
    await raw.expire(key, 5);
    expect(await b.next("room")).toBe(101);
    expect(await raw.ttl(key)).toBeGreaterThan(5); // renewed by the message

    // The counter gone (expired): numbering resumes where the channel's history ends.
    await raw.del(key);
    historyEnds = 7;
    const before = resumed;
    expect(await a.next("room")).toBe(8);
    expect(resumed).toBe(before + 1);
    expect(await b.next("room")).toBe(9);
  });
});
