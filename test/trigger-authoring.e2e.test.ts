import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "./helpers/channels.js";
import { connectWs, type GraphQLResponse, httpGraphQL, sseSubscribe, wsGraphQL, wsSubscribe } from "./helpers/graphql.js";
import { assertProperty } from "./helpers/property.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "./helpers/server.js";
import { clientToken } from "./helpers/tokens.js";
import { admin, createTrigger, stackStep } from "./helpers/triggers.js";

const JWT_SECRET = "a-test-secret-that-is-long-enough-0123456789";
let server: TestServer;
beforeAll(async () => {
  server = await startServer({ JWT_SECRET });
});

const TEST_TRIGGER = `mutation ($id: ID, $draft: CreateTriggerInput, $event: TriggerTestEventInput!) {
  testTrigger(id: $id, draft: $draft, event: $event) {
    outcome payload commandOptions error errorCode log matches matchNote trace { path step result error }
  }
}`;
const CREATE = `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id revision } }`;
const UPDATE = `mutation ($id: ID!, $input: UpdateTriggerInput!, $expectedRevision: Int) {
  updateTrigger(id: $id, input: $input, expectedRevision: $expectedRevision) { id revision name stack }
}`;
const ROLLBACK = `mutation ($id: ID!, $revision: Int!) { rollbackTrigger(id: $id, revision: $revision) { revision name stack } }`;
const REVISIONS = `query ($id: ID!, $last: Int) { trigger(id: $id) { revision revisions(last: $last) { revision config note createdAt } } }`;
const RUN_FIELDS = `triggerId outcome clientId revision input output truncated log`;
const RUNS = `query ($id: ID!, $outcome: TriggerOutcome) { trigger(id: $id) { runs(last: 10, outcome: $outcome) { ${RUN_FIELDS} } } }`;
const TRIGGER_RUNS = `subscription ($triggerId: ID) { triggerRuns(triggerId: $triggerId) { ${RUN_FIELDS} } }`;

type Transport = "HTTP" | "WebSocket";
/** Runs an admin operation over one transport and returns the response. */
async function adminOver(transport: Transport, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse> {
  if (transport === "HTTP") return admin(server.httpUrl, query, variables);
  const client = await connectWs(server.wsUrl, { adminToken: ADMIN_TOKEN });
  const result = await wsGraphQL(client, query, variables);
  await client.dispose();
  return result as GraphQLResponse;
}

const ROLE_GATE = [{ if: "client.extras.role != 'mod'", then: [{ reject: "'Moderators only'", code: "NOT_A_MODERATOR" }] }];

describe.each<Transport>(["HTTP", "WebSocket"])("testTrigger over %s", (transport) => {
  it("runs a draft that is validated like createTrigger and stores nothing", async () => {
    const before = (await admin(server.httpUrl, `{ triggers { id } }`)).data!.triggers;
    const result = await adminOver(transport, TEST_TRIGGER, {
      draft: {
        name: "draft",
        channel: "room:*",
        actions: ["MESSAGE"],
        stack: [
          { set: "commandOptions.seen", value: "true" },
          { set: "payload.text", value: "$uppercase(payload.text)" },
        ],
      },
      event: { action: "MESSAGE", channel: "room:1", payload: { text: "hi" }, commandOptions: { to: "x" } },
    });
    expect(result.errors).toBeUndefined();
    expect(result.data!.testTrigger).toMatchObject({
      outcome: "MODIFIED",
      payload: { text: "HI" },
      commandOptions: { to: "x", seen: true },
      matches: true,
      matchNote: null,
    });
    expect((await admin(server.httpUrl, `{ triggers { id } }`)).data!.triggers).toEqual(before);
  });

  it("needs exactly one of id and draft, and refuses an invalid draft as createTrigger does", async () => {
    const event = { action: "MESSAGE", channel: "room:1" };
    const neither = await adminOver(transport, TEST_TRIGGER, { event });
    expect(neither.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const stored = await createTrigger(server.httpUrl, { channel: "room:*", stack: [] });
    const both = await adminOver(transport, TEST_TRIGGER, {
      id: stored.id,
      event,
      draft: { name: "d", channel: "x", actions: ["MESSAGE"], stack: [] },
    });
    expect(both.errors?.[0]).toMatchObject({ message: "Give exactly one of id and draft", extensions: { code: "BAD_USER_INPUT" } });
    const draft = { name: "bad", channel: "room:*", actions: ["MESSAGE"], stack: [{ set: "payload.x", value: "(((" }] };
    const tested = await adminOver(transport, TEST_TRIGGER, { draft, event });
    const created = await adminOver(transport, CREATE, { input: draft });
    expect(tested.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(tested.errors?.[0]?.message).toBe(created.errors?.[0]?.message);
    expect(tested.errors?.[0]?.message).toMatch(/^stack\[0\]\.value: expression does not compile/);
  });

  it("tests as an anonymous or an authenticated client with claims, showing the missing-value pitfall", async () => {
    const draft = { name: "mods", channel: "mods:*", actions: ["JOIN"], stack: ROLE_GATE };
    const asClient = (client: Record<string, unknown> | undefined, clientId?: string) =>
      adminOver(transport, TEST_TRIGGER, { draft, event: { action: "JOIN", channel: "mods:1", client, clientId } });
    // A missing role compares as false, so `!=` lets an anonymous client through: the test shows it.
    expect((await asClient(undefined)).data!.testTrigger.outcome).toBe("DELIVERED");
    expect((await asClient({ id: "bob", authenticated: true, extras: { role: "user" } })).data!.testTrigger).toMatchObject({
      outcome: "REJECTED",
      error: "Moderators only",
      errorCode: "NOT_A_MODERATOR",
    });
    const safe = { ...draft, stack: [{ if: "$not(client.extras.role = 'mod')", then: ROLE_GATE[0]!.then }] };
    const anonymous = await adminOver(transport, TEST_TRIGGER, { draft: safe, event: { action: "JOIN", channel: "mods:1" } });
    expect(anonymous.data!.testTrigger.outcome).toBe("REJECTED");
    const mod = await adminOver(transport, TEST_TRIGGER, {
      draft: { ...safe, stack: [{ set: "payload", value: "client" }, ...safe.stack] },
      event: { action: "JOIN", channel: "mods:1", clientId: "ann", client: { authenticated: true, extras: { role: "mod" } } },
    });
    expect(mod.data!.testTrigger).toMatchObject({
      outcome: "MODIFIED",
      payload: { id: "ann", authenticated: true, extras: { role: "mod" } },
    });
    const claimsWithoutToken = await asClient({ authenticated: false, extras: { role: "mod" } });
    expect(claimsWithoutToken.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const twoIds = await asClient({ id: "a" }, "b");
    expect(twoIds.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("says when the trigger would not run on the event, and still runs the stack", async () => {
    const stored = await createTrigger(server.httpUrl, { channel: "room:*", actions: ["JOIN"], stack: [{ log: "'ran'" }] });
    const wrongAction = await adminOver(transport, TEST_TRIGGER, { id: stored.id, event: { action: "MESSAGE", channel: "room:1" } });
    expect(wrongAction.data!.testTrigger).toMatchObject({
      matches: false,
      matchNote: "this trigger runs on JOIN only, not on MESSAGE",
      log: ["ran"],
    });
    const wrongChannel = await adminOver(transport, TEST_TRIGGER, { id: stored.id, event: { action: "JOIN", channel: "other:1" } });
    expect(wrongChannel.data!.testTrigger).toMatchObject({ matches: false, matchNote: "room:* does not match other:1" });
    const unknown = await adminOver(transport, TEST_TRIGGER, { id: "no-such-trigger", event: { action: "JOIN", channel: "room:1" } });
    expect(unknown.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("lists the trace in stack order, every if before the steps it ran", async () => {
    const result = await adminOver(transport, TEST_TRIGGER, {
      draft: {
        name: "nested",
        channel: "n",
        actions: ["MESSAGE"],
        stack: [{ if: "true", then: [{ log: "1" }, { if: "false", then: [{ log: "2" }], else: [{ log: "3" }] }] }, { log: "4" }],
      },
      event: { action: "MESSAGE", channel: "n" },
    });
    expect(result.data!.testTrigger.trace.map((step: { path: string }) => step.path)).toEqual([
      "stack[0]",
      "stack[0].then[0]",
      "stack[0].then[1]",
      "stack[0].then[1].else[0]",
      "stack[1]",
    ]);
  });
});

describe("a draft is validated exactly as createTrigger validates", () => {
  const draft = fc.record({
    name: fc.constantFrom("ok", "", "x".repeat(201)),
    channel: fc.constantFrom("room:*", "bad channel", "*"),
    actions: fc.constantFrom(["MESSAGE"], [], ["JOIN", "LEAVE"]),
    stack: fc.oneof(fc.array(stackStep, { maxLength: 4 }), fc.constant({ not: "a list" })),
  });

  it("refuses the same drafts with the same message, and accepts the same ones", async () => {
    await assertProperty(
      fc.asyncProperty(draft, async (input) => {
        const tested = await admin(server.httpUrl, TEST_TRIGGER, { draft: input, event: { action: "MESSAGE", channel: "room:1" } });
        const created = await admin(server.httpUrl, CREATE, { input });
        expect(tested.errors?.[0]?.message).toBe(created.errors?.[0]?.message);
        expect(tested.errors?.[0]?.extensions?.code).toBe(created.errors?.[0]?.extensions?.code);
        if (created.data)
          await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: created.data.createTrigger.id });
      }),
      { numRuns: 40 },
    );
  });
});

describe.each<Transport>(["HTTP", "WebSocket"])("revisions over %s", (transport) => {
  it("stores a revision per change, refuses a stale expectedRevision with CONFLICT and rolls back", async () => {
    const created = (
      await adminOver(transport, CREATE, {
        input: { name: `v1 ${transport}`, channel: `rev-${transport}`, actions: ["MESSAGE"], stack: [{ set: "payload.v", value: "1" }] },
      })
    ).data!.createTrigger;
    expect(created.revision).toBe(1);
    const second = await adminOver(transport, UPDATE, {
      id: created.id,
      input: { name: `v2 ${transport}`, stack: [{ set: "payload.v", value: "2" }] },
      expectedRevision: 1,
    });
    expect(second.data!.updateTrigger).toMatchObject({ revision: 2, name: `v2 ${transport}` });
    const stale = await adminOver(transport, UPDATE, { id: created.id, input: { name: "lost" }, expectedRevision: 1 });
    expect(stale.errors?.[0]).toMatchObject({ extensions: { code: "CONFLICT", revision: 2 } });
    const history = (await adminOver(transport, REVISIONS, { id: created.id })).data!.trigger;
    expect(history.revision).toBe(2);
    expect(history.revisions.map((r: { revision: number; note: string }) => [r.revision, r.note])).toEqual([
      [2, "updated"],
      [1, "created"],
    ]);
    expect(history.revisions[1].config).toEqual({
      name: `v1 ${transport}`,
      description: null,
      active: true,
      tags: [],
      actions: ["MESSAGE"],
      channel: `rev-${transport}`,
      order: 0,
      onError: "REJECT",
      timing: "BEFORE",
      stack: [{ set: "payload.v", value: "1" }],
    });
    const rolledBack = await adminOver(transport, ROLLBACK, { id: created.id, revision: 1 });
    expect(rolledBack.data!.rollbackTrigger).toEqual({ revision: 3, name: `v1 ${transport}`, stack: [{ set: "payload.v", value: "1" }] });
    const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: `rev-${transport}`, payload: {} });
    expect(sent.body.data!.sendMessage.event.payload).toEqual({ v: 1 });
    const latest = (await adminOver(transport, REVISIONS, { id: created.id, last: 1 })).data!.trigger.revisions;
    expect(latest).toMatchObject([{ revision: 3, note: "rolled back to revision 1", config: history.revisions[1].config }]);
    const missing = await adminOver(transport, ROLLBACK, { id: created.id, revision: 99 });
    expect(missing.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });
});

describe("expectedRevision under concurrent edits", () => {
  it("lets exactly one of several edits based on the same revision through; the others change nothing", async () => {
    await assertProperty(
      fc.asyncProperty(fc.integer({ min: 2, max: 6 }), async (editors) => {
        const { id } = await createTrigger(server.httpUrl, { channel: "race", stack: [] });
        const results = await Promise.all(
          Array.from({ length: editors }, (_, n) =>
            admin(server.httpUrl, UPDATE, { id, input: { name: `${id} editor ${n}` }, expectedRevision: 1 }),
          ),
        );
        const winners = results.filter((result) => result.data?.updateTrigger);
        expect(winners).toHaveLength(1);
        expect(results.filter((result) => result.errors?.[0]?.extensions?.code === "CONFLICT")).toHaveLength(editors - 1);
        const stored = (
          await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { name revision revisions { revision } } }`, { id })
        ).data!.trigger;
        expect(stored).toEqual({ name: winners[0]!.data!.updateTrigger.name, revision: 2, revisions: [{ revision: 2 }, { revision: 1 }] });
      }),
      { numRuns: 8 },
    );
  });
});

describe("runs worth reading", () => {
  it("record client, revision, input and output, cap them at 4 KiB and filter by outcome", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "readable",
      stack: [
        { if: "payload.bad", then: [{ reject: "'no'" }] },
        { set: "payload.seen", value: "true" },
      ],
    });
    const bearer = await clientToken(JWT_SECRET, "carol", { claims: { role: "user" } });
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "readable", payload: { n: 1 }, options: { tag: "a" } }, { token: bearer });
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "readable", payload: { bad: true } }, { token: bearer });
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "readable", payload: { big: "x".repeat(5000) } }, { token: bearer });
    const runs = (await admin(server.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs;
    expect(runs).toHaveLength(3);
    expect(runs[2]).toEqual({
      triggerId: trigger.id,
      outcome: "MODIFIED",
      clientId: "carol",
      revision: 1,
      input: { payload: { n: 1 }, commandOptions: { tag: "a" } },
      output: { payload: { n: 1, seen: true }, commandOptions: { tag: "a" } },
      truncated: false,
      log: [],
    });
    expect(runs[0]).toMatchObject({ truncated: true });
    expect(typeof runs[0].input).toBe("string");
    expect(Buffer.byteLength(runs[0].input)).toBeLessThanOrEqual(4096);
    const rejected = (await admin(server.httpUrl, RUNS, { id: trigger.id, outcome: "REJECTED" })).data!.trigger.runs;
    expect(rejected).toEqual([expect.objectContaining({ outcome: "REJECTED", input: { payload: { bad: true }, commandOptions: null } })]);
  });

  it("stream live to admins over WebSocket and SSE, one trigger's or all", async () => {
    const watched = await createTrigger(server.httpUrl, { channel: "live-a", stack: [{ log: "payload.n" }] });
    await createTrigger(server.httpUrl, { channel: "live-b", stack: [] });
    const adminClient = await connectWs(server.wsUrl, { adminToken: ADMIN_TOKEN });
    const one = wsSubscribe(adminClient, TRIGGER_RUNS, { triggerId: watched.id });
    const all = wsSubscribe(adminClient, TRIGGER_RUNS, {});
    const sse = sseSubscribe(server.httpUrl, TRIGGER_RUNS, { triggerId: watched.id }, { authorization: `Bearer ${ADMIN_TOKEN}` });
    // Subscriptions start asynchronously: send warm-up messages (negative n) until every stream has one.
    const streams = [one, all, sse];
    const warmedUp = streams.map((stream) => stream.next(10_000));
    let settled = false;
    void Promise.all(warmedUp).finally(() => (settled = true));
    for (let n = -1; !settled; n--) {
      await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "live-a", payload: { n } });
      await Promise.race([Promise.all(warmedUp), new Promise((resolve) => setTimeout(resolve, 100))]);
    }
    const nextReal = async (stream: { next(): Promise<{ data?: Record<string, any> | null }> }) => {
      for (;;) {
        const result = await stream.next();
        if (result.data!.triggerRuns.input.payload.n >= 0) return result.data!.triggerRuns;
      }
    };
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "live-b", payload: { n: 0 } });
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "live-a", payload: { n: 1 } });
    const expected = {
      triggerId: watched.id,
      outcome: "DELIVERED",
      revision: 1,
      log: [1],
      input: { payload: { n: 1 }, commandOptions: null },
    };
    expect(await nextReal(one)).toMatchObject(expected);
    expect(await nextReal(sse)).toMatchObject(expected);
    expect((await nextReal(all)).input).toEqual({ payload: { n: 0 }, commandOptions: null });
    expect(await nextReal(all)).toMatchObject(expected);
    one.unsubscribe();
    all.unsubscribe();
    sse.unsubscribe();
  });

  it("refuse the live stream to everyone but the admin", async () => {
    const refusal = async (subscription: { next(): Promise<{ errors?: readonly { extensions?: Record<string, unknown> }[] }> }) =>
      (await subscription.next()).errors?.[0]?.extensions?.code;
    expect(await refusal(wsSubscribe(await connectWs(server.wsUrl), TRIGGER_RUNS, {}))).toBe("UNAUTHENTICATED");
    const signedIn = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "dave") });
    expect(await refusal(wsSubscribe(signedIn, TRIGGER_RUNS, {}))).toBe("FORBIDDEN");
    const overSse = sseSubscribe(server.httpUrl, TRIGGER_RUNS, {}, { authorization: `Bearer ${await clientToken(JWT_SECRET, "erin")}` });
    expect(await refusal(overSse)).toBe("FORBIDDEN");
    const adminClient = await connectWs(server.wsUrl, { adminToken: ADMIN_TOKEN });
    expect(await refusal(wsSubscribe(adminClient, TRIGGER_RUNS, { triggerId: "nope" }))).toBe("NOT_FOUND");
  });
});
