import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_SUBSCRIPTION, EVENT_FIELDS, JOIN_CHANNEL, joinBySubscription, SEND_MESSAGE, type TestEvent } from "./helpers/channels.js";
import { eventually } from "./helpers/eventually.js";
import { connectWs, httpGraphQL, wsGraphQL, wsSubscribe } from "./helpers/graphql.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "./helpers/server.js";
import { clientToken } from "./helpers/tokens.js";
import { admin, createTrigger } from "./helpers/triggers.js";

const JWT_SECRET = "a-test-secret-that-is-long-enough-0123456789";
let server: TestServer;
beforeAll(async () => {
  server = await startServer({ JWT_SECRET });
});

type SendData = { sendMessage: { delivered: boolean; event: TestEvent | null } };
const sendAs = (channel: string, payload: unknown, bearer?: string, options?: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload, options }, { token: bearer });

/** An object with these keys as its own properties, `"__proto__"` included (assignment would set the prototype instead). */
function objectFromEntries(entries: [string, unknown][]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return object;
}

/** JSON text with object keys sorted at every level: equal for equal JSON, whatever order a database keeps keys in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

async function createChannel(input: Record<string, unknown>, target = server) {
  const result = await admin(
    target.httpUrl,
    `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id pattern active anonymousClients messaging presence history } }`,
    { input },
  );
  if (!result.data) throw new Error(JSON.stringify(result.errors));
  return result.data.createChannel;
}

describe("client identity", () => {
  it("makes a valid token's sub the client id, with its own claims as extras", async () => {
    const jwt = await clientToken(JWT_SECRET, "user-42", { claims: { name: "Ada", role: "editor" } });
    const sent = await sendAs("id-check", "hi", jwt);
    expect(sent.body.data!.sendMessage.event!.client).toEqual({
      id: "user-42",
      authenticated: true,
      extras: { name: "Ada", role: "editor" },
    });

    const socket = await connectWs(server.wsUrl, { authToken: jwt });
    const { join } = await joinBySubscription(socket, "id-check");
    expect(join.client).toEqual({ id: "user-42", authenticated: true, extras: { name: "Ada", role: "editor" } });
  });

  it("refuses expired and wrongly signed tokens: HTTP 401 and WebSocket close 4403, never anonymous", async () => {
    const expired = await clientToken(JWT_SECRET, "u", { expires: "-1m" });
    const forged = await clientToken("another-secret-that-is-long-enough-987654321", "u");
    for (const bad of [expired, forged, "not.a.jwt"]) {
      const result = await sendAs("refused", "x", bad);
      expect(result.status).toBe(401);
      expect(result.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
      await expect(connectWs(server.wsUrl, { authToken: bad })).rejects.toMatchObject({ code: 4403 });
    }
    const expiredMessage = (await sendAs("refused", "x", expired)).body.errors?.[0]?.message;
    expect(expiredMessage).toBe("Token expired");
    expect(expiredMessage).not.toContain(expired);
  });

  it("shows a token's claims to triggers in client.extras", async () => {
    await createTrigger(server.httpUrl, {
      channel: "claims",
      stack: [{ set: "payload.from", value: "client.extras.name & ' (' & client.id & ')'" }],
    });
    const sent = await sendAs("claims", {}, await clientToken(JWT_SECRET, "u-7", { claims: { name: "Grace" } }));
    expect(sent.body.data!.sendMessage.event!.payload).toEqual({ from: "Grace (u-7)" });
  });

  it("does not accept the admin token as a client token, nor a client token as the admin's", async () => {
    const asClient = await connectWs(server.wsUrl, { authToken: ADMIN_TOKEN }).catch((event) => event);
    expect(asClient).toMatchObject({ code: 4403 });
    const info = await httpGraphQL(server.httpUrl, `{ serverInfo { version } }`, {}, { token: await clientToken(JWT_SECRET, "u") });
    expect(info.body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  });
});

describe("channel settings", () => {
  it("lets anonymous clients listen only where anonymousClients is true", async () => {
    await createChannel({ pattern: "private:*", anonymousClients: false });
    const anonymous = await connectWs(server.wsUrl);
    const refused = wsSubscribe(anonymous, CHANNEL_SUBSCRIPTION, { name: "private:1" });
    expect((await refused.next()).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const member = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "member") });
    const { join } = await joinBySubscription(member, "private:1");
    expect(join.client.id).toBe("member");
    // Elsewhere anonymous listening is the default.
    await joinBySubscription(anonymous, "public:1");
  });

  it("refuses anonymous sends under AUTHENTICATED messaging, and accepts authenticated ones", async () => {
    await createChannel({ pattern: "signed", messaging: "AUTHENTICATED" });
    expect((await sendAs("signed", "x")).body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect((await sendAs("signed", "x", await clientToken(JWT_SECRET, "writer"))).body.data!.sendMessage.delivered).toBe(true);
    const listener = await connectWs(server.wsUrl);
    await joinBySubscription(listener, "signed"); // anonymous clients may still listen
  });

  it("refuses client sends under NOBODY but not the admin's", async () => {
    await createChannel({ pattern: "announcements", messaging: "NOBODY" });
    const { subscription } = await joinBySubscription(await connectWs(server.wsUrl), "announcements");
    expect((await sendAs("announcements", "x")).body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await sendAs("announcements", "x", await clientToken(JWT_SECRET, "someone"))).body.errors?.[0]?.extensions?.code).toBe(
      "FORBIDDEN",
    );
    const byAdmin = await sendAs("announcements", { text: "maintenance at noon" }, ADMIN_TOKEN);
    expect(byAdmin.body.data!.sendMessage.delivered).toBe(true);
    expect((await subscription.next()).data!.channel.payload).toEqual({ text: "maintenance at noon" });
  });

  it("refuses joins and sends on an inactive channel", async () => {
    await createChannel({ pattern: "closed", active: false });
    expect((await sendAs("closed", "x")).body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const client = await connectWs(server.wsUrl);
    expect((await wsSubscribe(client, CHANNEL_SUBSCRIPTION, { name: "closed" }).next()).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await wsGraphQL(client, JOIN_CHANNEL, { channel: "closed" })).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    await admin(server.httpUrl, `mutation { updateChannel(pattern: "closed", input: { active: true }) { active } }`);
    expect((await sendAs("closed", "x")).body.data!.sendMessage.delivered).toBe(true);
  });

  it("uses the most specific configuration: exact beats pattern, longer pattern beats shorter", async () => {
    await createChannel({ pattern: "game:*", messaging: "NOBODY" });
    await createChannel({ pattern: "game:chat:*", messaging: "ANYONE" });
    await createChannel({ pattern: "game:chat:mods", messaging: "AUTHENTICATED" });
    expect((await sendAs("game:score", "x")).body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await sendAs("game:chat:1", "x")).body.data!.sendMessage.delivered).toBe(true);
    expect((await sendAs("game:chat:mods", "x")).body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const config = await admin(server.httpUrl, `{ channelConfig(name: "game:chat:7") { pattern messaging } }`);
    expect(config.data!.channelConfig).toEqual({ pattern: "game:chat:*", messaging: "ANYONE" });
    expect((await admin(server.httpUrl, `{ channelConfig(name: "unconfigured") { pattern } }`)).data!.channelConfig).toBeNull();
  });

  it("refuses unconfigured channels when REQUIRE_CHANNEL_CONFIG is true", async () => {
    const strict = await startServer({ REQUIRE_CHANNEL_CONFIG: "true" });
    const refused = await httpGraphQL(strict.httpUrl, SEND_MESSAGE, { channel: "anything", payload: 1 });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    await createChannel({ pattern: "configured" }, strict);
    const accepted = await httpGraphQL<SendData>(strict.httpUrl, SEND_MESSAGE, { channel: "configured", payload: 1 });
    expect(accepted.body.data!.sendMessage.delivered).toBe(true);
  });

  it("manages configurations: validation, one per pattern, update, delete, list; admin only", async () => {
    const anonymous = await httpGraphQL(server.httpUrl, `{ channels { id } }`);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const created = await createChannel({ pattern: "managed:*", history: 10, presence: true });
    expect(created).toMatchObject({ active: true, anonymousClients: true, messaging: "ANYONE", presence: true, history: 10 });
    const duplicate = await admin(server.httpUrl, `mutation { createChannel(input: { pattern: "managed:*" }) { id } }`);
    expect(duplicate.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    for (const input of [{ pattern: "bad pattern" }, { pattern: "x", history: 1001 }, { pattern: "y", history: -1 }]) {
      const bad = await admin(server.httpUrl, `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`, { input });
      expect(bad.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    }
    const updated = await admin(
      server.httpUrl,
      `mutation { updateChannel(pattern: "managed:*", input: { history: 0, description: "d" }) { history description } }`,
    );
    expect(updated.data!.updateChannel).toEqual({ history: 0, description: "d" });
    const listed = await admin(server.httpUrl, `{ channels { pattern } }`);
    expect(listed.data!.channels.map((c: { pattern: string }) => c.pattern)).toContain("managed:*");
    expect((await admin(server.httpUrl, `mutation { deleteChannel(pattern: "managed:*") }`)).data!.deleteChannel).toBe(true);
    expect((await admin(server.httpUrl, `mutation { deleteChannel(pattern: "managed:*") }`)).data!.deleteChannel).toBe(false);
  });
});

describe("history", () => {
  it("keeps delivered messages after triggers, capped at N, oldest first, numbered by seq", async () => {
    await createChannel({ pattern: "log", history: 3 });
    await createTrigger(server.httpUrl, { channel: "log", stack: [{ set: "payload.n", value: "payload.n * 10" }] });
    const sent: TestEvent[] = [];
    for (let n = 1; n <= 5; n++) sent.push((await sendAs("log", { n })).body.data!.sendMessage.event!);
    expect(sent.map((e) => (e as unknown as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
    const history = await httpGraphQL(server.httpUrl, `{ history(channel: "log", last: 10) { ${EVENT_FIELDS} seq } }`);
    expect(history.body.data!.history.map((e: { payload: { n: number }; seq: number }) => [e.seq, e.payload.n])).toEqual([
      [3, 30],
      [4, 40],
      [5, 50],
    ]);
    expect(history.body.data!.history[2]).toMatchObject({ id: sent[4]!.id, action: "MESSAGE" });
    const lastTwo = await httpGraphQL(server.httpUrl, `{ history(channel: "log", last: 2) { seq } }`);
    expect(lastTwo.body.data!.history).toEqual([{ seq: 4 }, { seq: 5 }]);
  });

  it('keeps exactly the JSON that was delivered, "__proto__" and "$type" keys included', async () => {
    await createChannel({ pattern: "exact:*", history: 100 });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "exact:1");
    const payloads: unknown[] = [
      JSON.parse('{"__proto__": {"x": 1}, "a": 1}'),
      JSON.parse('{"nested": [{"__proto__": null}, {"__proto__": [1, {"__proto__": "deep"}]}], "constructor": {"prototype": 1}}'),
      { $type: "DateTime", value: "2020-01-01T00:00:00.000Z", inner: { $type: "Bytes", value: "AAAA" }, toJSON: 1 },
    ];
    const keyish = fc.constantFrom("__proto__", "constructor", "prototype", "$type", "value", "toJSON", "a");
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.string({ unit: "grapheme-ascii" }),
        tie("array"),
        tie("object"),
      ),
      array: fc.array(tie("value"), { maxLength: 3 }),
      object: fc
        .array(fc.tuple(fc.oneof(keyish, fc.string({ unit: "grapheme-ascii", maxLength: 5 })), tie("value")), { maxLength: 4 })
        .map(objectFromEntries),
    }));
    payloads.push(...fc.sample(json.object, { numRuns: 40, seed: 12 }));

    const delivered: string[] = [];
    for (const payload of payloads) {
      const sent = await sendAs("exact:1", payload);
      expect(sent.body.errors, canonical(payload)).toBeUndefined();
      const event = (await watcher.subscription.next()).data!.channel;
      expect(canonical(event.payload)).toBe(canonical(payload));
      expect(canonical(sent.body.data!.sendMessage.event!.payload)).toBe(canonical(payload));
      delivered.push(canonical(event.payload));
    }
    const history = await httpGraphQL(server.httpUrl, `{ history(channel: "exact:1", last: 100) { payload } }`);
    expect(history.body.data!.history.map((entry: { payload: unknown }) => canonical(entry.payload))).toEqual(delivered);
    // A subscription's replay comes from the same store.
    const replay = wsSubscribe<{ channel: TestEvent }>(
      await connectWs(server.wsUrl),
      `subscription { channel(name: "exact:1", options: { history: 100 }) { action payload } }`,
    );
    for (const expected of delivered) expect(canonical((await replay.next()).data!.channel.payload)).toBe(expected);
  });

  it("keeps nothing for channels without history", async () => {
    await sendAs("no-history", 1);
    expect((await httpGraphQL(server.httpUrl, `{ history(channel: "no-history") { id } }`)).body.data!.history).toEqual([]);
  });

  it("survives a restart, and sequence numbers continue", async () => {
    const first = await startServer({ CHANNEL_HISTORY: "5" });
    for (let n = 1; n <= 3; n++) await httpGraphQL(first.httpUrl, SEND_MESSAGE, { channel: "durable", payload: n });
    await first.stop();
    const second = await startServer({ CHANNEL_HISTORY: "5" }, first.dataDir);
    const next = await httpGraphQL(second.httpUrl, `mutation { sendMessage(channel: "durable", payload: 4) { event { seq } } }`);
    expect(next.body.data!.sendMessage.event.seq).toBe(4);
    const history = await httpGraphQL(second.httpUrl, `{ history(channel: "durable") { seq payload } }`);
    expect(history.body.data!.history).toEqual([1, 2, 3, 4].map((n) => ({ seq: n, payload: n })));
  });

  it("replays history on subscribe with no gap or duplicate while messages are being sent", async () => {
    await createChannel({ pattern: "busy", history: 1000 });
    const total = 120;
    let sent = 0;
    const sender = (async () => {
      for (let n = 1; n <= total; n++) {
        await sendAs("busy", { n });
        sent = n;
      }
    })();
    await eventually("some messages sent before subscribing", () => sent, { until: (count) => count >= 10 });
    const client = await connectWs(server.wsUrl);
    const subscription = wsSubscribe<{ channel: TestEvent & { seq: number | null } }>(
      client,
      `subscription { channel(name: "busy", options: { history: 1000 }) { action seq payload } }`,
    );
    const seen: number[] = [];
    let beforeJoin: number | undefined;
    while (seen.length < total) {
      const event = (await subscription.next()).data!.channel;
      if (event.action === "MESSAGE") seen.push(event.payload.n);
      if (event.action === "JOIN") beforeJoin ??= seen.length;
    }
    await sender;
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // The subscription began while messages were being sent: some came from history, the rest live.
    expect(beforeJoin).toBeGreaterThanOrEqual(10);
    expect(beforeJoin).toBeLessThan(total);
  });
});

describe("presence and leaving", () => {
  it("tracks join, leave and disconnect, publishing JOIN and LEAVE events", async () => {
    await createChannel({ pattern: "room:presence", presence: true });
    const watcher = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "watcher") });
    const { subscription } = await joinBySubscription(watcher, "room:presence");
    const presence = async () =>
      (
        (await httpGraphQL(server.httpUrl, `{ presence(channel: "room:presence") { id authenticated extras } }`)).body.data!.presence as {
          id: string;
        }[]
      )
        .map((client) => client.id)
        .sort();
    expect(await presence()).toEqual(["watcher"]);

    const alice = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "alice", { claims: { name: "Alice" } }) });
    await wsGraphQL(alice, JOIN_CHANNEL, { channel: "room:presence" });
    expect((await subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: "alice", extras: { name: "Alice" } } });
    expect(await presence()).toEqual(["alice", "watcher"]);

    const left = await wsGraphQL(alice, `mutation { leaveChannel(channel: "room:presence") }`);
    expect(left.data).toEqual({ leaveChannel: true });
    expect((await subscription.next()).data!.channel).toMatchObject({ action: "LEAVE", command: "leave", client: { id: "alice" } });
    expect(await presence()).toEqual(["watcher"]);
    expect((await wsGraphQL(alice, `mutation { leaveChannel(channel: "room:presence") }`)).data).toEqual({ leaveChannel: false });

    const bob = await connectWs(server.wsUrl);
    const bobJoin = await joinBySubscription(bob, "room:presence");
    await subscription.next(); // bob's JOIN
    expect((await presence()).length).toBe(2);
    await bob.dispose(); // disconnect
    expect((await subscription.next()).data!.channel).toMatchObject({ action: "LEAVE", client: { id: bobJoin.join.client.id } });
    expect(await presence()).toEqual(["watcher"]);
  });

  it("refuses presence where it is off", async () => {
    const result = await httpGraphQL(server.httpUrl, `{ presence(channel: "no-presence") { id } }`);
    expect(result.body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("runs LEAVE triggers, which may enrich a leave but not refuse it", async () => {
    await createChannel({ pattern: "room:leaving", presence: true });
    await createTrigger(server.httpUrl, {
      channel: "room:leaving",
      actions: ["LEAVE"],
      stack: [{ set: "payload", value: "{ 'bye': client.id }" }],
    });
    await createTrigger(server.httpUrl, { channel: "room:leaving", actions: ["LEAVE"], order: 1, stack: [{ reject: "'no leaving'" }] });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "room:leaving");
    const leaver = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "leaver") });
    await wsGraphQL(leaver, JOIN_CHANNEL, { channel: "room:leaving" });
    await watcher.subscription.next();
    expect((await wsGraphQL(leaver, `mutation { leaveChannel(channel: "room:leaving") }`)).data).toEqual({ leaveChannel: true });
    const presence = await httpGraphQL(server.httpUrl, `{ presence(channel: "room:leaving") { id } }`);
    expect(presence.body.data!.presence.map((c: { id: string }) => c.id)).not.toContain("leaver");
  });
});

describe("private messages", () => {
  it("delivers a message with options.to only to that client's subscriptions, after triggers", async () => {
    await createTrigger(server.httpUrl, { channel: "dm", stack: [{ set: "payload.checked", value: "true" }] });
    const alice = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "alice") });
    const bob = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "bob") });
    const a = await joinBySubscription(alice, "dm");
    const b = await joinBySubscription(bob, "dm");
    await a.subscription.next(); // bob's JOIN
    const sent = await sendAs("dm", { text: "psst" }, await clientToken(JWT_SECRET, "carol"), { to: "bob" });
    expect(sent.body.data!.sendMessage.event).toMatchObject({
      payload: { text: "psst", checked: true },
      commandOptions: { to: "bob" },
      seq: null,
    } as never);
    expect((await b.subscription.next()).data!.channel.payload).toEqual({ text: "psst", checked: true });
    // A message for everyone is the next thing alice gets: bob's private one never reached her.
    await sendAs("dm", { text: "all" }, await clientToken(JWT_SECRET, "carol"));
    expect((await a.subscription.next()).data!.channel.payload).toEqual({ text: "all", checked: true });
    const bad = await sendAs("dm", "x", undefined, { to: 42 });
    expect(bad.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});
