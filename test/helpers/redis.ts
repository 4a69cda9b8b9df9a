import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { describe, inject } from "vitest";

/** The Redis the suites use: `TEST_REDIS_URL`, else the local server. Each test uses a key prefix of its own. */
export const REDIS_BASE_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** True when the Redis suites must run (`TEST_REDIS=required`, set by CI, or an explicit `TEST_REDIS_URL`). */
export const REDIS_REQUIRED = process.env.TEST_REDIS === "required" || process.env.TEST_REDIS_URL !== undefined;

/** Whether a Redis answers PING at `url`. */
export async function redisReachable(url = REDIS_BASE_URL): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** A fresh key prefix, and a function that deletes every key under it. */
export function testPrefix(url = REDIS_BASE_URL): { prefix: string; clean: () => Promise<void> } {
  const prefix = `t_${randomBytes(6).toString("hex")}:`;
  return {
    prefix,
    clean: async () => {
      const client = new Redis(url);
      try {
        const keys = await client.keys(`${prefix}*`);
        if (keys.length > 0) await client.del(...keys);
      } finally {
        client.disconnect();
      }
    },
  };
}

/** `describe` for suites that need Redis (and PostgreSQL): skipped, by name, when either is unreachable. */
export function describeRedis(name: string, suite: () => void): void {
  const reachable = inject("redisReachable") && inject("postgresReachable");
  if (!reachable) console.warn(`skipped, Redis or PostgreSQL unreachable: ${name}`);
  describe.skipIf(!reachable)(name, suite);
}
