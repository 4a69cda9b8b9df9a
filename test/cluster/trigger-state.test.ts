import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import { SEND_MESSAGE, type TestEvent } from "../helpers/channels.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { type ServerProcess, spawnServer } from "../helpers/process.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { freshPostgresUrl } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

const STATE = `query ($id: ID!) { trigger(id: $id) { state { key value expiresAt } } }`;
const send = (server: ServerProcess, channel: string, payload: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload }).then((r) => r.body);

describeRedis("trigger state shared through Redis", () => {
  it("keeps one atomic counter for concurrent senders on two instances, expires keys, and forgets a deleted trigger's state", async () => {
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
    await expectEventually(async () => (await send(b, "count", { by: 0 })).data?.sendMessage.event?.payload.total === 0);

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
    const window = await createTrigger(a.httpUrl, {
      channel: "window",
      stack: [
        { get: "'note'", as: "note" },
        { put: "'note'", value: "payload.note", ttl: "1.5" },
        { incr: "'hits'", ttl: "1.5", as: "hits" },
        { set: "payload", value: "{ 'before': $note, 'hits': $hits }" },
      ],
    });
    await expectEventually(async () => (await send(b, "window", { note: "first" })).data?.sendMessage.event?.payload.hits === 1);
    expect((await send(a, "window", { note: "second" })).data!.sendMessage.event!.payload).toEqual({ before: "first", hits: 2 });
    const listed = (await admin(b.httpUrl, STATE, { id: window.id })).data!.trigger.state as { key: string; expiresAt: string }[];
    expect(listed.map((e) => e.key)).toEqual(["hits", "note"]);
    for (const entry of listed) expect(Date.parse(entry.expiresAt) - Date.now()).toBeLessThanOrEqual(1500);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect((await admin(a.httpUrl, STATE, { id: window.id })).data!.trigger.state).toEqual([]);
    expect((await send(b, "window", { note: "third" })).data!.sendMessage.event!.payload).toEqual({ before: null, hits: 1 });

    // Deleting a trigger removes its keys from Redis.
    const redis = new Redis(REDIS_BASE_URL);
    try {
      expect(await redis.keys(`${prefix}tstate:${counter.id}:*`)).not.toEqual([]);
      await admin(b.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: counter.id });
      await expectEventually(async () => (await redis.keys(`${prefix}tstate:${counter.id}:*`)).length === 0);
    } finally {
      redis.disconnect();
    }
  });
});

async function expectEventually(probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
