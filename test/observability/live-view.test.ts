import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { joinBySubscription } from "../helpers/channels.js";
import { connectWs, httpGraphQL } from "../helpers/graphql.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { ADMIN_TOKEN, freshPostgresUrl, startServer } from "../helpers/server.js";

const LIVE_VIEW = `query ($prefix: String, $first: Int) {
  serverInfo { connections { webSockets httpRequests webSocketSubscriptions httpSubscriptions channels } }
  activeChannels(prefix: $prefix, first: $first) { name members subscribers clusterMembers }
}`;

const asAdmin = (url: string, variables: Record<string, unknown> = {}) => httpGraphQL(url, LIVE_VIEW, variables, { token: ADMIN_TOKEN });

describe("activeChannels and serverInfo.connections", () => {
  it("list the channels with members, filtered by prefix and paged, with connection and subscription counts", async () => {
    const server = await startServer();
    const alice = await connectWs(server.wsUrl);
    const bob = await connectWs(server.wsUrl);
    await joinBySubscription(alice, "room:a");
    await joinBySubscription(alice, "room:a"); // one member, two subscriptions
    await joinBySubscription(bob, "room:a");
    await joinBySubscription(bob, "room:b");
    await joinBySubscription(bob, "other");

    const all = await asAdmin(server.httpUrl);
    expect(all.body.errors).toBeUndefined();
    expect(all.body.data?.activeChannels).toEqual([
      { name: "other", members: 1, subscribers: 1, clusterMembers: null },
      { name: "room:a", members: 2, subscribers: 3, clusterMembers: null },
      { name: "room:b", members: 1, subscribers: 1, clusterMembers: null },
    ]);
    expect(all.body.data?.serverInfo.connections).toEqual({
      webSockets: 2,
      httpRequests: 1,
      webSocketSubscriptions: 5,
      httpSubscriptions: 0,
      channels: 3,
    });

    const rooms = await asAdmin(server.httpUrl, { prefix: "room:", first: 1 });
    expect(rooms.body.data?.activeChannels.map((channel: { name: string }) => channel.name)).toEqual(["room:a"]);

    await bob.dispose();
    await expect
      .poll(async () => (await asAdmin(server.httpUrl)).body.data?.activeChannels)
      .toEqual([{ name: "room:a", members: 1, subscribers: 2, clusterMembers: null }]);
  });

  it("refuses callers without the admin token, and a page size out of range", async () => {
    const server = await startServer();
    const anonymous = await httpGraphQL(server.httpUrl, `{ activeChannels { name } }`);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    for (const first of [0, 501]) {
      const refused = await asAdmin(server.httpUrl, { first });
      expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "first" });
    }
  });
});

describeRedis("activeChannels across instances", () => {
  const { prefix, clean } = testPrefix();
  afterAll(clean);

  it("counts the members on every instance where Redis presence knows them", async () => {
    const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix };
    const a = await startServer(env);
    const b = await startServer(env);
    await joinBySubscription(await connectWs(a.wsUrl), "shared");
    await joinBySubscription(await connectWs(b.wsUrl), "shared");
    await joinBySubscription(await connectWs(b.wsUrl), "shared");
    await expect
      .poll(async () => (await asAdmin(a.httpUrl)).body.data?.activeChannels)
      .toEqual([{ name: "shared", members: 1, subscribers: 1, clusterMembers: 3 }]);
  });

  it("lists the channels whose members are all on another instance, paged and filtered there too, until they leave", async () => {
    const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix };
    const a = await startServer(env);
    const b = await startServer(env);
    const onB = await connectWs(b.wsUrl);
    for (const channel of ["far:1", "far:2", "far:3", "near"]) await joinBySubscription(onB, channel);
    await joinBySubscription(await connectWs(a.wsUrl), "far:2");
    await expect
      .poll(async () => (await asAdmin(a.httpUrl, { prefix: "far:" })).body.data?.activeChannels)
      .toEqual([
        { name: "far:1", members: 0, subscribers: 0, clusterMembers: 1 },
        { name: "far:2", members: 1, subscribers: 1, clusterMembers: 2 },
        { name: "far:3", members: 0, subscribers: 0, clusterMembers: 1 },
      ]);
    const page = await asAdmin(a.httpUrl, { prefix: "far:", first: 2 });
    expect(page.body.data?.activeChannels.map((channel: { name: string }) => channel.name)).toEqual(["far:1", "far:2"]);
    expect((await asAdmin(a.httpUrl)).body.data?.activeChannels.map((channel: { name: string }) => channel.name)).toContain("near");

    await onB.dispose();
    await expect
      .poll(async () => (await asAdmin(a.httpUrl, { prefix: "far:" })).body.data?.activeChannels)
      .toEqual([{ name: "far:2", members: 1, subscribers: 1, clusterMembers: 1 }]);
    // The last one out took its channel out of the index: nothing of it is left in Redis.
    const redis = new Redis(REDIS_BASE_URL);
    try {
      expect(await redis.zrange(`${prefix}presence-index`, 0, -1)).not.toContain("far:1");
    } finally {
      redis.disconnect();
    }
  });
});
