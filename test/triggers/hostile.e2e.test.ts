import { beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_SUBSCRIPTION, SEND_MESSAGE, type TestEvent } from "../helpers/channels.js";
import { connectWs, httpGraphQL, type Subscription, wsSubscribe } from "../helpers/graphql.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";
import { HOSTILE_CASES, hostilePayload } from "./hostile-corpus.js";

/** The server's trigger time limit here (the default). */
const TIMEOUT_MS = 1000;
/** The guarantee: no run holds the server longer than its time limit plus this. */
const GRACE_MS = 100;

let server: TestServer;
let bystander: Subscription<{ channel: TestEvent }>;
beforeAll(async () => {
  // Every hostile message is sent by the same anonymous client; the rate limit is not what is tested.
  server = await startServer({ TRIGGER_TIMEOUT_MS: String(TIMEOUT_MS), MAX_MESSAGES_PER_SECOND: "1000" });
  bystander = wsSubscribe<{ channel: TestEvent }>(await connectWs(server.wsUrl), CHANNEL_SUBSCRIPTION, { name: "bystander" });
  await bystander.next(); // its own join: the subscription is live
  // A first message and a first trigger run, so that what the cases time is not the server warming up.
  await createTrigger(server.httpUrl, {
    name: "warm-up",
    channel: "warm-up",
    stack: [{ set: "payload.n", value: "$count($match('a a', /a/))" }],
  });
  await Promise.all([send("warm-up", {}), bystanderLatency(-1)]);
});

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
const send = (channel: string, payload: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload }).then((r) => r.body);

/** Sends on the bystander channel and resolves with how long the message took to reach the subscriber. */
async function bystanderLatency(n: number): Promise<number> {
  const started = performance.now();
  const [sent, received] = await Promise.all([send("bystander", { n }), bystander.next()]);
  expect(sent.data?.sendMessage.delivered).toBe(true);
  expect(received.data?.channel.payload).toEqual({ n });
  return performance.now() - started;
}

describe("the hostile corpus, through a real server", () => {
  const cases = HOSTILE_CASES.map((c, index) => [c.name, c, index] as const);

  it.each(cases)("%s", async (_name, hostile, index) => {
    const channel = `hostile:${index}`;
    if (hostile.expect === "refused: regex") {
      const created = await admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: "hostile", actions: ["MESSAGE"], channel, stack: hostile.stack },
      });
      expect(created.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(created.errors?.[0]?.message).toMatch(/: regex: .* is not supported/);
      return;
    }
    const trigger = await createTrigger(server.httpUrl, { name: `hostile ${index}`, channel, stack: hostile.stack });
    const payload = await hostilePayload(hostile);

    const hostileSend = send(channel, payload);
    // While the hostile run is under way: a bystander's message on another channel, and /health.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const healthStarted = performance.now();
    const [latency, health] = await Promise.all([
      bystanderLatency(index),
      fetch(server.httpUrl.replace("/graphql", "/health")).then((response) => ({
        status: response.status,
        ms: performance.now() - healthStarted,
      })),
    ]);
    const result = await hostileSend;

    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(TIMEOUT_MS + GRACE_MS);
    expect(latency).toBeLessThan(TIMEOUT_MS + GRACE_MS);
    if (hostile.expect === "ok") {
      expect(result.errors).toBeUndefined();
      expect(result.data?.sendMessage.delivered).toBe(true);
    } else {
      expect(result.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
      const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 1) { outcome error } } }`, {
        id: trigger.id,
      });
      expect(runs.data!.trigger.runs[0]).toMatchObject({
        outcome: "FAILED",
        error: expect.stringMatching(new RegExp(`^stack(\\[\\d+\\])?: (${hostile.expect}): `)),
      });
    }
  });

  it("takes the memory budget from TRIGGER_MEMORY_MB", async () => {
    const small = await startServer({ TRIGGER_MEMORY_MB: "1" });
    const stack = [{ set: "payload.n", value: "$count([1..10].$pad('', 100000, 'x'))" }]; // about 2 MiB of strings
    await createTrigger(small.httpUrl, { name: "budget", channel: "budget", stack });
    await createTrigger(server.httpUrl, { name: "budget", channel: "budget", stack });
    const refused = await httpGraphQL<SendData>(small.httpUrl, SEND_MESSAGE, { channel: "budget", payload: {} });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
    const tested = await admin(small.httpUrl, `{ triggers(channel: "budget") { runs(last: 1) { error } } }`);
    expect(tested.data!.triggers[0].runs[0].error).toBe("stack[0]: memory: the trigger built more than its memory budget of 1 MiB");
    expect((await send("budget", {})).data?.sendMessage.event?.payload).toEqual({ n: 10 });
  });

  it("shows the bound in testTrigger's result", async () => {
    const trigger = await createTrigger(server.httpUrl, { name: "pad", channel: "pad", stack: [{ log: "$pad('', 120000000, 'x')" }] });
    const tested = await admin(
      server.httpUrl,
      `mutation ($id: ID!) { testTrigger(id: $id, event: { action: MESSAGE, channel: "pad", payload: {} }) { outcome error } }`,
      { id: trigger.id },
    );
    expect(tested.data!.testTrigger).toEqual({
      outcome: "FAILED",
      error: "stack[0]: size: $pad's result of 120000000 characters is over the limit of 1000000",
    });
    expect((await fetch(server.httpUrl.replace("/graphql", "/health"))).status).toBe(200);
  });
});
