import { beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_SUBSCRIPTION, JOIN_CHANNEL, joinBySubscription, SEND_MESSAGE, type TestEvent } from "./helpers/channels.js";
import { connectWs, httpGraphQL, wsGraphQL, wsSubscribe } from "./helpers/graphql.js";
import { startServer, type TestServer } from "./helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});

type SendData = { sendMessage: { delivered: boolean; event: TestEvent } };

describe("messaging over a real server", () => {
  it("delivers a message sent over HTTP to every subscriber of the channel, and only them", async () => {
    const alice = await connectWs(server.wsUrl);
    const bob = await connectWs(server.wsUrl);
    const carol = await connectWs(server.wsUrl);
    const a = await joinBySubscription(alice, "room:1");
    const b = await joinBySubscription(bob, "room:1");
    const elsewhere = await joinBySubscription(carol, "room:2");
    await a.subscription.next(); // bob's JOIN, seen by alice

    const { status, body } = await httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, {
      channel: "room:1",
      payload: { text: "hello", n: 1 },
      options: { kind: "greeting" },
    });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const sent = body.data!.sendMessage;
    expect(sent.delivered).toBe(true);
    expect(sent.event).toMatchObject({
      action: "MESSAGE",
      command: "message",
      channel: "room:1",
      payload: { text: "hello", n: 1 },
      commandOptions: { kind: "greeting" },
      client: { authenticated: false, extras: null },
    });
    expect(new Date(sent.event.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const toAlice = (await a.subscription.next()).data!.channel;
    const toBob = (await b.subscription.next()).data!.channel;
    expect(toAlice).toEqual(sent.event);
    expect(toBob).toEqual(sent.event);
    // The HTTP sender is a client of its own, neither subscriber.
    expect(sent.event.client.id).not.toBe(a.join.client.id);
    expect(sent.event.client.id).not.toBe(b.join.client.id);

    // A later message on its own channel is the next thing it gets: nothing from room:1 came first.
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "room:2", payload: "marker" });
    expect((await elsewhere.subscription.next()).data!.channel.payload).toBe("marker");
  });

  it("delivers events in publish order", async () => {
    const first = await joinBySubscription(await connectWs(server.wsUrl), "ordered");
    const second = await joinBySubscription(await connectWs(server.wsUrl), "ordered");
    await first.subscription.next(); // second's JOIN
    for (let n = 0; n < 10; n++) {
      await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "ordered", payload: { n } });
    }
    const seen: number[] = [];
    for (let n = 0; n < 10; n++) seen.push((await first.subscription.next()).data!.channel.payload.n);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // Concurrent senders: every subscriber sees the same order.
    const count = 30;
    await Promise.all(
      Array.from({ length: count }, (_, n) => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "ordered", payload: { n } })),
    );
    const orderSeenBy = async (subscription: typeof first.subscription) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push((await subscription.next()).data!.channel.id);
      return ids;
    };
    for (let n = 0; n < 10; n++) await second.subscription.next(); // the sequential ones
    const [a, b] = await Promise.all([orderSeenBy(first.subscription), orderSeenBy(second.subscription)]);
    expect(a).toHaveLength(count);
    expect(b).toEqual(a);
  });

  it("works the same for a message sent over the WebSocket, with the socket's stable client id", async () => {
    const sender = await connectWs(server.wsUrl);
    const listener = await connectWs(server.wsUrl);
    const own = await joinBySubscription(sender, "ws-room");
    const other = await joinBySubscription(listener, "ws-room");
    await own.subscription.next(); // listener's JOIN

    const first = await wsGraphQL<SendData>(sender, SEND_MESSAGE, { channel: "ws-room", payload: "one" });
    const second = await wsGraphQL<SendData>(sender, SEND_MESSAGE, { channel: "ws-room", payload: "two" });
    expect(first.data!.sendMessage.event.client.id).toBe(own.join.client.id);
    expect(second.data!.sendMessage.event.client.id).toBe(own.join.client.id);

    // The sender's own subscription receives its messages too.
    expect((await own.subscription.next()).data!.channel).toEqual(first.data!.sendMessage.event);
    expect((await own.subscription.next()).data!.channel.payload).toBe("two");
    expect((await other.subscription.next()).data!.channel).toEqual(first.data!.sendMessage.event);
    expect((await other.subscription.next()).data!.channel).toEqual(second.data!.sendMessage.event);
  });

  it("gives each HTTP request without credentials a client of its own", async () => {
    const one = await httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel: "solo", payload: 1 });
    const two = await httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel: "solo", payload: 2 });
    expect(one.body.data!.sendMessage.event.client.id).not.toBe(two.body.data!.sendMessage.event.client.id);
  });
});

describe("joining", () => {
  it("publishes a JOIN event for joinChannel, seen by subscribers", async () => {
    const listener = await connectWs(server.wsUrl);
    const { subscription } = await joinBySubscription(listener, "lobby");
    const joiner = await connectWs(server.wsUrl);
    const result = await wsGraphQL<{ joinChannel: { joined: boolean; event: TestEvent } }>(joiner, JOIN_CHANNEL, {
      channel: "lobby",
      options: { nickname: "zed" },
    });
    expect(result.data!.joinChannel.joined).toBe(true);
    const event = (await subscription.next()).data!.channel;
    expect(event).toEqual(result.data!.joinChannel.event);
    expect(event).toMatchObject({ action: "JOIN", command: "join", channel: "lobby", commandOptions: { nickname: "zed" } });
  });

  it("publishes a JOIN event when a subscription opens, seen by other subscribers", async () => {
    const first = await joinBySubscription(await connectWs(server.wsUrl), "hall");
    const secondClient = await connectWs(server.wsUrl);
    const second = await joinBySubscription(secondClient, "hall", { role: "guest" });
    const seen = (await first.subscription.next()).data!.channel;
    expect(seen).toEqual(second.join);
    expect(seen).toMatchObject({ action: "JOIN", channel: "hall", commandOptions: { role: "guest" }, payload: null });
  });
});

describe("bad input", () => {
  const badNames = ["", "has space", "semi;colon", "a".repeat(256), "emoji-🙂", "new\nline"];

  it.each(badNames)("refuses the channel name %j with BAD_USER_INPUT naming the rule", async (channel) => {
    const { body } = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: 1 });
    expect(body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(body.errors?.[0]?.message).toMatch(/1-255 characters from A-Z a-z 0-9 _ - : \. \/ @/);
  });

  it("accepts the longest and most varied valid names", async () => {
    for (const channel of ["a".repeat(255), "A-z_0:9./@x"]) {
      const { body } = await httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload: 1 });
      expect(body.data?.sendMessage.delivered).toBe(true);
    }
  });

  it("refuses a bad name on the subscription and on joinChannel", async () => {
    const client = await connectWs(server.wsUrl);
    const subscription = wsSubscribe(client, CHANNEL_SUBSCRIPTION, { name: "no spaces allowed" });
    const first = await subscription.next();
    expect(first.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const join = await wsGraphQL(client, JOIN_CHANNEL, { channel: "bad*name" });
    expect(join.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("refuses payloads that are not JSON, missing arguments and broken documents with a clear error", async () => {
    const missing = await httpGraphQL(server.httpUrl, `mutation { sendMessage(channel: "x") { delivered } }`);
    expect(missing.body.errors?.[0]?.message).toMatch(/argument "payload" of type "JSON!" is required/);

    const nullPayload = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "x", payload: null });
    expect(nullPayload.body.errors?.[0]?.message).toMatch(/payload/);

    const notJson = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"query": "mutation { sendMessage(channel: \\"x\\", payload: {a: 1}) { delivered } }", "variables": {nope',
    });
    expect(notJson.status).toBe(400);

    const syntax = await httpGraphQL(server.httpUrl, `mutation { sendMessage(channel: "x", payload: {a: }) { delivered } }`);
    expect(syntax.body.errors?.[0]?.message).toMatch(/Syntax Error/);

    const variableOfWrongType = await httpGraphQL(
      server.httpUrl,
      `mutation ($p: String!) { sendMessage(channel: "x", payload: $p) { delivered } }`,
      { p: "s" },
    );
    expect(variableOfWrongType.body.errors?.[0]?.message).toMatch(/\$p.*String!.*JSON!/);

    const health = await fetch(server.httpUrl.replace("/graphql", "/health"));
    expect(health.status).toBe(200);
    const stillServing = await httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel: "x", payload: { ok: true } });
    expect(stillServing.body.data?.sendMessage.delivered).toBe(true);
  });
});
