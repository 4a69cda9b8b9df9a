import { beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_SUBSCRIPTION, SEND_MESSAGE, type TestEvent } from "../helpers/channels.js";
import { MAX_HOLD_MS, timed, watchEventLoop } from "../helpers/event-loop.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL, type Subscription, wsSubscribe } from "../helpers/graphql.js";
import { scrape } from "../helpers/metrics.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";
import { HEAVY_CASES, HOSTILE_CASES, type HostileCase, hostilePayload } from "./hostile-corpus.js";

/** The server's trigger time limit here (the default). */
const TIMEOUT_MS = 1000;
/** The guarantee: no run holds the server longer than its time limit plus this. */
const GRACE_MS = 100;
/** The time limit on the server for heavy runs, which all finish (or hit their bound) well within it. */
const HEAVY_TIMEOUT_MS = 30_000;
/** Heavy messages sent at once. */
const AT_ONCE = 20;

/** A test server with a subscriber on a channel of its own, the bystander. */
interface Watched {
  readonly server: TestServer;
  readonly bystander: Subscription<{ channel: TestEvent }>;
}

let hostile: Watched;
let heavy: Watched;
beforeAll(async () => {
  // Every message here is sent by the same anonymous client; the rate limit is not what is tested.
  hostile = await watched({ TRIGGER_TIMEOUT_MS: String(TIMEOUT_MS), MAX_MESSAGES_PER_SECOND: "1000" });
  heavy = await watched({ TRIGGER_TIMEOUT_MS: String(HEAVY_TIMEOUT_MS), MAX_MESSAGES_PER_SECOND: "1000" });
});

async function watched(env: Record<string, string>): Promise<Watched> {
  const server = await startServer(env);
  const bystander = wsSubscribe<{ channel: TestEvent }>(await connectWs(server.wsUrl), CHANNEL_SUBSCRIPTION, { name: "bystander" });
  await bystander.next(); // its own join: the subscription is live
  const at = { server, bystander };
  // A first message and a first trigger run, so that what the cases time is not the server warming up.
  await createTrigger(server.httpUrl, {
    name: "warm-up",
    channel: "warm-up",
    stack: [{ set: "payload.n", value: "$count($match('a a', /a/))" }],
  });
  await Promise.all([send(server, "warm-up", {}), bystanderLatency(at, -1)]);
  return at;
}

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
const send = (server: TestServer, channel: string, payload: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload }).then((r) => r.body);

/** Sends on the bystander channel and resolves with how long the message took to reach the subscriber. */
async function bystanderLatency({ server, bystander }: Watched, n: number): Promise<number> {
  return (await timedBystander({ server, bystander }, n)).wallMs;
}

/** Sends on the bystander channel; how long the message took to reach the subscriber, in wall and CPU time. */
async function timedBystander({ server, bystander }: Watched, n: number) {
  return timed(async () => {
    const [sent, received] = await Promise.all([send(server, "bystander", { n }), bystander.next()]);
    expect(sent.data?.sendMessage.delivered).toBe(true);
    expect(received.data?.channel.payload).toEqual({ n });
  });
}

/** How many messages have entered the server's publish path, where triggers run (from /metrics). */
const messagesReceived = async (server: TestServer) =>
  (await scrape(server.httpUrl)).value("realtime_messages_received_total", { action: "MESSAGE" });

/** Asks for /health; its status, and how long the answer took in wall and CPU time. */
const timedHealth = (server: TestServer) => timed(async () => (await fetch(server.httpUrl.replace("/graphql", "/health"))).status);

/** Checks how a case's run ended: delivered, or failed on its bound (with the trigger's last run saying which). */
async function expectOutcome(server: TestServer, triggerId: string, hostile: HostileCase, result: Awaited<ReturnType<typeof send>>) {
  if (hostile.expect === "ok") {
    expect(result.errors).toBeUndefined();
    expect(result.data?.sendMessage.delivered).toBe(true);
    return;
  }
  expect(result.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
  const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 1) { outcome error } } }`, { id: triggerId });
  expect(runs.data!.trigger.runs[0]).toMatchObject({
    outcome: "FAILED",
    error: expect.stringMatching(new RegExp(`^stack(\\[\\d+\\])?: (${hostile.expect}): `)),
  });
}

describe("the hostile corpus, through a real server", () => {
  const cases = HOSTILE_CASES.map((c, index) => [c.name, c, index] as const);

  it.each(cases)("%s", async (_name, hostileCase, index) => {
    const { server } = hostile;
    const channel = `hostile:${index}`;
    if (hostileCase.expect === "refused: regex") {
      const created = await admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: "hostile", actions: ["MESSAGE"], channel, stack: hostileCase.stack },
      });
      expect(created.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(created.errors?.[0]?.message).toMatch(/: regex: .* is not supported/);
      return;
    }
    const trigger = await createTrigger(server.httpUrl, { name: `hostile ${index}`, channel, stack: hostileCase.stack });
    const payload = await hostilePayload(hostileCase);

    const before = await messagesReceived(server);
    const loop = watchEventLoop();
    let hostileAnswered = false;
    const hostileSend = send(server, channel, payload).finally(() => void (hostileAnswered = true));
    // Once the hostile message is in the publish path (its trigger runs next): a bystander's message
    // on another channel, and /health, each noting whether the hostile send was still unanswered.
    await eventually("the hostile message received", () => messagesReceived(server), { until: (count) => count > before, intervalMs: 5 });
    const [[latency, bystanderMeanwhile], [health, healthMeanwhile]] = await Promise.all([
      bystanderLatency(hostile, index).then((wallMs) => [wallMs, !hostileAnswered] as const),
      timedHealth(server).then((answer) => [answer, !hostileAnswered] as const),
    ]);
    const result = await hostileSend;
    const held = loop.stop();

    expect(health.value).toBe(200);
    expect(health.wallMs).toBeLessThan(TIMEOUT_MS + GRACE_MS);
    expect(latency).toBeLessThan(TIMEOUT_MS + GRACE_MS);
    expect(held.cpuMs).toBeLessThan(MAX_HOLD_MS);
    await expectOutcome(server, trigger.id, hostileCase, result);
    // A run that goes on to its time limit was still under way when both were answered: they were
    // served alongside it, not after it. (Most other runs end on their bound before the bystander's turn.)
    if (hostileCase.expect === "timeout")
      expect({ bystanderMeanwhile, healthMeanwhile }).toEqual({ bystanderMeanwhile: true, healthMeanwhile: true });
  });

  it("takes the memory budget from TRIGGER_MEMORY_MB", async () => {
    const { server } = hostile;
    const small = await startServer({ TRIGGER_MEMORY_MB: "1" });
    const stack = [{ set: "payload.n", value: "$count([1..10].$pad('', 100000, 'x'))" }]; // about 2 MiB of strings
    await createTrigger(small.httpUrl, { name: "budget", channel: "budget", stack });
    await createTrigger(server.httpUrl, { name: "budget", channel: "budget", stack });
    const refused = await httpGraphQL<SendData>(small.httpUrl, SEND_MESSAGE, { channel: "budget", payload: {} });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
    const tested = await admin(small.httpUrl, `{ triggers(channel: "budget") { runs(last: 1) { error } } }`);
    expect(tested.data!.triggers[0].runs[0].error).toBe("stack[0]: memory: the trigger built more than its memory budget of 1 MiB");
    expect((await send(server, "budget", {})).data?.sendMessage.event?.payload).toEqual({ n: 10 });
  });

  it("shows the bound in testTrigger's result", async () => {
    const { server } = hostile;
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

describe("heavy runs share the event loop", () => {
  it.each(HEAVY_CASES.map((c, index) => [c.name, c, index] as const))("%s", async (_name, heavyCase, index) => {
    const { server } = heavy;
    const channel = `heavy:${index}`;
    const trigger = await createTrigger(server.httpUrl, { name: `heavy ${index}`, channel, stack: heavyCase.stack });
    const payload = await hostilePayload(heavyCase);
    const loop = watchEventLoop();
    const result = await send(server, channel, payload);
    const held = loop.stop();
    expect(held.cpuMs).toBeLessThan(MAX_HOLD_MS);
    await expectOutcome(server, trigger.id, heavyCase, result);
  });

  it(`${AT_ONCE} heavy messages at once: the event loop is held for short stretches, and a bystander's message and /health are served meanwhile`, async () => {
    const { server } = heavy;
    const builder = HEAVY_CASES[0]!; // a string of 800,000 characters built, measured, cut and cleaned
    await createTrigger(server.httpUrl, { name: "builder", channel: "builder", stack: builder.stack });
    const before = await messagesReceived(server);
    const loop = watchEventLoop();
    let sending = true;
    const sends = Promise.all(Array.from({ length: AT_ONCE }, () => send(server, "builder", {}))).finally(() => {
      sending = false;
    });
    // Once every heavy message is in (taking 20 requests in costs what it costs, triggers or not)...
    await eventually(`${AT_ONCE} heavy messages received`, () => messagesReceived(server), {
      until: (count) => count >= before + AT_ONCE,
      timeoutMs: 60_000,
      intervalMs: 5,
    });
    // ...while their runs go on: a bystander's message on another channel, then /health, again and again.
    const served: { bystander: Awaited<ReturnType<typeof timedBystander>>; health: Awaited<ReturnType<typeof timedHealth>> }[] = [];
    for (let n = 0; sending; n++) {
      const bystander = await timedBystander(heavy, n);
      const health = await timedHealth(server);
      if (sending) served.push({ bystander, health });
    }
    const results = await sends;
    const held = loop.stop();

    for (const result of results) {
      expect(result.errors).toBeUndefined();
      expect(result.data?.sendMessage.event?.payload).toEqual({ length: 800_000, head: "1...........", digits: 6893 });
    }
    expect(served.length).toBeGreaterThan(0);
    for (const { bystander, health } of served) {
      expect(health.value).toBe(200);
      // Counted in the server's CPU time: the work done before the answer (on a loaded machine the wall time is longer).
      expect(health.cpuMs).toBeLessThan(MAX_HOLD_MS);
      expect(bystander.cpuMs).toBeLessThan(MAX_HOLD_MS);
    }
    expect(held.cpuMs).toBeLessThan(MAX_HOLD_MS);
  }, 120_000); // twenty runs of a second of work each, on a loaded machine
});
