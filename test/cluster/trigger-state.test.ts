import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import type { RedisStateStore } from "../../src/triggers/state/redis.js";
import { SEND_MESSAGE, type TestEvent } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { metricsUrl } from "../helpers/metrics.js";
import { spawnServer } from "../helpers/process.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { ADMIN_TOKEN, freshPostgresUrl, startServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

const STATE = `query ($id: ID!) { trigger(id: $id) { state { key value expiresAt } } }`;
const send = (server: { httpUrl: string }, channel: string, payload: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload }).then((r) => r.body);

describeRedis("trigger state shared through Redis", () => {
  // Two server processes and 60 concurrent sends: a loaded 2-core machine needs more than the default 30 s.
  it("keeps one atomic counter for concurrent senders on two instances, expires keys, and forgets a deleted trigger's state", {
    timeout: 90_000,
  }, async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix };
    const a = await spawnServer(env); // migrates the schema first
    const b = await spawnServer(env);

    const counter = await createTrigger(a.httpUrl, {
      channel: "count",
      stack: [
        { incr: "'total'", by: "payload.by", as: "total" },
        { set: "payload.total", value: "$total" },
      ],
    });
    // Both instances know the trigger before the senders start.
    await eventually("B running the counter trigger", () => send(b, "count", { by: 0 }), {
      until: (result) => result.data?.sendMessage.event?.payload.total === 0,
      timeoutMs: 10_000,
    });

    const amounts = Array.from({ length: 60 }, (_, i) => (i % 4) + 1);
    const results = await Promise.all(amounts.map((by, i) => send(i % 2 === 0 ? a : b, "count", { by })));
    const totals = results.map((r) => r.data!.sendMessage.event!.payload.total as number);
    const sum = amounts.reduce((x, y) => x + y, 0);
    expect(Math.max(...totals)).toBe(sum);
    expect(new Set(totals).size).toBe(amounts.length); // every increment saw a total of its own
    for (const server of [a, b]) {
      expect((await admin(server.httpUrl, STATE, { id: counter.id })).data!.trigger.state).toEqual([
        { key: "total", value: sum, expiresAt: null },
      ]);
    }

    // A fixed window: the ttl is set when the key is created, and an expired key reads as null at once.
    // 4 s, so that the second send lands inside the window even on a loaded machine.
    const window = await createTrigger(a.httpUrl, {
      channel: "window",
      stack: [
        { get: "'note'", as: "note" },
        { put: "'note'", value: "payload.note", ttl: "4" },
        { incr: "'hits'", ttl: "4", as: "hits" },
        { set: "payload", value: "{ 'before': $note, 'hits': $hits }" },
      ],
    });
    await eventually("B running the window trigger", () => send(b, "window", { note: "first" }), {
      until: (result) => result.data?.sendMessage.event?.payload.hits === 1,
      timeoutMs: 10_000,
    });
    expect((await send(a, "window", { note: "second" })).data!.sendMessage.event!.payload).toEqual({ before: "first", hits: 2 });
    const listed = (await admin(b.httpUrl, STATE, { id: window.id })).data!.trigger.state as { key: string; expiresAt: string }[];
    expect(listed.map((e) => e.key)).toEqual(["hits", "note"]);
    for (const entry of listed) expect(Date.parse(entry.expiresAt) - Date.now()).toBeLessThanOrEqual(4000);
    await new Promise((resolve) => setTimeout(resolve, 4100));
    expect((await admin(a.httpUrl, STATE, { id: window.id })).data!.trigger.state).toEqual([]);
    expect((await send(b, "window", { note: "third" })).data!.sendMessage.event!.payload).toEqual({ before: null, hits: 1 });

    // Deleting a trigger removes its keys from Redis.
    const redis = new Redis(REDIS_BASE_URL);
    try {
      const keysOfCounter = () => redis.keys(`${prefix}trigger-state:*${counter.id}*`);
      expect(await keysOfCounter()).not.toEqual([]);
      await admin(b.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: counter.id });
      await eventually("the deleted trigger's keys gone from Redis", keysOfCounter, {
        until: (keys) => keys.length === 0,
        timeoutMs: 10_000,
      });
    } finally {
      redis.disconnect();
    }
  });
});

describeRedis("trigger state keys in Redis", () => {
  it("keeps a client's keys apart from the store's own, moves keys of earlier versions at start, and counts purge failures", async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix };
    const first = await startServer(env);
    const topics = await createTrigger(first.httpUrl, {
      channel: "topics",
      stack: [{ put: "'topic:' & payload.topic", value: "payload.n" }],
    });
    const expiring = await createTrigger(first.httpUrl, { channel: "expiring", stack: [{ put: "payload.key", value: "1", ttl: "0.05" }] });
    const clientKeys = ["exp", "x:exp", "keys", "*", "[a]", "{b}"];
    for (const [n, topic] of clientKeys.entries()) {
      expect((await send(first, "topics", { topic, n })).data?.sendMessage.delivered).toBe(true);
      expect((await send(first, "expiring", { key: topic })).data?.sendMessage.delivered).toBe(true);
    }
    await first.stop();

    const redis = new Redis(REDIS_BASE_URL);
    try {
      // State as versions before this layout kept it, for the first trigger.
      await redis.set(`${prefix}tstate:${topics.id}:v:legacy`, "42");
      await redis.zadd(`${prefix}tstate:${topics.id}:exp`, "inf", "legacy");
      await redis.zadd(`${prefix}tstate:${topics.id}:keys`, 0, "legacy");
      // Not a sorted set where the store keeps one: the purge fails on it and goes on.
      await redis.set(`${prefix}trigger-state:expiry:damaged`, "x");
      const second = await startServer(env);
      expect(await redis.keys(`${prefix}tstate:*`)).toEqual([]);
      await eventually("the expiring trigger's values purged", () => redis.keys(`${prefix}trigger-state:value:${expiring.id}:*`), {
        until: (keys) => keys.length === 0,
        timeoutMs: 10_000,
      });
      expect(await (second.app.services.triggerState.store as RedisStateStore).purge()).toBe(1);
      const metrics = await fetch(metricsUrl(second.httpUrl), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(await metrics.text()).toMatch(/^realtime_trigger_state_purge_failures_total 1$/m);
      // The expired keys are gone from the sets; every other key stayed, the moved one included.
      expect(await redis.exists(`${prefix}trigger-state:expiry:${expiring.id}`, `${prefix}trigger-state:keys:${expiring.id}`)).toBe(0);
      const state = (await admin(second.httpUrl, STATE, { id: topics.id })).data!.trigger.state as { key: string; value: unknown }[];
      expect(state.map((entry) => [entry.key, entry.value])).toEqual(
        [...clientKeys.map((topic, n) => [`topic:${topic}`, n]), ["legacy", 42]].sort(([x], [y]) => (String(x) < String(y) ? -1 : 1)),
      );
    } finally {
      redis.disconnect();
    }
  });
});
