import { afterAll, describe, expect, it } from "vitest";
import { JOIN_CHANNEL, joinBySubscription } from "./helpers/channels.js";
import { connectWs, httpGraphQL, type Subscription, wsGraphQL, wsSubscribe } from "./helpers/graphql.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "./helpers/redis.js";
import { freshPostgresUrl, startServer, type TestServer } from "./helpers/server.js";
import { admin, createTrigger } from "./helpers/triggers.js";

const PRESENCE = `query ($channel: String!) { presence(channel: $channel) { id joinOptions } }`;
const byId = (members: { id: string; joinOptions: unknown }[]) => [...members].sort((a, b) => a.id.localeCompare(b.id));

/** A room with presence whose JOIN trigger rewrites the name given, so what presence shows is the delivered JOIN's. */
async function room(server: TestServer, pattern: string): Promise<void> {
  expect(
    (await admin(server.httpUrl, `mutation { createChannel(input: { pattern: "${pattern}", presence: true }) { id } }`)).errors,
  ).toBeUndefined();
  await createTrigger(server.httpUrl, {
    channel: pattern,
    actions: ["JOIN"],
    stack: [{ set: "commandOptions.name", value: "$uppercase(commandOptions.name)" }],
  });
}

describe("presence", () => {
  it("lists each member with the options of its latest JOIN as delivered, and nothing of them in a LEAVE", async () => {
    const server = await startServer();
    await room(server, "hall");
    const ann = await connectWs(server.wsUrl);
    const watcher = await joinBySubscription(ann, "hall", { name: "ann" });
    const bob = await connectWs(server.wsUrl);
    const bobJoin = await joinBySubscription(bob, "hall", { name: "bob" });
    const members = async () => byId((await httpGraphQL(server.httpUrl, PRESENCE, { channel: "hall" })).body.data!.presence);
    expect(await members()).toEqual(
      byId([
        { id: watcher.join.client.id, joinOptions: { name: "ANN" } },
        { id: bobJoin.join.client.id, joinOptions: { name: "BOB" } },
      ]),
    );
    // Joined again with other options: presence shows the latest.
    await wsGraphQL(bob, JOIN_CHANNEL, { channel: "hall", options: { name: "robert" } });
    await expect.poll(members).toContainEqual({ id: bobJoin.join.client.id, joinOptions: { name: "ROBERT" } });

    // Watched by subscriptions that select the client's joinOptions, on the fast path and on the generic one.
    const carol = await connectWs(server.wsUrl);
    const fast = wsSubscribe<{ channel: WatchedEvent }>(carol, WATCH, {});
    const generic = wsSubscribe<{ channel: WatchedEvent }>(carol, WATCH.replace(") {", ") @include(if: true) {"), {});
    for (const subscription of [fast, generic]) expect((await subscription.next()).data!.channel.action).toBe("JOIN");
    // Left by leaveChannel, whose LEAVE is made from the membership (where the join options are).
    expect((await wsGraphQL(bob, `mutation { leaveChannel(channel: "hall") }`)).data).toEqual({ leaveChannel: true });
    for (const subscription of [fast, generic]) {
      expect(await nextLeave(subscription)).toEqual({ action: "LEAVE", client: { id: bobJoin.join.client.id, joinOptions: null } });
    }
  });
});

type WatchedEvent = { action: string; client: { id: string; joinOptions: unknown } };
const WATCH = `subscription { channel(name: "hall") { action client { id joinOptions } } }`;

/** The next LEAVE event a subscription receives. */
async function nextLeave(subscription: Subscription<{ channel: WatchedEvent }>): Promise<WatchedEvent> {
  for (;;) {
    const event = (await subscription.next()).data!.channel;
    if (event.action === "LEAVE") return event;
  }
}

describeRedis("presence across instances", () => {
  const { prefix, clean } = testPrefix();
  afterAll(clean);

  it("shows the join options of members on every instance", async () => {
    const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix };
    const a = await startServer(env);
    const b = await startServer(env);
    await room(a, "shared-hall");
    // The room's setting and trigger made on A reach B as Redis notices.
    await expect
      .poll(async () => (await admin(b.httpUrl, `{ channelConfig(name: "shared-hall") { presence } triggers { actions } }`)).data)
      .toMatchObject({ channelConfig: { presence: true }, triggers: [{ actions: ["JOIN"] }] });
    const onA = await joinBySubscription(await connectWs(a.wsUrl), "shared-hall", { name: "ann" });
    const onB = await joinBySubscription(await connectWs(b.wsUrl), "shared-hall", { name: "bob" });
    const expected = byId([
      { id: onA.join.client.id, joinOptions: { name: "ANN" } },
      { id: onB.join.client.id, joinOptions: { name: "BOB" } },
    ]);
    for (const server of [a, b]) {
      await expect
        .poll(async () => byId((await httpGraphQL(server.httpUrl, PRESENCE, { channel: "shared-hall" })).body.data!.presence))
        .toEqual(expected);
    }
  });
});
