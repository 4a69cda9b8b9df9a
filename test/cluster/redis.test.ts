import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import { JOIN_CHANNEL, joinBySubscription, SEND_MESSAGE, type TestEvent } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL, wsGraphQL } from "../helpers/graphql.js";
import { freePort, type ServerProcess, spawnServer } from "../helpers/process.js";
import { describeRedis, REDIS_BASE_URL, redisReachable, testPrefix } from "../helpers/redis.js";
import { freshPostgresUrl } from "../helpers/server.js";
import { clientToken } from "../helpers/tokens.js";
import { admin, createTrigger } from "../helpers/triggers.js";

type SendData = { sendMessage: { delivered: boolean; event: (TestEvent & { seq: number | null }) | null } };
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

async function pair(redisUrl = REDIS_BASE_URL, extra: Record<string, string> = {}): Promise<[ServerProcess, ServerProcess]> {
  const { prefix, clean } = testPrefix(redisUrl);
  cleanups.push(clean);
  const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: redisUrl, REDIS_PREFIX: prefix, ...extra };
  const a = await spawnServer(env); // migrates the schema first
  const b = await spawnServer(env);
  return [a, b];
}

const send = (server: ServerProcess, channel: string, payload: unknown, options?: unknown) =>
  httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel, payload, options }).then((r) => r.body);

describeRedis("several instances over PostgreSQL and Redis", () => {
  it("delivers across instances once, applies triggers and config changes everywhere, agrees on presence and history", async () => {
    const [a, b] = await pair();
    await admin(a.httpUrl, `mutation { createChannel(input: { pattern: "team:*", presence: true, history: 10 }) { id } }`);
    const trigger = await createTrigger(a.httpUrl, {
      channel: "team:*",
      stack: [{ set: "payload.text", value: "$uppercase(payload.text)" }],
    });
    // The setting and the trigger made on A reach B over Redis notices: wait until B holds both.
    const known = `query ($id: ID!) { trigger(id: $id) { id } channels { pattern } }`;
    await expect
      .poll(async () => (await admin(b.httpUrl, known, { id: trigger.id })).data)
      .toMatchObject({ trigger: { id: trigger.id }, channels: expect.arrayContaining([{ pattern: "team:*" }]) });

    const subscriber = await connectWs(a.wsUrl);
    const { subscription, join } = await joinBySubscription(subscriber, "team:1");
    const sent = await send(b, "team:1", { text: "hello from b" });
    expect(sent.data!.sendMessage.event).toMatchObject({ payload: { text: "HELLO FROM B" }, seq: 1 });
    expect((await subscription.next()).data!.channel).toEqual(sent.data!.sendMessage.event);
    // Once, not twice: a later message through B is the next thing the subscriber gets.
    const later = await send(b, "team:1", { text: "later" });
    expect((await subscription.next()).data!.channel).toEqual(later.data!.sendMessage.event);

    // Presence and history agree on both instances.
    const presence = async (server: ServerProcess) =>
      (await httpGraphQL(server.httpUrl, `{ presence(channel: "team:1") { id } }`)).body.data!.presence.map((c: { id: string }) => c.id);
    expect(await presence(a)).toEqual([join.client.id]);
    expect(await presence(b)).toEqual([join.client.id]);
    const memberOnB = await connectWs(b.wsUrl);
    const joinedOnB = await wsGraphQL<{ joinChannel: { event: TestEvent } }>(memberOnB, JOIN_CHANNEL, { channel: "team:1" });
    expect((await subscription.next()).data!.channel.action).toBe("JOIN");
    const both = [join.client.id, joinedOnB.data!.joinChannel.event.client.id].sort();
    expect((await presence(a)).sort()).toEqual(both);
    expect((await presence(b)).sort()).toEqual(both);
    const historyQuery = `{ history(channel: "team:1") { id seq payload } }`;
    const historyA = (await httpGraphQL(a.httpUrl, historyQuery)).body.data!.history;
    expect(historyA).toEqual([
      { id: sent.data!.sendMessage.event!.id, seq: 1, payload: { text: "HELLO FROM B" } },
      { id: later.data!.sendMessage.event!.id, seq: 2, payload: { text: "LATER" } },
    ]);
    expect((await httpGraphQL(b.httpUrl, historyQuery)).body.data!.history).toEqual(historyA);

    // A disconnect on B shows up in presence on A.
    await memberOnB.dispose();
    expect((await subscription.next()).data!.channel.action).toBe("LEAVE");
    expect(await eventually("one member left in presence on A", () => presence(a), { until: (ids) => ids.length === 1 })).toEqual([
      join.client.id,
    ]);

    // Deactivate the trigger through B: the next message through A is unaffected.
    await admin(b.httpUrl, `mutation ($id: ID!) { updateTrigger(id: $id, input: { active: false }) { active } }`, { id: trigger.id });
    const plain = await eventually(
      "a message through A left alone by the deactivated trigger",
      () => send(a, "team:1", { text: "quiet" }),
      {
        until: (result) => result.data?.sendMessage.event?.payload.text === "quiet",
        timeoutMs: 5000,
      },
    );
    expect(plain.data!.sendMessage.event!.payload).toEqual({ text: "quiet" });
    // Sequence numbers are shared: every message so far, from either instance, is numbered in one sequence.
    const seqs = (await httpGraphQL(b.httpUrl, `{ history(channel: "team:1") { seq } }`)).body.data!.history.map(
      (h: { seq: number }) => h.seq,
    );
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));

    // A channel setting changed through A applies on B at once.
    await admin(a.httpUrl, `mutation { updateChannel(pattern: "team:*", input: { messaging: NOBODY }) { messaging } }`);
    const refused = await eventually("B refusing messages on team:*", () => send(b, "team:2", "x"), {
      until: (result) => result.errors?.[0]?.extensions?.code === "FORBIDDEN",
      timeoutMs: 5000,
    });
    expect(refused.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  }, 90_000);

  it("applies a configuration file through A in one transaction, and B holds and runs all of it once it committed", async () => {
    const [a, b] = await pair();
    const apply = `mutation ($config: JSON!) { applyConfig(config: $config) { applied changes { summary } } }`;
    const file = {
      version: 1,
      channels: [{ pattern: "applied:*", history: 5 }],
      triggers: [
        { name: "upper", actions: ["MESSAGE"], channel: "applied:*", stack: [{ set: "payload.text", value: "$uppercase(payload.text)" }] },
        { name: "mark", actions: ["MESSAGE"], channel: "applied:*", order: 1, stack: [{ set: "payload.marked", value: "true" }] },
      ],
    };
    const result = (await admin(a.httpUrl, apply, { config: file })).data!.applyConfig;
    expect(result).toEqual({
      applied: true,
      changes: [
        { summary: "+ channel applied:*" },
        { summary: '+ trigger "mark" on applied:*' },
        { summary: '+ trigger "upper" on applied:*' },
      ],
    });
    const sent = await eventually("B running both applied triggers", () => send(b, "applied:1", { text: "hi" }), {
      until: (answer) => answer.data?.sendMessage.event?.payload.marked === true && answer.data.sendMessage.event.payload.text === "HI",
      timeoutMs: 10_000,
    });
    // Sent until B runs both triggers (notices travel over Redis): then it runs them in order.
    expect(sent.data!.sendMessage.event!.payload).toEqual({ text: "HI", marked: true });
    const onB = (await admin(b.httpUrl, `{ channels { pattern history } triggers { name revisions { note } } }`)).data!;
    expect(onB.channels).toContainEqual({ pattern: "applied:*", history: 5 });
    expect(onB.triggers).toEqual([
      { name: "upper", revisions: [{ note: "config apply" }] },
      { name: "mark", revisions: [{ note: "config apply" }] },
    ]);
  }, 90_000);

  it("lets a client leave through any instance: joined over HTTP on A, left over HTTP on B, one LEAVE, gone from presence everywhere", async () => {
    const secret = "a-cluster-test-secret-that-is-long-enough";
    const [a, b] = await pair(REDIS_BASE_URL, { JWT_SECRET: secret, CHANNEL_PRESENCE: "true" });
    const token = await clientToken(secret, "roamer");
    const watcher = await joinBySubscription(await connectWs(b.wsUrl), "roam");
    const joined = await httpGraphQL(a.httpUrl, JOIN_CHANNEL, { channel: "roam" }, { token });
    expect(joined.body.data?.joinChannel.joined).toBe(true);
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: "roamer" } });
    const members = async (server: ServerProcess) =>
      (await admin(server.httpUrl, `{ presence(channel: "roam") { id } }`)).data!.presence.map((c: { id: string }) => c.id).sort();
    await expect.poll(() => members(b)).toEqual(["roamer", watcher.join.client.id].sort());

    const leave = (server: ServerProcess) =>
      httpGraphQL(server.httpUrl, `mutation { leaveChannel(channel: "roam") }`, {}, { token }).then((r) => r.body.data?.leaveChannel);
    expect(await leave(b)).toBe(true);
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "LEAVE", client: { id: "roamer" } });
    expect(await watcher.subscription.collectFor(300)).toEqual([]); // one LEAVE, not one per instance
    await expect.poll(() => members(a)).toEqual([watcher.join.client.id]);
    await expect.poll(() => members(b)).toEqual([watcher.join.client.id]);
    expect(await leave(b)).toBe(false);
    expect(await leave(a)).toBe(false);
  }, 90_000);

  it("holds the gates across instances: members-only by cluster presence, leaving and config changes end subscriptions everywhere", async () => {
    const secret = "a-cluster-test-secret-that-is-long-enough";
    const [a, b] = await pair(REDIS_BASE_URL, { JWT_SECRET: secret });
    const token = await clientToken(secret, "member");
    await admin(a.httpUrl, `mutation { createChannel(input: { pattern: "club", membersOnly: true, presence: true }) { id } }`);
    const sendAs = (server: ServerProcess) =>
      httpGraphQL<SendData>(server.httpUrl, SEND_MESSAGE, { channel: "club", payload: { hi: 1 } }, { token }).then((r) => r.body);
    // The setting made on A reaches B over a Redis notice: B refuses a non-member once it has it.
    await expect.poll(async () => (await sendAs(b)).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await httpGraphQL(a.httpUrl, JOIN_CHANNEL, { channel: "club" }, { token })).body.data?.joinChannel.joined).toBe(true);
    // Joined on A, a member on B too: B learns it from the cluster's presence.
    await expect.poll(async () => (await sendAs(b)).errors?.[0]?.extensions?.code ?? "sent").toBe("sent");

    // The same client subscribed on A; leaving through B completes that subscription.
    const onA = await connectWs(a.wsUrl, { authToken: token });
    const subscribed = await joinBySubscription(onA, "club");
    expect((await httpGraphQL(b.httpUrl, `mutation { leaveChannel(channel: "club") }`, {}, { token })).body.data?.leaveChannel).toBe(true);
    expect(await subscribed.subscription.ended).toEqual({});

    // A configuration change made on B removes the anonymous subscribers on A.
    const anonymous = await joinBySubscription(await connectWs(a.wsUrl), "open");
    await admin(b.httpUrl, `mutation { createChannel(input: { pattern: "open", anonymousClients: false }) { id } }`);
    expect(JSON.stringify((await anonymous.subscription.ended).error)).toContain("UNAUTHENTICATED");
  }, 90_000);

  it("forgets the presence of an instance that died, instead of keeping it forever", async () => {
    const [a, b] = await pair(REDIS_BASE_URL, { REDIS_PRESENCE_TTL_SECONDS: "2", CHANNEL_PRESENCE: "true" });
    await joinBySubscription(await connectWs(a.wsUrl), "lobby");
    const ids = async () => (await httpGraphQL(b.httpUrl, `{ presence(channel: "lobby") { id } }`)).body.data!.presence as unknown[];
    expect(await ids()).toHaveLength(1);
    await a.stop("SIGKILL");
    expect(await eventually("the dead instance's member gone from presence", ids, { until: (list) => list.length === 0 })).toEqual([]);
  }, 90_000);

  it("recovers from dropped Redis connections and a Redis restart mid-stream: the gap shows in seq, history fills it, health follows", async () => {
    const port = await freePort();
    const startRedis = () =>
      spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    let redis = startRedis();
    cleanups.push(async () => void redis.kill("SIGKILL"));
    const url = `redis://127.0.0.1:${port}`;
    await eventually("the new Redis reachable", () => redisReachable(url), { timeoutMs: 10_000 });
    const [a, b] = await pair(url, { CHANNEL_HISTORY: "100" });

    const { subscription } = await joinBySubscription(await connectWs(a.wsUrl), "stream");
    const seen: number[] = [];
    const take = async (count: number) => {
      for (let i = 0; i < count; i++) seen.push((await subscription.next()).data!.channel.seq!);
    };
    for (let n = 0; n < 3; n++) await send(b, "stream", { n });
    await take(3);

    // Drop the subscriber connections (Redis pub/sub is at-most-once): what B publishes while A
    // reconnects never reaches A. The jump in seq shows it, and history has every message.
    const admin = new Redis(url);
    await admin.client("KILL", "TYPE", "pubsub");
    for (let n = 3; n < 60; n++) await send(b, "stream", { n });
    await eventually(
      "A receiving B's messages again",
      async () => {
        await send(b, "stream", { n: "probe" });
        return subscription.collectFor(100);
      },
      {
        until: (events) => {
          seen.push(...events.map((result) => result.data!.channel.seq!));
          return events.length > 0;
        },
        timeoutMs: 10_000,
      },
    );
    admin.disconnect();
    const missed = Array.from({ length: seen.at(-1)! }, (_, i) => i + 1).filter((seq) => !seen.includes(seq));
    expect(missed.length).toBeGreaterThan(0);
    expect(seen).toEqual([...seen].sort((x, y) => x - y)); // in order, with a gap
    const recovered = (await httpGraphQL(a.httpUrl, `{ history(channel: "stream", last: 100) { seq } }`)).body.data!.history.map(
      (h: { seq: number }) => h.seq,
    );
    expect(recovered).toEqual(expect.arrayContaining(missed));

    redis.kill("SIGKILL");
    await eventually("B's health check failing", () => fetch(b.healthUrl).then((r) => r.status), {
      until: (status) => status === 503,
      timeoutMs: 10_000,
    });
    const down = await (await fetch(a.healthUrl)).json();
    expect(down).toMatchObject({ status: "unavailable", database: "ok", redis: "unreachable" });

    redis = startRedis();
    await eventually("B healthy again", () => fetch(b.healthUrl).then((r) => r.status), {
      until: (status) => status === 200,
      timeoutMs: 15_000,
    });
    await eventually("A healthy again", () => fetch(a.healthUrl).then((r) => r.status), {
      until: (status) => status === 200,
      timeoutMs: 15_000,
    });
    // The counter lived in the Redis that died; numbering resumes from history, so the sequence goes on.
    const after = await eventually(
      "A receiving B's messages after the Redis restart",
      async () => {
        await send(b, "stream", { probe: true });
        return subscription.collectFor(300);
      },
      { until: (events) => events.length > 0, timeoutMs: 15_000 },
    );
    const resumed = after.map((result) => result.data!.channel.seq!);
    expect(resumed[0]).toBeGreaterThan(seen.at(-1)!);
    // Whatever was published while the subscriber's instance was reconnecting is in history.
    const history = (await httpGraphQL(a.httpUrl, `{ history(channel: "stream", last: 100) { seq } }`)).body.data!.history.map(
      (h: { seq: number }) => h.seq,
    );
    expect(history).toEqual(Array.from({ length: history.length }, (_, i) => i + 1));
    expect(history.at(-1)).toBeGreaterThanOrEqual(resumed.at(-1)!);
    // The sockets stayed open all along: the same subscription keeps receiving.
    await send(b, "stream", { n: "last" });
    expect((await subscription.next()).data!.channel.payload).toEqual({ n: "last" });
  }, 120_000);
});
