import { beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_SUBSCRIPTION, JOIN_CHANNEL, joinBySubscription, SEND_MESSAGE, type TestEvent } from "./helpers/channels.js";
import { connectWs, httpGraphQL, wsGraphQL, wsSubscribe } from "./helpers/graphql.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { admin, createTrigger, TRIGGER_FIELDS } from "./helpers/triggers.js";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
const send = (channel: string, payload: unknown, options?: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload, options }).then((r) => r.body);

describe("triggers on messages", () => {
  it("delivers a transformed message to subscribers and returns it to the sender", async () => {
    await createTrigger(server.httpUrl, {
      name: "shout",
      channel: "shout",
      stack: [{ set: "payload.text", value: "$uppercase(payload.text)" }],
    });
    const { subscription } = await joinBySubscription(await connectWs(server.wsUrl), "shout");
    const result = await send("shout", { text: "hello", keep: 1 });
    expect(result.data!.sendMessage).toMatchObject({ delivered: true, event: { payload: { text: "HELLO", keep: 1 } } });
    expect((await subscription.next()).data!.channel).toEqual(result.data!.sendMessage.event);
  });

  it("drops: delivered false and nothing reaches subscribers", async () => {
    await createTrigger(server.httpUrl, { channel: "quiet", stack: [{ if: "payload.secret", then: [{ drop: true }] }] });
    const { subscription } = await joinBySubscription(await connectWs(server.wsUrl), "quiet");
    expect((await send("quiet", { secret: true })).data!.sendMessage).toEqual({ delivered: false, event: null });
    // The next message is the first thing the subscriber gets: the dropped one never came.
    expect((await send("quiet", { secret: false })).data!.sendMessage.delivered).toBe(true);
    expect((await subscription.next()).data!.channel.payload).toEqual({ secret: false });
  });

  it("rejects with the trigger's code and message, and the default code without one", async () => {
    await createTrigger(server.httpUrl, {
      channel: "guarded",
      stack: [
        { if: "$length(payload.text) > 5", then: [{ reject: "'Too long: ' & $length(payload.text)", code: "MESSAGE_TOO_LONG" }] },
        { if: "payload.text = 'no'", then: [{ reject: "'Refused'" }] },
      ],
    });
    const { subscription } = await joinBySubscription(await connectWs(server.wsUrl), "guarded");
    const long = await send("guarded", { text: "far too long" });
    expect(long.errors?.[0]).toMatchObject({ message: "Too long: 12", extensions: { code: "MESSAGE_TOO_LONG" } });
    const plain = await send("guarded", { text: "no" });
    expect(plain.errors?.[0]).toMatchObject({ message: "Refused", extensions: { code: "TRIGGER_REJECTED" } });
    // A message that passes is the first thing the subscriber gets: the refused ones never came.
    expect((await send("guarded", { text: "ok" })).data!.sendMessage.delivered).toBe(true);
    expect((await subscription.next()).data!.channel.payload).toEqual({ text: "ok" });
  });

  it("gives the stack the real inputs: action, command, channel, commandOptions, payload and client id", async () => {
    await createTrigger(server.httpUrl, {
      channel: "inputs",
      actions: ["MESSAGE", "JOIN"],
      stack: [{ set: "payload", value: "{ 'seen': $ }" }],
    });
    const client = await connectWs(server.wsUrl);
    const { subscription, join } = await joinBySubscription(client, "inputs", { role: "reader" });
    expect(join.payload.seen).toEqual({
      action: "join",
      command: "join",
      channel: "inputs",
      commandOptions: { role: "reader" },
      payload: null,
      client: { id: join.client.id, authenticated: false, extras: null },
    });
    const sent = await wsGraphQL<SendData>(client, SEND_MESSAGE, { channel: "inputs", payload: { n: 1 }, options: { urgent: true } });
    expect(sent.data!.sendMessage.event!.payload.seen).toEqual({
      action: "message",
      command: "message",
      channel: "inputs",
      commandOptions: { urgent: true },
      payload: { n: 1 },
      client: { id: join.client.id, authenticated: false, extras: null },
    });
    expect((await subscription.next()).data!.channel).toEqual(sent.data!.sendMessage.event);
  });

  it("chains several triggers in ascending order, then creation time, each seeing the previous output", async () => {
    await createTrigger(server.httpUrl, {
      name: "third",
      channel: "chain",
      order: 5,
      stack: [{ set: "payload.steps", value: "$append(payload.steps, 'third')" }],
    });
    await createTrigger(server.httpUrl, {
      name: "first",
      channel: "chain",
      order: 1,
      stack: [{ set: "payload.steps", value: "$append(payload.steps, 'first')" }],
    });
    await createTrigger(server.httpUrl, {
      name: "second",
      channel: "ch*",
      order: 1,
      stack: [{ set: "payload.steps", value: "$append(payload.steps, 'second')" }],
    });
    const result = await send("chain", { steps: [] });
    expect(result.data!.sendMessage.event!.payload.steps).toEqual(["first", "second", "third"]);
    const listed = await admin(server.httpUrl, `{ triggers(channel: "chain") { name } }`);
    expect(listed.data!.triggers.map((t: { name: string }) => t.name)).toEqual(["first", "second", "third"]);
  });

  it("matches patterns: room:* runs for room:1 and room:a/b but not for room: or lobby", async () => {
    await createTrigger(server.httpUrl, { channel: "room:*", stack: [{ set: "payload.tagged", value: "true" }] });
    expect((await send("room:1", {})).data!.sendMessage.event!.payload).toEqual({ tagged: true });
    expect((await send("room:a/b", {})).data!.sendMessage.event!.payload).toEqual({ tagged: true });
    expect((await send("roomy", {})).data!.sendMessage.event!.payload).toEqual({});
  });

  it("stops applying a trigger at once when it is deactivated or deleted, and applies it again when reactivated", async () => {
    const trigger = await createTrigger(server.httpUrl, { channel: "toggle", stack: [{ return: "'changed'" }] });
    expect((await send("toggle", "original")).data!.sendMessage.event!.payload).toBe("changed");
    const off = await admin(server.httpUrl, `mutation ($id: ID!) { updateTrigger(id: $id, input: { active: false }) { active } }`, {
      id: trigger.id,
    });
    expect(off.data!.updateTrigger.active).toBe(false);
    expect((await send("toggle", "original")).data!.sendMessage.event!.payload).toBe("original");
    await admin(server.httpUrl, `mutation ($id: ID!) { updateTrigger(id: $id, input: { active: true }) { active } }`, { id: trigger.id });
    expect((await send("toggle", "original")).data!.sendMessage.event!.payload).toBe("changed");
    const deleted = await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: trigger.id });
    expect(deleted.data!.deleteTrigger).toBe(true);
    expect((await send("toggle", "original")).data!.sendMessage.event!.payload).toBe("original");
    expect((await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: trigger.id })).data!.deleteTrigger).toBe(
      false,
    );
  });

  it("applies the onError policy when evaluation fails", async () => {
    const failing = [{ set: "payload.x", value: "$notAFunction(1)" }];
    await createTrigger(server.httpUrl, { channel: "fail-reject", stack: failing });
    await createTrigger(server.httpUrl, { channel: "fail-drop", onError: "DROP", stack: failing });
    await createTrigger(server.httpUrl, { channel: "fail-deliver", onError: "DELIVER", stack: failing });
    const rejected = await send("fail-reject", { a: 1 });
    expect(rejected.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
    expect((await send("fail-drop", { a: 1 })).data!.sendMessage).toEqual({ delivered: false, event: null });
    expect((await send("fail-deliver", { a: 1 })).data!.sendMessage).toMatchObject({ delivered: true, event: { payload: { a: 1 } } });
  });

  it("stops a runaway expression at the guardrail and keeps serving", async () => {
    await createTrigger(server.httpUrl, {
      channel: "runaway",
      stack: [{ set: "payload.r", value: "( $f := function($x) { $f($x + 1) }; $f(0) )" }],
    });
    const result = await send("runaway", {});
    expect(result.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
    expect((await send("elsewhere", { ok: 1 })).data!.sendMessage.delivered).toBe(true);
    expect((await fetch(server.httpUrl.replace("/graphql", "/health"))).status).toBe(200);
  });
});

describe("triggers on joins", () => {
  it("refuses a subscription and joinChannel when a join trigger rejects", async () => {
    await createTrigger(server.httpUrl, { channel: "vip", actions: ["JOIN"], stack: [{ reject: "'Members only'", code: "NOT_A_MEMBER" }] });
    const client = await connectWs(server.wsUrl);
    const subscription = wsSubscribe(client, CHANNEL_SUBSCRIPTION, { name: "vip" });
    const first = await subscription.next();
    expect(first.errors?.[0]).toMatchObject({ message: "Members only", extensions: { code: "NOT_A_MEMBER" } });
    const joined = await wsGraphQL(client, JOIN_CHANNEL, { channel: "vip" });
    expect(joined.errors?.[0]?.extensions?.code).toBe("NOT_A_MEMBER");
    // Messages are not join events: sending still works.
    expect((await send("vip", "hi")).data!.sendMessage.delivered).toBe(true);
  });

  it("quietly refuses a dropped join: joined false, and the subscription ends without events", async () => {
    await createTrigger(server.httpUrl, { channel: "hidden", actions: ["JOIN"], stack: [{ drop: true }] });
    const client = await connectWs(server.wsUrl);
    const subscription = wsSubscribe(client, CHANNEL_SUBSCRIPTION, { name: "hidden" });
    expect(await subscription.ended).toEqual({});
    await send("hidden", "after");
    expect(await subscription.collectFor(100)).toEqual([]);
    const joined = await wsGraphQL(client, JOIN_CHANNEL, { channel: "hidden" });
    expect(joined.data).toEqual({ joinChannel: { joined: false, event: null } });
  });
});

describe("triggers on leaves", () => {
  it("always delivers a LEAVE: enrichments apply, a drop, reject or failure is recorded and the LEAVE goes on as received", async () => {
    const failing = { set: "payload.failed", value: "$notAFunction(1)" };
    const enrich = await createTrigger(server.httpUrl, {
      channel: "leaving",
      actions: ["LEAVE"],
      order: 0,
      stack: [{ set: "payload", value: "{ 'bye': client.id }" }],
    });
    const drop = await createTrigger(server.httpUrl, {
      channel: "leaving",
      actions: ["LEAVE"],
      order: 1,
      stack: [{ set: "payload.dropper", value: "true" }, { drop: true }],
    });
    const reject = await createTrigger(server.httpUrl, {
      channel: "leaving",
      actions: ["LEAVE"],
      order: 2,
      stack: [{ set: "payload.rejecter", value: "true" }, { reject: "'no leaving'" }],
    });
    const failReject = await createTrigger(server.httpUrl, { channel: "leaving", actions: ["LEAVE"], order: 3, stack: [failing] });
    const failDrop = await createTrigger(server.httpUrl, {
      channel: "leaving",
      actions: ["LEAVE"],
      order: 4,
      onError: "DROP",
      stack: [failing],
    });
    const last = await createTrigger(server.httpUrl, {
      channel: "leaving",
      actions: ["LEAVE"],
      order: 5,
      stack: [{ set: "payload.last", value: "true" }],
    });

    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "leaving");
    const leaver = await connectWs(server.wsUrl);
    const joined = await wsGraphQL<{ joinChannel: { event: TestEvent } }>(leaver, JOIN_CHANNEL, { channel: "leaving" });
    const leaverId = joined.data!.joinChannel.event.client.id;
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: leaverId } });

    expect((await wsGraphQL(leaver, `mutation { leaveChannel(channel: "leaving") }`)).data).toEqual({ leaveChannel: true });
    const leave = (await watcher.subscription.next()).data!.channel;
    expect(leave).toMatchObject({ action: "LEAVE", client: { id: leaverId }, payload: { bye: leaverId, last: true } });
    expect(Object.keys(leave.payload).sort()).toEqual(["bye", "last"]);

    // A leave by disconnecting goes through the same triggers.
    const other = await joinBySubscription(await connectWs(server.wsUrl), "leaving");
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: other.join.client.id } });
    other.subscription.unsubscribe();
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({
      action: "LEAVE",
      client: { id: other.join.client.id },
      payload: { bye: other.join.client.id, last: true },
    });

    const outcomes = async (id: string) =>
      (
        (await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs { action outcome } } }`, { id })).data!.trigger.runs as {
          action: string;
          outcome: string;
        }[]
      )
        .filter((run) => run.action === "LEAVE")
        .map((run) => run.outcome);
    expect(await outcomes(enrich.id)).toEqual(["MODIFIED", "MODIFIED"]);
    expect(await outcomes(drop.id)).toEqual(["DROPPED", "DROPPED"]);
    expect(await outcomes(reject.id)).toEqual(["REJECTED", "REJECTED"]);
    expect(await outcomes(failReject.id)).toEqual(["FAILED", "FAILED"]);
    expect(await outcomes(failDrop.id)).toEqual(["FAILED", "FAILED"]);
    expect(await outcomes(last.id)).toEqual(["MODIFIED", "MODIFIED"]);
  });
});

describe("trigger management", () => {
  it("refuses trigger operations without the admin token", async () => {
    const list = await httpGraphQL(server.httpUrl, `{ triggers { id } }`);
    expect(list.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const create = await httpGraphQL(
      server.httpUrl,
      `mutation { createTrigger(input: { name: "x", actions: [MESSAGE], channel: "x", stack: [] }) { id } }`,
    );
    expect(create.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("names the step path in validation errors and stores nothing invalid", async () => {
    const before = (await admin(server.httpUrl, `{ triggers { id } }`)).data!.triggers.length;
    const cases: [unknown, RegExp][] = [
      [[{ log: "1" }, { log: "2" }, { if: "true", then: [{ set: "payload.a", value: "1 +" }] }], /stack\[2\]\.then\[0\]\.value/],
      [[{ unknownStep: 1 }], /stack\[0\]/],
      [[{ var: "x" }], /stack\[0\]/],
      ["not an array", /stack/],
    ];
    for (const [stack, path] of cases) {
      const result = await admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: "bad", actions: ["MESSAGE"], channel: "x", stack },
      });
      expect(result.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(result.errors?.[0]?.message).toMatch(path);
    }
    const badFields = [
      { name: "  ", actions: ["MESSAGE"], channel: "x", stack: [] },
      { name: "n", actions: [], channel: "x", stack: [] },
      { name: "n", actions: ["MESSAGE"], channel: "bad pattern", stack: [] },
    ];
    for (const input of badFields) {
      const result = await admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input,
      });
      expect(result.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    }
    expect((await admin(server.httpUrl, `{ triggers { id } }`)).data!.triggers.length).toBe(before);
  });

  it("lists by tag and active, reads one by id, and updates every field", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      name: "tagged",
      channel: "tags",
      tags: ["moderation", "beta"],
      description: "d",
      stack: [],
    });
    expect(trigger).toMatchObject({ active: true, order: 0, onError: "REJECT", tags: ["moderation", "beta"], description: "d", stack: [] });
    const byTag = await admin(server.httpUrl, `{ triggers(tag: "beta") { id } }`);
    expect(byTag.data!.triggers).toEqual([{ id: trigger.id }]);
    const updated = await admin(
      server.httpUrl,
      `mutation ($id: ID!, $input: UpdateTriggerInput!) { updateTrigger(id: $id, input: $input) { ${TRIGGER_FIELDS} } }`,
      {
        id: trigger.id,
        input: {
          name: "renamed",
          description: null,
          active: false,
          tags: ["x"],
          actions: ["JOIN"],
          channel: "tags:*",
          order: 3,
          onError: "DROP",
          stack: [{ log: "1" }],
        },
      },
    );
    expect(updated.data!.updateTrigger).toMatchObject({
      name: "renamed",
      description: null,
      active: false,
      tags: ["x"],
      actions: ["JOIN"],
      channel: "tags:*",
      order: 3,
      onError: "DROP",
      stack: [{ log: "1" }],
    });
    expect((await admin(server.httpUrl, `{ triggers(tag: "beta") { id } }`)).data!.triggers).toEqual([]);
    const inactive = await admin(server.httpUrl, `{ triggers(active: false) { id } }`);
    expect(inactive.data!.triggers.map((t: { id: string }) => t.id)).toContain(trigger.id);
    const one = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { name } }`, { id: trigger.id });
    expect(one.data!.trigger).toEqual({ name: "renamed" });
    expect((await admin(server.httpUrl, `{ trigger(id: "nope") { id } }`)).data!.trigger).toBeNull();
    const missing = await admin(server.httpUrl, `mutation { updateTrigger(id: "nope", input: { name: "x" }) { id } }`);
    expect(missing.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("keeps trigger names unique: a name in use is refused with CONFLICT, on create, on rename, at once, and from another instance", async () => {
    const CREATE = `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id name } }`;
    const RENAME = `mutation ($id: ID!, $name: String!) { updateTrigger(id: $id, input: { name: $name }) { id name revision } }`;
    const names = async (): Promise<string[]> =>
      (await admin(server.httpUrl, `{ triggers { name } }`)).data!.triggers.map((t: { name: string }) => t.name).sort();
    const first = await createTrigger(server.httpUrl, { name: "unique name", channel: "unique", stack: [] });
    const before = await names();
    for (const name of ["unique name", "  unique name "]) {
      const again = await admin(server.httpUrl, CREATE, { input: { name, actions: ["MESSAGE"], channel: "other", stack: [] } });
      expect(again.errors?.[0]).toMatchObject({
        message: 'A trigger named "unique name" exists already: trigger names are unique',
        extensions: { code: "CONFLICT", path: "input.name" },
      });
    }
    const second = await createTrigger(server.httpUrl, { name: "second name", channel: "unique", stack: [] });
    const renamed = await admin(server.httpUrl, RENAME, { id: second.id, name: "unique name" });
    expect(renamed.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    expect(await names()).toEqual([...before, "second name"].sort());
    // Its own name is no conflict.
    expect((await admin(server.httpUrl, RENAME, { id: first.id, name: "unique name" })).data!.updateTrigger.revision).toBe(2);
    // Creates at once may all pass the in-memory check before one is stored: the unique index catches the rest.
    const racing = await Promise.all(
      Array.from({ length: 6 }, () =>
        admin(server.httpUrl, CREATE, { input: { name: "raced", actions: ["MESSAGE"], channel: "r", stack: [] } }),
      ),
    );
    expect(racing.filter((result) => result.data?.createTrigger)).toHaveLength(1);
    expect(racing.filter((result) => result.errors?.[0]?.extensions?.code === "CONFLICT")).toHaveLength(5);
    expect((await names()).filter((name) => name === "raced")).toEqual(["raced"]);
    // A second instance on the same database, which has not heard of "raced" (no Redis here to tell it).
    const other = await startServer({}, server.dataDir);
    const late = await admin(other.httpUrl, CREATE, { input: { name: "late", actions: ["MESSAGE"], channel: "r", stack: [] } });
    expect(late.data?.createTrigger.name).toBe("late");
    const clash = await admin(server.httpUrl, CREATE, { input: { name: "late", actions: ["MESSAGE"], channel: "r", stack: [] } });
    expect(clash.errors?.[0]).toMatchObject({ extensions: { code: "CONFLICT" }, message: expect.stringContaining('"late"') });
    await other.stop();
  });

  it("records every run with outcome, duration, error and log", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "recorded",
      stack: [{ log: "'saw ' & payload.n" }, { if: "payload.n = 2", then: [{ drop: true }] }],
    });
    await send("recorded", { n: 1 });
    await send("recorded", { n: 2 });
    const runs = await admin(
      server.httpUrl,
      `query ($id: ID!) { trigger(id: $id) { runs(last: 5) { triggerId action channel outcome durationMs error log createdAt } } }`,
      { id: trigger.id },
    );
    const recorded = runs.data!.trigger.runs;
    expect(recorded).toHaveLength(2);
    expect(recorded[0]).toMatchObject({
      triggerId: trigger.id,
      action: "MESSAGE",
      channel: "recorded",
      outcome: "DROPPED",
      error: null,
      log: ["saw 2"],
    });
    expect(recorded[1]).toMatchObject({ outcome: "DELIVERED", log: ["saw 1"] });
    expect(recorded[1].durationMs).toBeGreaterThanOrEqual(0);
  });

  it("records a log step that logs a missing value as null, and serves it in runs and testTrigger", async () => {
    const trigger = await createTrigger(server.httpUrl, { channel: "log-missing", stack: [{ log: "payload.absent" }, { log: "'after'" }] });
    expect((await send("log-missing", { text: "hi" })).data!.sendMessage.delivered).toBe(true);
    const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs { outcome log } } }`, { id: trigger.id });
    expect(runs.errors).toBeUndefined();
    expect(runs.data!.trigger.runs).toEqual([{ outcome: "DELIVERED", log: [null, "after"] }]);
    const listed = await admin(server.httpUrl, `query { triggers(channel: "log-missing") { runs { log } } }`);
    expect(listed.errors).toBeUndefined();
    expect(listed.data!.triggers.map((t: { runs: { log: unknown[] }[] }) => t.runs[0]?.log)).toContainEqual([null, "after"]);
    const tested = await admin(
      server.httpUrl,
      `mutation ($id: ID!, $event: TriggerTestEventInput!) { testTrigger(id: $id, event: $event) { outcome log } }`,
      { id: trigger.id, event: { action: "MESSAGE", channel: "log-missing", payload: {} } },
    );
    expect(tested).toEqual({ data: { testTrigger: { outcome: "DELIVERED", log: [null, "after"] } } });
  });

  it("keeps only the latest runs per trigger", async () => {
    const small = await startServer({ TRIGGER_RUNS_KEPT: "3" });
    const trigger = await createTrigger(small.httpUrl, { channel: "pruned", stack: [{ log: "payload" }] });
    for (let n = 0; n < 6; n++) await httpGraphQL(small.httpUrl, SEND_MESSAGE, { channel: "pruned", payload: n });
    const runs = await admin(small.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 10) { log } } }`, { id: trigger.id });
    expect(runs.data!.trigger.runs.map((run: { log: unknown[] }) => run.log[0])).toEqual([5, 4, 3]);
  });

  it("testTrigger runs a stored trigger on a sample event with a step trace, publishing nothing", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      channel: "dry",
      stack: [{ var: "who", value: "client.id" }, { log: "'from ' & $who" }, { set: "payload.text", value: "$uppercase(payload.text)" }],
    });
    const { subscription } = await joinBySubscription(await connectWs(server.wsUrl), "dry");
    const result = await admin(
      server.httpUrl,
      `mutation ($id: ID!, $event: TriggerTestEventInput!) { testTrigger(id: $id, event: $event) { outcome payload error log trace { path step durationMs result error } } }`,
      { id: trigger.id, event: { action: "MESSAGE", channel: "dry", payload: { text: "hi" }, clientId: "alice" } },
    );
    expect(result.data!.testTrigger).toMatchObject({ outcome: "MODIFIED", payload: { text: "HI" }, error: null, log: ["from alice"] });
    expect(result.data!.testTrigger.trace.map((step: { path: string; step: string }) => [step.path, step.step])).toEqual([
      ["stack[0]", "var"],
      ["stack[1]", "log"],
      ["stack[2]", "set"],
    ]);
    const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs { id } } }`, { id: trigger.id });
    expect(runs.data!.trigger.runs).toEqual([]);
    // A real message is the first thing the subscriber gets: the dry run published nothing.
    await send("dry", { text: "real" });
    expect((await subscription.next()).data!.channel.payload).toEqual({ text: "REAL" });
  });

  it("keeps triggers across a restart", async () => {
    const first = await startServer();
    await createTrigger(first.httpUrl, { channel: "durable", stack: [{ set: "payload.kept", value: "true" }] });
    await first.stop();
    const second = await startServer({}, first.dataDir);
    const result = await httpGraphQL<SendData>(second.httpUrl, SEND_MESSAGE, { channel: "durable", payload: {} });
    expect(result.body.data!.sendMessage.event!.payload).toEqual({ kept: true });
  });
});

describe("the README examples", () => {
  it("profanity filter: masks listed words, refuses shouting, logs what it masked", async () => {
    const filter = await createTrigger(server.httpUrl, {
      name: "profanity filter",
      channel: "talk:*",
      tags: ["moderation"],
      stack: [
        { var: "banned", value: "['darn', 'heck']" },
        {
          if: "$length(payload.text) > 10 and payload.text = $uppercase(payload.text)",
          then: [{ reject: "'Please do not shout'", code: "SHOUTING" }],
        },
        {
          set: "payload.text",
          value: "$join($map($split(payload.text, ' '), function($w) { $lowercase($w) in $banned ? '****' : $w }), ' ')",
        },
        { if: "$response.payload.text != payload.text", then: [{ log: "'masked a message from ' & client.id" }] },
      ],
    });
    const masked = await send("talk:1", { text: "well Darn it" });
    expect(masked.data!.sendMessage.event!.payload).toEqual({ text: "well **** it" });
    const shouting = await send("talk:1", { text: "WHY IS THIS SO LOUD" });
    expect(shouting.errors?.[0]).toMatchObject({ message: "Please do not shout", extensions: { code: "SHOUTING" } });
    const clean = await send("talk:1", { text: "hello there" });
    expect(clean.data!.sendMessage.event!.payload).toEqual({ text: "hello there" });
    const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs { outcome log } } }`, { id: filter.id });
    expect(runs.data!.trigger.runs).toEqual([
      { outcome: "DELIVERED", log: [] },
      { outcome: "REJECTED", log: [] },
      { outcome: "MODIFIED", log: [`masked a message from ${masked.data!.sendMessage.event!.client.id}`] },
    ]);
  });

  it("stamp: adds the sender id and the time", async () => {
    await createTrigger(server.httpUrl, {
      name: "stamp",
      channel: "stamped:*",
      order: 100,
      stack: [
        { set: "payload.sender", value: "client.id" },
        { set: "payload.sentAt", value: "$now()" },
      ],
    });
    const event = (await send("stamped:1", { text: "hi" })).data!.sendMessage.event!;
    expect(event.payload.sender).toBe(event.client.id);
    expect(Date.parse(event.payload.sentAt)).toBeGreaterThan(Date.now() - 60_000);
  });
});
