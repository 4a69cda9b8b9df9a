import { afterAll, describe, expect, it } from "vitest";
import { joinBySubscription, SEND_MESSAGE } from "../helpers/channels.js";
import { connectWs, httpGraphQL } from "../helpers/graphql.js";
import { POSTGRES_REQUIRED, type PrivatePostgres, privatePostgresUnavailable, startPrivatePostgres } from "../helpers/postgres.js";
import { freePort, spawnServer } from "../helpers/process.js";
import { admin, createTrigger } from "../helpers/triggers.js";

// The shared PostgreSQL cannot be stopped from a test: this suite runs a server of its own.
const unavailable = await privatePostgresUnavailable();
if (unavailable && POSTGRES_REQUIRED)
  throw new Error(`PostgreSQL suites are required, but a private PostgreSQL cannot run here: ${unavailable}`);
if (unavailable) console.warn(`skipped, ${unavailable}: a PostgreSQL outage`);

let database: PrivatePostgres | undefined;
afterAll(async () => {
  await database?.destroy();
});

describe.skipIf(unavailable !== null)("a PostgreSQL outage", () => {
  it("is reported by /health, leaves live delivery running, fails database work with a clear error, and heals when PostgreSQL is back", {
    timeout: 120_000,
  }, async () => {
    database = await startPrivatePostgres(await freePort());
    const server = await spawnServer({ DATABASE_URL: database.url });
    const health = async () => {
      const response = await fetch(server.healthUrl);
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const send = (channel: string, n: number) => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { n } }).then((r) => r.body);
    expect(await health()).toMatchObject({ status: 200, body: { database: "ok" } });
    expect(
      (await admin(server.httpUrl, `mutation { createChannel(input: { pattern: "kept", history: 10 }) { id } }`)).errors,
    ).toBeUndefined();
    // Its runs are recorded in the database, which they cannot reach during the outage.
    const trigger = await createTrigger(server.httpUrl, { channel: "live", stack: [{ log: "payload.n" }] });
    const client = await connectWs(server.wsUrl);
    const live = await joinBySubscription(client, "live");
    const kept = await joinBySubscription(client, "kept");
    expect((await send("kept", 1)).data?.sendMessage.delivered).toBe(true);
    expect((await kept.subscription.next()).data!.channel.seq).toBe(1);

    await database.stop();
    await expect.poll(health, { timeout: 10_000 }).toMatchObject({ status: 503, body: { status: "unavailable", database: "unreachable" } });
    // Channels without history never touch the database on the way: joining and sending keep working.
    const newcomer = await joinBySubscription(await connectWs(server.wsUrl), "live");
    expect((await live.subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: newcomer.join.client.id } });
    expect((await send("live", 2)).data?.sendMessage.delivered).toBe(true);
    expect((await live.subscription.next()).data!.channel.payload).toEqual({ n: 2 });
    expect((await newcomer.subscription.next()).data!.channel.payload).toEqual({ n: 2 });
    // A message that must be stored first is refused, not half-delivered, and the server says why.
    const refused = await send("kept", 3);
    expect(refused.errors?.[0]).toMatchObject({
      message: "The database is unreachable; try again shortly",
      extensions: { code: "SERVICE_UNAVAILABLE" },
    });
    expect(await kept.subscription.collectFor(200)).toEqual([]);
    const history = await httpGraphQL(server.httpUrl, `{ history(channel: "kept") { seq } }`);
    expect(history.body.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
    // Reading the runs writes the buffered ones first (the run of message 2 among them): both fail as part of the outage.
    const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 5) { log } } }`, { id: trigger.id });
    expect(runs.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");

    await database.start();
    await expect.poll(health, { timeout: 15_000 }).toMatchObject({ status: 200, body: { database: "ok" } });
    expect((await send("kept", 4)).data?.sendMessage.delivered).toBe(true);
    const after = (await kept.subscription.next()).data!.channel;
    expect(after).toMatchObject({ payload: { n: 4 } });
    expect(after.seq).toBeGreaterThan(1);
    const stored = await httpGraphQL(server.httpUrl, `{ history(channel: "kept") { seq payload } }`);
    expect(stored.body.data!.history.map((event: { payload: { n: number } }) => event.payload.n)).toEqual([1, 4]);
    expect((await send("live", 5)).data?.sendMessage.delivered).toBe(true);
    expect((await live.subscription.next()).data!.channel.payload).toEqual({ n: 5 });
    // The outage was logged as such, once when it began and once when it ended, never as an unexpected error of the server's.
    expect(server.output().match(/"msg":"database unreachable"/g)).toHaveLength(1);
    await expect.poll(() => server.output()).toMatch(/"failures":\d+,"msg":"database reachable again"/);
    expect(server.output()).not.toContain('"msg":"unexpected error"');
    expect(server.output()).not.toContain('"level":50');
  });
});
