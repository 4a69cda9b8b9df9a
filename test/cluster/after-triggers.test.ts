import { afterAll, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { spawnServer } from "../helpers/process.js";
import { startReceiver } from "../helpers/receiver.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { freshPostgresUrl } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = `whsec_${Buffer.from("an-after-trigger-secret-0123456").toString("base64")}`;
const RUNS = `query ($id: ID!) { trigger(id: $id) { runs(last: 200) { id outcome attempts } } }`;
type Run = { id: string; outcome: string; attempts: number };

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

describeRedis("AFTER trigger runs on two instances (PostgreSQL + Redis)", () => {
  it("runs each pending run on one instance at a time, and takes over the runs of an instance killed mid-attempt", {
    timeout: 180_000,
  }, async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    // A slow receiver: many runs are in progress at once on both instances.
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 300 }));
    const env = {
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_URL: REDIS_BASE_URL,
      REDIS_PREFIX: prefix,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
      TRIGGER_TIMEOUT_MS: "3000",
    };
    const a = await spawnServer(env); // migrates the schema first
    const b = await spawnServer(env);
    const trigger = await createTrigger(a.httpUrl, {
      channel: "archive",
      timing: "AFTER",
      // A state step too: the AFTER threads of both instances count in one Redis counter.
      stack: [
        { incr: "'sent'", as: "sent" },
        { http: { url: `'${receiver.origin}/archive'`, body: "$merge([payload, { 'sent': $sent }])" }, as: "r" },
      ],
    });
    // Both instances know the trigger before the senders start.
    await eventually("trigger on b", async () => (await admin(b.httpUrl, RUNS, { id: trigger.id })).data?.trigger != null, {
      timeoutMs: 20_000,
    });

    const count = 80;
    const results = await Promise.all(
      Array.from({ length: count }, (_, n) =>
        httpGraphQL(n % 2 === 0 ? a.httpUrl : b.httpUrl, SEND_MESSAGE, { channel: "archive", payload: { n } }),
      ),
    );
    expect(results.every((result) => result.body.data?.sendMessage?.delivered === true)).toBe(true);
    // Kill one instance while it has attempts under way: their leases run out and the other takes them over.
    await eventually("deliveries under way", () => receiver.requests.length >= 10, { timeoutMs: 30_000 });
    await a.stop("SIGKILL");

    await eventually(
      "every run DELIVERED",
      async () => {
        const runs = (await admin(b.httpUrl, RUNS, { id: trigger.id })).data?.trigger.runs as Run[];
        return runs.length === count && runs.every((run) => run.outcome === "DELIVERED");
      },
      { timeoutMs: 90_000 },
    );
    const runs = (await admin(b.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs as Run[];
    const ids = new Set(runs.map((run) => `msg_${run.id}`));
    expect(new Set(receiver.requests.map((request) => request.webhookId))).toEqual(ids);
    // No run was ever sent by two instances at once.
    expect(receiver.maxInFlightPerId()).toBe(1);
    // Every payload arrived; a run is sent again only when the instance sending it died first (an attempt
    // is counted when claimed, so one claimed just before the kill may not have sent its request).
    expect(new Set(receiver.requests.map((request) => JSON.parse(request.body).n)).size).toBe(count);
    const extraAttempts = runs.reduce((sum, run) => sum + run.attempts - 1, 0);
    expect(receiver.requests.length).toBeLessThanOrEqual(count + extraAttempts);
    expect(runs.filter((run) => run.attempts === 1).length).toBeGreaterThan(0);
    // Atomic across instances: every request carries a count of its own.
    const counts = receiver.requests.map((request) => JSON.parse(request.body).sent);
    expect(new Set(counts).size).toBe(counts.length);
    const state = await admin(b.httpUrl, `query ($id: ID!) { trigger(id: $id) { state(prefix: "sent") { key value } } }`, {
      id: trigger.id,
    });
    expect(state.data!.trigger.state[0].value).toBeGreaterThanOrEqual(Math.max(count, ...counts));
  });
});
