/**
 * Redis faults, through a TCP proxy between one instance and Redis: sends during the outage are
 * refused with SERVICE_UNAVAILABLE (never a masked internal error, never a crash), the outage is
 * logged once each way, and presence converges afterwards: a leave whose presence write failed is
 * written once Redis is back, and an instance paused past the presence TTL (its entries expired and
 * were removed by readers) lists its members again once it runs.
 */
import { afterAll, expect, it } from "vitest";
import { joinBySubscription, SEND_MESSAGE } from "../helpers/channels.js";
import { connectWs, httpGraphQL } from "../helpers/graphql.js";
import { scrape } from "../helpers/metrics.js";
import { type ServerProcess, spawnServer } from "../helpers/process.js";
import { describeRedis, REDIS_BASE_URL, testPrefix } from "../helpers/redis.js";
import { freshPostgresUrl } from "../helpers/server.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";
import { clientToken } from "../helpers/tokens.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = "a-presence-test-secret-that-is-long-enough";
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

const presence = async (server: ServerProcess, channel: string) =>
  ((await httpGraphQL(server.httpUrl, `query ($c: String!) { presence(channel: $c) { id } }`, { c: channel })).body.data?.presence ?? [])
    .map((client: { id: string }) => client.id)
    .sort();

describeRedis("Redis faults", () => {
  it("writes a leave that failed during an outage once Redis is back, and lists a paused instance's members again once it runs", {
    timeout: 180_000,
  }, async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    const { proxy, url: proxiedRedis } = await TcpProxy.inFront(REDIS_BASE_URL);
    cleanups.push(() => proxy.close());
    const env = {
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_PREFIX: prefix,
      JWT_SECRET: SECRET,
      CHANNEL_PRESENCE: "true",
      REDIS_PRESENCE_TTL_SECONDS: "2",
    };
    const a = await spawnServer({ ...env, REDIS_URL: REDIS_BASE_URL });
    const b = await spawnServer({ ...env, REDIS_URL: proxiedRedis });

    const stays = await connectWs(b.wsUrl, { authToken: await clientToken(SECRET, "stays") });
    await joinBySubscription(stays, "room");
    const goes = await connectWs(b.wsUrl, { authToken: await clientToken(SECRET, "goes") });
    await joinBySubscription(goes, "room");
    await expect.poll(() => presence(a, "room")).toEqual(["goes", "stays"]);

    // B loses Redis; a member of B leaves meanwhile, so B cannot remove its entry.
    proxy.cut();
    await expect.poll(async () => (await fetch(b.healthUrl)).status).toBe(503);
    await goes.dispose();
    // B has ended the subscription (its presence write failed): one subscription is left there.
    await expect.poll(async () => (await scrape(b.httpUrl)).value("realtime_subscriptions", { transport: "ws" })).toBe(1);
    expect(await presence(a, "room")).toEqual(["goes", "stays"]); // stale while B cannot write
    proxy.heal();
    await expect.poll(() => presence(a, "room"), { timeout: 15_000 }).toEqual(["stays"]);

    // B stops running past the presence TTL: A drops B's entries as those of a dead instance.
    b.child.kill("SIGSTOP");
    try {
      await expect.poll(() => presence(a, "room"), { timeout: 15_000 }).toEqual([]);
    } finally {
      b.child.kill("SIGCONT");
    }
    await expect.poll(() => presence(a, "room"), { timeout: 15_000 }).toEqual(["stays"]);
    expect(await presence(b, "room")).toEqual(["stays"]);
  });

  it("refuses sends with SERVICE_UNAVAILABLE while Redis is unreachable, keeps serving, and logs the outage once each way", {
    timeout: 120_000,
  }, async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    const { proxy, url: proxiedRedis } = await TcpProxy.inFront(REDIS_BASE_URL);
    cleanups.push(() => proxy.close());
    const server = await spawnServer({
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_PREFIX: prefix,
      REDIS_URL: proxiedRedis,
    });
    // A trigger that counts in Redis: while Redis is away its state step cannot run either.
    await createTrigger(server.httpUrl, { channel: "news", stack: [{ incr: "'count'", as: "n" }] });
    const listener = await joinBySubscription(await connectWs(server.wsUrl), "news");
    const send = (n: number) => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "news", payload: { n } }).then((r) => r.body);
    expect((await send(1)).data?.sendMessage.delivered).toBe(true);
    expect((await listener.subscription.next()).data!.channel.payload).toEqual({ n: 1 });

    proxy.cut();
    await expect.poll(async () => (await fetch(server.healthUrl)).status).toBe(503);
    for (let n = 2; n <= 3; n++) {
      const refused = await send(n);
      expect(refused.errors?.[0]?.extensions?.code, JSON.stringify(refused)).toBe("SERVICE_UNAVAILABLE");
    }
    proxy.heal();
    await expect.poll(async () => (await fetch(server.healthUrl)).status, { timeout: 15_000 }).toBe(200);
    expect((await send(7)).data?.sendMessage.delivered).toBe(true);
    // The refused messages reached nobody; the next one arrives.
    expect((await listener.subscription.next()).data!.channel.payload).toEqual({ n: 7 });
    const output = server.output();
    expect(output.match(/"msg":"redis unreachable"/g)).toHaveLength(1);
    expect(output.match(/"msg":"redis reachable again"/g)).toHaveLength(1);
    expect(output).not.toMatch(/"msg":"(unexpected error|redis reconnecting|redis connection error)"/);

    // Partitioned (nothing closes, nothing answers): the trigger's state step times out waiting, an outage too.
    proxy.partition();
    const held = await send(8);
    expect(held.errors?.[0]).toMatchObject({
      extensions: { code: "SERVICE_UNAVAILABLE" },
      message: expect.stringContaining("could not reach its state"),
    });
    proxy.heal();
    await expect.poll(async () => (await send(9)).data?.sendMessage.delivered, { timeout: 15_000 }).toBe(true);
  });

  it("starts while PostgreSQL and Redis are unreachable: waits for each, logs it once, and serves once they are back", {
    timeout: 120_000,
  }, async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    const { proxy: postgres, url: databaseUrl } = await TcpProxy.inFront(await freshPostgresUrl());
    const { proxy: redis, url: redisUrl } = await TcpProxy.inFront(REDIS_BASE_URL);
    cleanups.push(
      () => postgres.close(),
      () => redis.close(),
    );
    postgres.cut();
    redis.cut();
    let seen = "";
    const started = spawnServer({ DATABASE_URL: databaseUrl, REDIS_PREFIX: prefix, REDIS_URL: redisUrl }, (output) => {
      seen = output;
    });
    started.catch(() => {}); // observed below
    await expect.poll(() => seen, { timeout: 30_000 }).toContain('"msg":"database unreachable"');
    postgres.heal();
    await expect.poll(() => seen, { timeout: 30_000 }).toContain('"msg":"redis unreachable"');
    redis.heal();
    const server = await started;
    expect((await fetch(server.healthUrl)).status).toBe(200);
    expect(server.output().match(/"msg":"database unreachable"/g)).toHaveLength(1);
    expect(server.output()).toContain('"msg":"database reachable again"');
    expect(server.output()).toContain('"msg":"redis reachable again"');
  });

  it("applies a trigger change made elsewhere while its database was unreachable, once it is reachable again", {
    timeout: 120_000,
  }, async () => {
    const { prefix, clean } = testPrefix();
    cleanups.push(clean);
    const databaseUrl = await freshPostgresUrl();
    const { proxy, url: proxiedDatabase } = await TcpProxy.inFront(databaseUrl);
    cleanups.push(() => proxy.close());
    const a = await spawnServer({ DATABASE_URL: databaseUrl, REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix });
    const b = await spawnServer({ DATABASE_URL: proxiedDatabase, REDIS_URL: REDIS_BASE_URL, REDIS_PREFIX: prefix });
    const version = async () =>
      (await httpGraphQL(b.httpUrl, SEND_MESSAGE, { channel: "stamped", payload: {} })).body.data?.sendMessage.event.payload.v;
    const trigger = await createTrigger(a.httpUrl, { channel: "stamped", stack: [{ set: "payload.v", value: "1" }] });
    await expect.poll(version).toBe(1);

    // B cannot read the change it is told about: it reads it again until it can.
    proxy.cut();
    await expect.poll(async () => (await fetch(b.healthUrl)).status).toBe(503);
    const changed = await admin(
      a.httpUrl,
      `mutation ($id: ID!) { updateTrigger(id: $id, input: { stack: [{ set: "payload.v", value: "2" }] }) { revision } }`,
      {
        id: trigger.id,
      },
    );
    expect(changed.errors).toBeUndefined();
    expect(await version()).toBe(1); // B still runs what it had
    proxy.heal();
    await expect.poll(version, { timeout: 20_000 }).toBe(2);
    expect(b.output()).not.toContain('"level":50');
  });

  it("starts when PostgreSQL goes away at any moment of its start, once it is back", { timeout: 180_000 }, async () => {
    const databaseUrl = await freshPostgresUrl();
    // Cut at different steps of the start: at its first connection, at the migration's, and later (reloads, the AFTER queue).
    for (const [afterConnections, thenMs] of [
      [1, 0],
      [2, 0],
      [2, 300],
      [2, 800],
    ] as const) {
      const { proxy, url } = await TcpProxy.inFront(databaseUrl);
      cleanups.push(() => proxy.close());
      proxy.setLatency(20);
      let seen = "";
      const started = spawnServer({ DATABASE_URL: url }, (output) => {
        seen = output;
      });
      started.catch(() => {}); // observed below
      await expect.poll(() => proxy.connectionsMade, { timeout: 30_000, interval: 5 }).toBeGreaterThanOrEqual(afterConnections);
      await new Promise((resolve) => setTimeout(resolve, thenMs));
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // the outage, long enough to fail what was under way
      proxy.heal();
      const server = await started;
      expect((await fetch(server.healthUrl)).status, seen).toBe(200);
      expect(server.output()).not.toContain('"level":50');
      await server.stop();
    }
  });
});
