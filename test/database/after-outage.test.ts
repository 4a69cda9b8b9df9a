import { afterAll, expect, inject, it } from "vitest";
import { joinBySubscription, SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL } from "../helpers/graphql.js";
import { scrape } from "../helpers/metrics.js";
import { createDatabaseFrom, describePostgres } from "../helpers/postgres.js";
import { startReceiver } from "../helpers/receiver.js";
import { startServer } from "../helpers/server.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = `whsec_${Buffer.from("an-after-trigger-secret-0123456").toString("base64")}`;

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop();
});

/** A database of the test's own, reached through a proxy the test cuts, as a network outage would. */
async function proxiedDatabase(): Promise<{ proxy: TcpProxy; url: string }> {
  const database = await createDatabaseFrom(inject("postgresTemplate")!);
  drops.push(database.drop);
  const proxied = await TcpProxy.inFront(database.url);
  drops.push(() => proxied.proxy.close());
  return proxied;
}

describePostgres("AFTER trigger runs while the database is unreachable", () => {
  it("refuses a send on a channel without history with SERVICE_UNAVAILABLE before anyone receives it, and stores the runs of every acknowledged one", {
    timeout: 120_000,
  }, async () => {
    const { proxy, url } = await proxiedDatabase();
    const receiver = await startReceiver();
    const server = await startServer({ DATABASE_URL: url, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}` });
    const trigger = await createTrigger(server.httpUrl, {
      channel: "live",
      timing: "AFTER",
      stack: [{ http: { url: `'${receiver.origin}/live'`, body: "{ 'n': payload.n }" }, as: "r" }],
    });
    const live = await joinBySubscription(await connectWs(server.wsUrl), "live");
    const send = (n: number) => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "live", payload: { n } }).then((r) => r.body);
    const health = () => fetch(server.httpUrl.replace(/\/graphql$/, "/health")).then((response) => response.status);

    expect((await send(1)).data?.sendMessage.delivered).toBe(true);
    expect((await live.subscription.next()).data!.channel.payload).toEqual({ n: 1 });

    proxy.cut();
    const refused = await send(2);
    expect(refused.errors?.[0]).toMatchObject({
      message: "The database is unreachable; try again shortly",
      extensions: { code: "SERVICE_UNAVAILABLE" },
    });

    proxy.heal();
    await expect.poll(health, { timeout: 30_000 }).toBe(200);
    expect((await send(3)).data?.sendMessage.delivered).toBe(true);
    // The refused message reached nobody: the next one the subscriber gets is the first acknowledged after it.
    expect((await live.subscription.next()).data!.channel.payload).toEqual({ n: 3 });
    await eventually("both runs delivered", () => receiver.requests.length >= 2, { timeoutMs: 30_000 });
    expect(receiver.requests.map((request) => JSON.parse(request.body).n).sort()).toEqual([1, 3]);
    const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 10) { input } } }`, { id: trigger.id });
    expect(runs.data!.trigger.runs.map((run: { input: { payload: { n: number } } }) => run.input.payload.n).sort()).toEqual([1, 3]);
    expect((await scrape(server.httpUrl)).value("realtime_after_trigger_refusals_total", { cause: "unavailable" })).toBe(1);
  });

  it("refuses a message whose database connection is lost mid-write with outcome UNKNOWN, and delivers it to nobody", {
    timeout: 120_000,
  }, async () => {
    const { proxy, url } = await proxiedDatabase();
    const server = await startServer({ DATABASE_URL: url });
    expect(
      (await admin(server.httpUrl, `mutation { createChannel(input: { pattern: "kept", history: 10 }) { id } }`)).errors,
    ).toBeUndefined();
    const kept = await joinBySubscription(await connectWs(server.wsUrl), "kept");
    const send = (n: number) => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "kept", payload: { n } }).then((r) => r.body);
    expect((await send(1)).data?.sendMessage.delivered).toBe(true);
    expect((await kept.subscription.next()).data!.channel.payload).toEqual({ n: 1 });

    // The history write goes out and no answer comes back; then the connection is lost.
    proxy.partition();
    const pending = send(2);
    await expect.poll(() => server.app.services.publisher.pending, { timeout: 10_000 }).toBe(1);
    proxy.cut();
    expect((await pending).errors?.[0]?.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", outcome: "UNKNOWN" });
    proxy.heal();
    await expect.poll(async () => (await send(3)).data?.sendMessage.delivered, { timeout: 30_000 }).toBe(true);
    // Not delivered live: the subscriber's next message is one acknowledged after it.
    expect((await kept.subscription.next()).data!.channel.payload.n).toBeGreaterThanOrEqual(3);
  });
});
