import { beforeAll, describe, expect, it } from "vitest";
import { JOIN_CHANNEL, SEND_MESSAGE, type TestEvent } from "./helpers/channels.js";
import { connectWs, httpGraphQL, wsGraphQL } from "./helpers/graphql.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { clientToken } from "./helpers/tokens.js";
import { admin, createTrigger } from "./helpers/triggers.js";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
type StateEntry = { key: string; value: unknown; expiresAt: string | null };
const STATE = `query ($id: ID!, $prefix: String, $first: Int) { trigger(id: $id) { state(prefix: $prefix, first: $first) { key value expiresAt } } }`;
const CLEAR = `mutation ($id: ID!, $prefix: String) { clearTriggerState(id: $id, prefix: $prefix) }`;
const TEST_TRIGGER = `mutation ($id: ID!, $event: TriggerTestEventInput!) {
  testTrigger(id: $id, event: $event) { outcome payload error trace { path step result error } }
}`;

async function stateOf(id: string, prefix?: string, on = server): Promise<StateEntry[]> {
  const body = await admin(on.httpUrl, STATE, { id, prefix });
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.trigger.state;
}

const sendHttp = (channel: string, payload: unknown, on = server) =>
  httpGraphQL<SendData>(on.httpUrl, SEND_MESSAGE, { channel, payload }).then((r) => r.body);

const RATE_LIMIT = [
  { incr: "'rate:' & client.id", ttl: "10", as: "count" },
  { if: "$count > 5", then: [{ reject: "'At most 5 messages per 10 seconds'", code: "RATE_LIMITED" }] },
];

describe("state steps", () => {
  it("refuses invalid state steps at save, naming the field's path", async () => {
    const cases: [unknown[], string][] = [
      [[{ get: "'k'" }], "stack[0].as"],
      [[{ get: "'k'", as: "response" }], "stack[0].as"],
      [[{ put: "'k'" }], "stack[0].value"],
      [[{ put: "'k'", value: "1", ttl: "(" }], "stack[0].ttl"],
      [[{ if: "true", then: [{ incr: "", as: "n" }] }], "stack[0].then[0].incr"],
      [[{ incr: "'k'", step: "1" }], "stack[0].step"],
      [[{ delete: 5 }], "stack[0].delete"],
    ];
    for (const [stack, path] of cases) {
      const body = await admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: "bad", actions: ["MESSAGE"], channel: "bad", stack },
      });
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", path });
      expect(body.errors?.[0]?.message.startsWith(`${path}:`)).toBe(true);
    }
  });

  it("limits each client to 5 messages per 10 seconds in a room (the README example)", async () => {
    const trigger = await createTrigger(server.httpUrl, { channel: "limited:*", stack: RATE_LIMIT });
    const alice = await connectWs(server.wsUrl);
    const bob = await connectWs(server.wsUrl);
    const send = (client: typeof alice, n: number) => wsGraphQL<SendData>(client, SEND_MESSAGE, { channel: "limited:1", payload: { n } });
    const results = [];
    for (let n = 1; n <= 7; n++) results.push(await send(alice, n));
    expect(results.slice(0, 5).map((r) => r.data?.sendMessage.delivered)).toEqual([true, true, true, true, true]);
    for (const late of results.slice(5)) expect(late.errors?.[0]).toMatchObject({ extensions: { code: "RATE_LIMITED" } });
    expect((await send(bob, 1)).data?.sendMessage.delivered).toBe(true); // per client

    const aliceId = results[0]!.data!.sendMessage.event!.client.id;
    const entries = await stateOf(trigger.id, "rate:");
    expect(entries.map((e) => e.key).sort()).toHaveLength(2);
    const aliceEntry = entries.find((e) => e.key === `rate:${aliceId}`)!;
    expect(aliceEntry.value).toBe(7);
    const expiresIn = Date.parse(aliceEntry.expiresAt!) - Date.now();
    expect(expiresIn).toBeGreaterThan(0);
    expect(expiresIn).toBeLessThanOrEqual(10_000);
  });

  it("counts joins (the README example)", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "lobby",
      actions: ["JOIN"],
      stack: [
        { incr: "'joins:' & channel", as: "joins" },
        { set: "payload", value: "{ 'joinNumber': $joins }" },
      ],
    });
    const numbers = [];
    for (let i = 0; i < 3; i++) {
      const client = await connectWs(server.wsUrl);
      const joined = await wsGraphQL<{ joinChannel: { event: TestEvent } }>(client, JOIN_CHANNEL, { channel: "lobby" });
      numbers.push(joined.data!.joinChannel.event.payload.joinNumber);
      await client.dispose();
    }
    expect(numbers).toEqual([1, 2, 3]);
    expect(await stateOf(trigger.id, "joins:")).toEqual([{ key: "joins:lobby", value: 3, expiresAt: null }]);
  });

  it("remembers values between events, sees its own writes at once, and deletes", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "topics",
      stack: [
        { get: "'topic'", as: "previous" },
        { if: "payload.topic", then: [{ put: "'topic'", value: "payload.topic" }] },
        { if: "payload.forget", then: [{ delete: "'topic'" }] },
        { get: "'topic'", as: "now" },
        { set: "payload", value: "{ 'previous': $previous, 'now': $now }" },
      ],
    });
    const payloads = [];
    for (const payload of [{ topic: "cats" }, {}, { topic: { kind: "dogs", tags: ["a", 1, null] } }, { forget: true }, {}]) {
      payloads.push((await sendHttp("topics", payload)).data!.sendMessage.event!.payload);
    }
    expect(payloads).toEqual([
      { previous: null, now: "cats" },
      { previous: "cats", now: "cats" },
      { previous: "cats", now: { kind: "dogs", tags: ["a", 1, null] } },
      { previous: { kind: "dogs", tags: ["a", 1, null] }, now: null },
      { previous: null, now: null },
    ]);
    expect(await stateOf(trigger.id)).toEqual([]);
  });

  it("keeps every increment of concurrent senders", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "busy",
      stack: [
        { incr: "'total'", by: "payload.by", as: "total" },
        { set: "payload.total", value: "$total" },
      ],
    });
    const sends = Array.from({ length: 40 }, (_, i) => sendHttp("busy", { by: (i % 3) + 1 }));
    const totals = (await Promise.all(sends)).map((r) => r.data!.sendMessage.event!.payload.total as number);
    const expected = Array.from({ length: 40 }, (_, i) => (i % 3) + 1).reduce((a, b) => a + b, 0);
    expect(Math.max(...totals)).toBe(expected);
    expect(new Set(totals).size).toBe(40); // each increment saw a distinct total
    expect((await stateOf(trigger.id))[0]).toMatchObject({ key: "total", value: expected, expiresAt: null });
  });

  it("lets keys expire: an expired key reads as null and an incr starts a new window", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "window",
      stack: [
        { get: "'seen'", as: "seen" },
        { put: "'seen'", value: "true", ttl: "1" },
        { incr: "'n'", ttl: "1", as: "n" },
        { set: "payload", value: "{ 'seen': $seen, 'n': $n }" },
      ],
    });
    const payload = async () => (await sendHttp("window", {})).data!.sendMessage.event!.payload;
    expect(await payload()).toEqual({ seen: null, n: 1 });
    expect(await payload()).toEqual({ seen: true, n: 2 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await stateOf(trigger.id)).toEqual([]);
    expect(await payload()).toEqual({ seen: null, n: 1 });
  });

  it("fails the step on a bad key, by or ttl, and on a value that is not a whole number for incr", async () => {
    const cases: [unknown[], RegExp][] = [
      [[{ get: "''", as: "x" }], /^stack\[0\]: the key must evaluate to a string of 1 to 200 characters/],
      [[{ get: "$pad('', 201, 'k')", as: "x" }], /^stack\[0\]: the key must evaluate/],
      [[{ get: "42", as: "x" }], /^stack\[0\]: the key must evaluate/],
      [[{ incr: "'k'", by: "1.5" }], /^stack\[0\]: by must evaluate to a whole number/],
      [[{ put: "'k'", value: "1", ttl: "-1" }], /^stack\[0\]: ttl must evaluate to a number of seconds/],
      [[{ put: "'word'", value: "'text'" }, { incr: "'word'" }], /^stack\[1\]: state key "word" holds a value that is not a whole number/],
    ];
    for (const [stack, message] of cases) {
      const trigger = await createTrigger(server.httpUrl, { channel: "failing", stack, onError: "REJECT" });
      const sent = await sendHttp("failing", {});
      expect(sent.errors?.[0]?.extensions).toMatchObject({ code: "TRIGGER_FAILED" });
      const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 1) { outcome error } } }`, {
        id: trigger.id,
      });
      expect(runs.data!.trigger.runs[0].outcome).toBe("FAILED");
      expect(runs.data!.trigger.runs[0].error).toMatch(message);
      await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: trigger.id });
    }
  });

  it("testTrigger reads the stored state, writes none, and traces what it would have written", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "dry",
      stack: [
        { incr: "'n'", as: "n" },
        { put: "'last'", value: "payload", ttl: "60" },
        { get: "'last'", as: "last" },
        { delete: "'gone'" },
        { set: "payload", value: "{ 'n': $n, 'last': $last }" },
      ],
    });
    await sendHttp("dry", { text: "stored" });
    const before = await stateOf(trigger.id);
    const tested = await admin(server.httpUrl, TEST_TRIGGER, {
      id: trigger.id,
      event: { action: "MESSAGE", channel: "dry", payload: { text: "test" } },
    });
    expect(tested.data!.testTrigger.payload).toEqual({ n: 2, last: { text: "test" } });
    expect(tested.data!.testTrigger.trace.map((t: { result: unknown }) => t.result)).toEqual([
      { incr: "n", value: 2, ttl: null },
      { put: "last", value: { text: "test" }, ttl: 60 },
      { text: "test" },
      { delete: "gone" },
      { n: 2, last: { text: "test" } },
    ]);
    expect(await stateOf(trigger.id)).toEqual(before);
    expect(before.map((e) => [e.key, e.value])).toEqual([
      ["last", { text: "stored" }],
      ["n", 1],
    ]);
  });

  it("lists by prefix, clears by prefix, and forgets a deleted trigger's state", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "lists",
      stack: [{ put: "payload.key", value: "payload.value" }],
    });
    for (const key of ["a:1", "a:2", "A:3", "b:1", "a%_"]) await sendHttp("lists", { key, value: key });
    expect((await stateOf(trigger.id, "a:")).map((e) => e.key)).toEqual(["a:1", "a:2"]);
    expect((await stateOf(trigger.id, "a%")).map((e) => e.key)).toEqual(["a%_"]);
    expect((await admin(server.httpUrl, STATE, { id: trigger.id, first: 2 })).data!.trigger.state).toHaveLength(2);
    expect((await admin(server.httpUrl, CLEAR, { id: trigger.id, prefix: "a:" })).data!.clearTriggerState).toBe(2);
    expect((await stateOf(trigger.id)).map((e) => e.key)).toEqual(["A:3", "a%_", "b:1"]);
    expect((await admin(server.httpUrl, CLEAR, { id: "nope" })).errors?.[0]?.extensions).toMatchObject({ code: "NOT_FOUND" });
    await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: trigger.id });
    expect(await server.app.services.db.prisma.triggerState.count({ where: { triggerId: trigger.id } })).toBe(0);
  });

  it("is admin only", async () => {
    const trigger = await createTrigger(server.httpUrl, { channel: "private", stack: [] });
    const { body } = await httpGraphQL(server.httpUrl, CLEAR, { id: trigger.id });
    expect(body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });
});

describe("state and the database's other transactions", () => {
  it("keeps state written while another of the server's transactions is open, and undone", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "undone",
      stack: [
        { incr: "'n'", as: "n" },
        { set: "payload.n", value: "$n" },
      ],
    });
    // A transaction of the server's own (an admin change, say) that ends in a rollback while messages flow.
    let sent: Awaited<ReturnType<typeof sendHttp>>[] = [];
    const rolledBack = server.app.services.db.prisma.$transaction(async (tx) => {
      await tx.trigger.findMany({ where: { id: trigger.id } });
      sent = await Promise.all(Array.from({ length: 5 }, () => sendHttp("undone", {})));
      throw new Error("undone");
    });
    await expect(rolledBack).rejects.toThrow("undone");
    expect(sent.map((result) => result.data?.sendMessage.event?.payload.n).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(await stateOf(trigger.id)).toEqual([{ key: "n", value: 5, expiresAt: null }]);
  });
});

describe("state bounds", () => {
  it("fails a write over the key or value bound, and onError applies", async () => {
    const bounded = await startServer({ TRIGGER_STATE_MAX_KEYS: "3", TRIGGER_STATE_MAX_VALUE_BYTES: "100" });
    const trigger = await createTrigger(bounded.httpUrl, {
      channel: "bounded",
      onError: "DROP",
      stack: [{ put: "payload.key", value: "payload.value" }],
    });
    const send = (key: string, value: unknown) => sendHttp("bounded", { key, value }, bounded);
    for (const key of ["k1", "k2", "k3"]) expect((await send(key, 1)).data!.sendMessage.delivered).toBe(true);
    expect((await send("k4", 1)).data!.sendMessage.delivered).toBe(false); // dropped by onError
    expect((await send("k1", 2)).data!.sendMessage.delivered).toBe(true); // an existing key may change
    expect((await send("k2", "x".repeat(200))).data!.sendMessage.delivered).toBe(false);
    const runs = await admin(bounded.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 3) { outcome error } } }`, {
      id: trigger.id,
    });
    expect(runs.data!.trigger.runs.map((r: { error: string | null }) => r.error)).toEqual([
      expect.stringMatching(/^stack\[0\]: size: a state value of 202 bytes as JSON is over the limit of 100$/),
      null,
      expect.stringMatching(/^stack\[0\]: the trigger holds 3 state keys already \(TRIGGER_STATE_MAX_KEYS\)/),
    ]);
    expect((await stateOf(trigger.id, "", bounded)).map((e) => [e.key, e.value])).toEqual([
      ["k1", 2],
      ["k2", 1],
      ["k3", 1],
    ]);
  });
});

describe("state and the run's time limit", () => {
  // Each step spends a little time before it writes, so 100 of them outlast the 5 ms limit on any machine.
  const ONE_THE_SLOW_WAY = "$count([1..300].$string($)) - 299";
  it("stops writing state once the run is out of time", async () => {
    const hurried = await startServer({ TRIGGER_TIMEOUT_MS: "5" });
    const trigger = await createTrigger(hurried.httpUrl, {
      channel: "slow",
      stack: Array.from({ length: 100 }, () => ({ incr: "'n'", by: ONE_THE_SLOW_WAY })),
    });
    const sent = await sendHttp("slow", {}, hurried);
    expect(sent.errors?.[0]?.extensions).toMatchObject({ code: "TRIGGER_FAILED" });
    const runs = await admin(hurried.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 1) { outcome error } } }`, {
      id: trigger.id,
    });
    expect(runs.data!.trigger.runs[0].error).toMatch(
      /^stack\[\d+\]: timeout: (the trigger ran out of time \(limit 5 ms\)|Evaluation timeout after 5 milliseconds)/,
    );
    const count = async () => ((await stateOf(trigger.id, "", hurried))[0]?.value as number | undefined) ?? 0;
    const afterRun = await count();
    expect(afterRun).toBeLessThan(100);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await count()).toBeLessThanOrEqual(afterRun + 1); // at most the write in flight at the limit lands
  });
});

describe("state across a restart", () => {
  it("keeps state when the server restarts on the same database", async () => {
    const first = await startServer();
    const trigger = await createTrigger(first.httpUrl, {
      channel: "durable",
      stack: [
        { incr: "'n'", as: "n" },
        { set: "payload.n", value: "$n" },
      ],
    });
    await sendHttp("durable", {}, first);
    await sendHttp("durable", {}, first);
    await first.stop();
    const second = await startServer({}, first.dataDir);
    const third = await sendHttp("durable", {}, second);
    expect(third.data!.sendMessage.event!.payload.n).toBe(3);
    expect(await stateOf(trigger.id, "", second)).toEqual([{ key: "n", value: 3, expiresAt: null }]);
  });
});

describe("state under concurrent senders", () => {
  it("runs every event of 100 authenticated senders through get, get, put and incr, and counts each acknowledged one", async () => {
    const JWT_SECRET = "state-concurrency-secret-0123456789-abcdef";
    // Every run is kept, so that a failed one can be shown.
    const busy = await startServer({ JWT_SECRET, TRIGGER_RUNS_KEPT: "1000" });
    const trigger = await createTrigger(busy.httpUrl, {
      channel: "crowd:*",
      stack: [
        { get: "'last:' & client.id", as: "last" },
        { get: "'topic:' & payload.topic", as: "topic" },
        { put: "'last:' & client.id", value: "payload.n" },
        { incr: "'total'", as: "total" },
        { set: "payload.total", value: "$total" },
      ],
    });
    const SENDERS = 100;
    const MESSAGES = 10;
    const senders = await Promise.all(
      Array.from({ length: SENDERS }, async (_, i) => connectWs(busy.wsUrl, { authToken: await clientToken(JWT_SECRET, `sender-${i}`) })),
    );
    // Each sender sends its messages one after the other, all senders at once.
    const results = await Promise.all(
      senders.map(async (client, i) => {
        const sent = [];
        for (let n = 0; n < MESSAGES; n++) {
          sent.push(await wsGraphQL<SendData>(client, SEND_MESSAGE, { channel: `crowd:${i % 10}`, payload: { n, topic: `t${n % 3}` } }));
        }
        return sent;
      }),
    );
    const all = results.flat();
    const codes = all.flatMap((result) => result.errors ?? []).map((error) => String(error.extensions?.code ?? error.message));
    const failedRuns = await admin(busy.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 3, outcome: FAILED) { error } } }`, {
      id: trigger.id,
    });
    expect(codes.length, `refused with ${[...new Set(codes)]}; runs: ${JSON.stringify(failedRuns.data?.trigger.runs)}`).toBe(0);
    const events = all.map((result) => result.data!.sendMessage.event!);
    expect(events.every((event) => event.client.authenticated)).toBe(true);
    expect(new Set(events.map((event) => event.payload.total)).size).toBe(SENDERS * MESSAGES); // each increment saw a total of its own
    expect(await stateOf(trigger.id, "total", busy)).toEqual([{ key: "total", value: SENDERS * MESSAGES, expiresAt: null }]);
  });
});
