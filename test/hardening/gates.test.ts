/**
 * The channel gates through real doors: a WebSocket's bursts and reused ids, limits per address,
 * origins, authorization that ends with the token or a configuration change, leaving, and
 * members-only channels. Each case here was a way around the rules before the gates held.
 */
import { describe, expect, it } from "vitest";
import { clientAddress } from "../../src/http/client-address.js";
import {
  CHANNEL_SUBSCRIPTION,
  GENERIC_CHANNEL_SUBSCRIPTION,
  joinBySubscription,
  SEND_MESSAGE,
  type TestEvent,
} from "../helpers/channels.js";
import { connectWs, httpGraphQL, sseSubscribe, wsGraphQL, wsSubscribe } from "../helpers/graphql.js";
import { acknowledgedSocket, type RawSocket, rawSocket } from "../helpers/raw-ws.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { clientToken } from "../helpers/tokens.js";
import { admin } from "../helpers/triggers.js";

const JWT_SECRET = "a-test-secret-that-is-long-enough-0123456789";

const subscribeFrame = (id: string, channel: string, query = CHANNEL_SUBSCRIPTION) =>
  JSON.stringify({ id, type: "subscribe", payload: { query, variables: { name: channel } } });
const completeFrame = (id: string) => JSON.stringify({ id, type: "complete" });

async function presentIds(server: TestServer, channel: string): Promise<string[]> {
  const { body } = await httpGraphQL<{ presence: { id: string }[] }>(
    server.httpUrl,
    `query ($c: String!) { presence(channel: $c) { id } }`,
    { c: channel },
    { token: ADMIN_TOKEN },
  );
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.presence.map((client) => client.id).sort();
}

/** Waits until nothing the server holds for channels is left (every connection has gone). */
async function expectNothingHeld(server: TestServer): Promise<void> {
  await expect
    .poll(() => server.app.services.channels.stats(), { timeout: 5000 })
    .toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
}

/** The client id a raw socket's JOIN event names. */
async function ownJoin(socket: RawSocket, id: string): Promise<string> {
  await expect.poll(() => socket.received.some((frame) => frame.id === id && frame.type === "next")).toBe(true);
  return socket.received.find((frame) => frame.id === id && frame.type === "next")!.payload.data.channel.client.id;
}

/** A `next` frame with data: a subscription's first event, its own JOIN. */
const isJoin = (frame: Record<string, any>) => frame.type === "next" && frame.payload?.data?.channel?.action === "JOIN";
/** A refused operation: an `error` frame, or a `next` whose result carries errors. */
const isRefusal = (frame: Record<string, any>) => frame.type === "error" || (frame.type === "next" && frame.payload?.errors !== undefined);
const refusalCode = (frame: Record<string, any>) => (frame.type === "error" ? frame.payload : frame.payload.errors)[0].extensions.code;
/** The ids of the operations that have been answered (joined or refused). */
const answered = (socket: RawSocket) =>
  new Set(socket.received.filter((frame) => isJoin(frame) || isRefusal(frame)).map((frame) => frame.id));

describe("a WebSocket's bursts", () => {
  it.each([
    ["plain", CHANNEL_SUBSCRIPTION],
    ["generic", GENERIC_CHANNEL_SUBSCRIPTION],
  ])("subscribe, complete, subscribe with one id, back to back, leaves no ghost member (%s path)", async (_path, query) => {
    const server = await startServer({ CHANNEL_PRESENCE: "true" });
    const socket = await acknowledgedSocket(server.wsUrl);
    // Every frame in one write: 200 rounds on id "1", then "1" stays subscribed.
    const frames: string[] = [];
    for (let round = 0; round < 200; round++) frames.push(subscribeFrame("1", "ghosts", query), completeFrame("1"));
    frames.push(subscribeFrame("1", "ghosts", query));
    for (const frame of frames) socket.ws.send(frame);
    const clientId = await ownJoin(socket, "1");
    await expect.poll(() => presentIds(server, "ghosts"), { timeout: 10_000 }).toEqual([clientId]);
    await expect.poll(() => server.app.services.channels.stats().listeners, { timeout: 10_000 }).toBe(1);
    socket.send(completeFrame("1"));
    await expect.poll(() => presentIds(server, "ghosts")).toEqual([]);
    socket.ws.close();
    await expectNothingHeld(server);
  });

  it.each([
    ["plain", CHANNEL_SUBSCRIPTION],
    ["generic", GENERIC_CHANNEL_SUBSCRIPTION],
  ])("1,000 subscribe frames at once open at most MAX_SUBSCRIPTIONS_PER_SOCKET (%s path)", async (_path, query) => {
    const server = await startServer({
      MAX_SUBSCRIPTIONS_PER_SOCKET: "20",
      MAX_CHANNELS_PER_CLIENT: "1000",
      MAX_JOINS_PER_SECOND: "100000",
    });
    const socket = await acknowledgedSocket(server.wsUrl);
    for (let i = 0; i < 1000; i++) socket.ws.send(subscribeFrame(String(i), `burst:${i}`, query));
    await expect.poll(() => answered(socket).size, { timeout: 20_000 }).toBe(1000);
    const opened = socket.received.filter(isJoin);
    const refused = socket.received.filter(isRefusal);
    expect(opened).toHaveLength(20);
    expect(refused).toHaveLength(980);
    expect(new Set(refused.map((frame) => refusalCode(frame)))).toEqual(new Set(["LIMIT_EXCEEDED"]));
    expect(server.app.services.channels.stats().listeners).toBe(20);
    socket.ws.close();
    await expectNothingHeld(server);
  });

  it("1,000 subscribe frames to distinct channels keep a client in at most MAX_CHANNELS_PER_CLIENT", async () => {
    const server = await startServer({
      MAX_SUBSCRIPTIONS_PER_SOCKET: "1000",
      MAX_CHANNELS_PER_CLIENT: "7",
      MAX_JOINS_PER_SECOND: "100000",
    });
    const socket = await acknowledgedSocket(server.wsUrl);
    for (let i = 0; i < 1000; i++) socket.ws.send(subscribeFrame(String(i), `spread:${i}`));
    await expect.poll(() => answered(socket).size, { timeout: 20_000 }).toBe(1000);
    expect(socket.received.filter(isJoin)).toHaveLength(7);
    expect(new Set(socket.received.filter(isRefusal).map((frame) => refusalCode(frame)))).toEqual(new Set(["LIMIT_EXCEEDED"]));
    expect(server.app.services.channels.stats().channels).toBe(7);
    socket.ws.close();
    await expectNothingHeld(server);
  });
});

describe("limits per address", () => {
  it("caps open connections and new connections per second per address; TRUST_PROXY decides whose address counts", async () => {
    const server = await startServer({ MAX_CONNECTIONS_PER_ADDRESS: "3", MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000" });
    const open = await Promise.all([1, 2, 3].map(() => acknowledgedSocket(server.wsUrl)));
    const fourth = rawSocket(server.wsUrl);
    await fourth.closed;
    expect(fourth.errors).toContain("HTTP 429");
    open[0]!.ws.close();
    await open[0]!.closed;
    await expect
      .poll(async () => {
        const retry = rawSocket(server.wsUrl);
        const outcome = await Promise.race([retry.opened.then(() => "open"), retry.closed.then(() => "refused")]);
        retry.ws.terminate();
        return outcome;
      })
      .toBe("open");

    // One new connection per 10 s: the burst's first gets in, however slowly the machine serves the rest.
    const rated = await startServer({ MAX_ADDRESS_CONNECTIONS_PER_SECOND: "0.1" });
    const attempts = Array.from({ length: 5 }, () => rawSocket(rated.wsUrl));
    const outcomes = await Promise.all(
      attempts.map((s) =>
        Promise.race([s.opened.then(() => "open"), s.closed.then(() => (s.errors.includes("HTTP 429") ? "HTTP 429" : s.errors.join()))]),
      ),
    );
    expect(outcomes.filter((o) => o === "open")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "HTTP 429")).toHaveLength(4);
  });

  it("limits anonymous sends and joins over HTTP by address, across requests", async () => {
    // Rates this low refill one token per 10 s: the counts below do not depend on how fast requests arrive.
    const server = await startServer({ MAX_ADDRESS_MESSAGES_PER_SECOND: "0.1", MAX_ADDRESS_JOINS_PER_SECOND: "0.1" });
    const sends = await Promise.all(
      Array.from({ length: 12 }, () => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "anon", payload: { hi: 1 } })),
    );
    const codes = sends.map(({ body }) => body.errors?.[0]?.extensions?.code ?? "ok");
    expect(codes.filter((code) => code === "ok")).toHaveLength(1);
    expect(codes.filter((code) => code === "RATE_LIMITED")).toHaveLength(11);
    const joins = await Promise.all(
      Array.from({ length: 6 }, () => httpGraphQL(server.httpUrl, `mutation { joinChannel(channel: "anon") { joined } }`)),
    );
    expect(joins.filter(({ body }) => body.errors?.[0]?.extensions?.code === "RATE_LIMITED")).toHaveLength(5);
    // The admin is exempt.
    const asAdmin = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "anon", payload: {} }, { token: ADMIN_TOKEN });
    expect(asAdmin.body.errors).toBeUndefined();
  });

  it("finds the caller's address: the peer, or the X-Forwarded-For entry the trusted proxies vouch for", () => {
    expect(clientAddress("127.0.0.1", "203.0.113.7", 0)).toBe("127.0.0.1");
    expect(clientAddress("127.0.0.1", "203.0.113.7", 1)).toBe("203.0.113.7");
    expect(clientAddress("127.0.0.1", "198.51.100.1, 203.0.113.7", 1)).toBe("203.0.113.7");
    expect(clientAddress("127.0.0.1", "198.51.100.1, 203.0.113.7", 2)).toBe("198.51.100.1");
    expect(clientAddress("127.0.0.1", "203.0.113.7", 5)).toBe("203.0.113.7");
    expect(clientAddress("::ffff:192.0.2.4", undefined, 0)).toBe("192.0.2.4");
    expect(clientAddress("2001:db8:1:2:3:4:5:6", undefined, 0)).toBe(clientAddress("2001:db8:1:2:ffff::1", undefined, 0));
    expect(clientAddress("2001:db8:1:2::1", undefined, 0)).not.toBe(clientAddress("2001:db8:1:3::1", undefined, 0));
  });
});

describe("origins", () => {
  it("refuses a WebSocket upgrade from a browser origin CORS_ORIGINS does not list, with 403 before the upgrade", async () => {
    const server = await startServer({ CORS_ORIGINS: "https://app.example" });
    const hostile = rawSocket(server.wsUrl, undefined, { origin: "https://evil.example" });
    await hostile.closed;
    expect(hostile.errors).toContain("HTTP 403");
    const friendly = rawSocket(server.wsUrl, undefined, { origin: "https://app.example" });
    await friendly.opened;
    const noOrigin = rawSocket(server.wsUrl);
    await noOrigin.opened;
  });
});

describe("authorization lasts only as long as it is true", () => {
  it("closes a WebSocket with 4403 'Token expired' when its token expires, and its client leaves", async () => {
    const server = await startServer({ JWT_SECRET });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "expiring");
    const socket = await acknowledgedSocket(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "short-lived", { expires: "2s" }) });
    socket.send(subscribeFrame("1", "expiring"));
    expect(await ownJoin(socket, "1")).toBe("short-lived");
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: "short-lived" } });
    const closed = await socket.closed;
    expect(closed).toMatchObject({ code: 4403, reason: "Token expired" });
    expect((await watcher.subscription.next(5000)).data!.channel).toMatchObject({ action: "LEAVE", client: { id: "short-lived" } });
  });

  it("ends an SSE subscription with UNAUTHENTICATED when its token expires", async () => {
    const server = await startServer({ JWT_SECRET });
    const stream = sseSubscribe<{ channel: TestEvent }>(
      server.httpUrl,
      CHANNEL_SUBSCRIPTION,
      { name: "expiring" },
      { authorization: `Bearer ${await clientToken(JWT_SECRET, "sse", { expires: "2s" })}` },
    );
    expect((await stream.next()).data!.channel.action).toBe("JOIN");
    const ended = await Promise.race([
      stream.next(6000).then((result) => result.errors?.[0]?.extensions?.code),
      stream.ended.then(() => "ended without an error"),
    ]);
    expect(ended).toBe("UNAUTHENTICATED");
  });

  it("removes subscribers who may no longer listen when an admin changes the channel, on every door", async () => {
    const server = await startServer({ JWT_SECRET });
    const watcher = await joinBySubscription(
      await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "watcher") }),
      "closing",
    );
    const anonymous = await connectWs(server.wsUrl);
    const plain = wsSubscribe<{ channel: TestEvent }>(anonymous, CHANNEL_SUBSCRIPTION, { name: "closing" });
    const generic = wsSubscribe<{ channel: TestEvent }>(anonymous, GENERIC_CHANNEL_SUBSCRIPTION, { name: "closing" });
    const sse = sseSubscribe<{ channel: TestEvent }>(server.httpUrl, CHANNEL_SUBSCRIPTION, { name: "closing" });
    for (const subscription of [plain, generic, sse]) expect((await subscription.next()).data!.channel.action).toBe("JOIN");
    for (let i = 0; i < 3; i++) expect((await watcher.subscription.next()).data!.channel.action).toBe("JOIN");

    const changed = await admin(
      server.httpUrl,
      `mutation { createChannel(input: { pattern: "closing", anonymousClients: false }) { id } }`,
    );
    expect(changed.errors).toBeUndefined();
    for (const subscription of [plain, generic]) {
      const outcome = await subscription.ended;
      expect(JSON.stringify(outcome.error)).toContain("UNAUTHENTICATED");
    }
    expect((await sse.next()).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const leaves = [];
    for (let i = 0; i < 2; i++) leaves.push((await watcher.subscription.next()).data!.channel.action);
    expect(leaves).toEqual(["LEAVE", "LEAVE"]); // the anonymous socket's client, and the SSE client
    // The authenticated watcher stays and still receives.
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "closing", payload: { still: "here" } }, { token: ADMIN_TOKEN });
    expect((await watcher.subscription.next()).data!.channel.payload).toEqual({ still: "here" });
  });
});

describe("leaving", () => {
  it("leaveChannel over the WebSocket completes the caller's subscriptions there, with one LEAVE and none on close", async () => {
    const server = await startServer({ CHANNEL_PRESENCE: "true" });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "leaving");
    const leaver = await connectWs(server.wsUrl);
    const first = await joinBySubscription(leaver, "leaving");
    await joinBySubscription(leaver, "leaving");
    expect((await wsGraphQL(leaver, `mutation { leaveChannel(channel: "leaving") }`)).data).toEqual({ leaveChannel: true });
    expect(await first.subscription.ended).toEqual({});
    const seen: TestEvent[] = [];
    for (;;) {
      const event = (await watcher.subscription.next()).data!.channel;
      if (event.action === "MESSAGE") break;
      seen.push(event);
      if (event.action === "LEAVE") await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "leaving", payload: { n: 1 } });
    }
    expect(seen.map((event) => event.action)).toEqual(["JOIN", "JOIN", "LEAVE"]);
    expect(seen.every((event) => event.client.id === first.join.client.id)).toBe(true);
    expect(await presentIds(server, "leaving")).toEqual([watcher.join.client.id]);
    await leaver.dispose();
    await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "leaving", payload: { n: 2 } });
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "MESSAGE", payload: { n: 2 } });
  });
});

describe("members-only channels", () => {
  it("lets only members send, read history and presence, over HTTP and the WebSocket; the admin is exempt", async () => {
    const server = await startServer({ JWT_SECRET });
    const created = await admin(
      server.httpUrl,
      `mutation { createChannel(input: { pattern: "club:*", membersOnly: true, history: 10, presence: true }) { membersOnly } }`,
    );
    expect(created.data).toEqual({ createChannel: { membersOnly: true } });
    const send = (options: { token?: string } = {}) =>
      httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "club:1", payload: { hi: 1 } }, options);
    const read = (options: { token?: string } = {}) =>
      httpGraphQL(server.httpUrl, `{ history(channel: "club:1") { id } presence(channel: "club:1") { id } }`, {}, options);

    expect((await send()).body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await read()).body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const memberToken = await clientToken(JWT_SECRET, "member");
    expect((await send({ token: memberToken })).body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const joined = await httpGraphQL(server.httpUrl, `mutation { joinChannel(channel: "club:1") { joined } }`, {}, { token: memberToken });
    expect(joined.body.data).toEqual({ joinChannel: { joined: true } });
    expect((await send({ token: memberToken })).body.errors).toBeUndefined();
    expect((await read({ token: memberToken })).body.data?.presence).toEqual([{ id: "member" }]);

    const socket = await connectWs(server.wsUrl);
    expect((await wsGraphQL(socket, SEND_MESSAGE, { channel: "club:1", payload: {} })).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    await joinBySubscription(socket, "club:1");
    expect((await wsGraphQL(socket, SEND_MESSAGE, { channel: "club:1", payload: {} })).errors).toBeUndefined();
    expect((await read({ token: ADMIN_TOKEN })).body.data?.history).toHaveLength(2);
  });

  it("the README's members-only room: the JOIN trigger picks the members, membersOnly keeps reads and sends to them", async () => {
    const server = await startServer({ JWT_SECRET });
    const setUp = await admin(
      server.httpUrl,
      `mutation {
        createChannel(input: { pattern: "mods:*", anonymousClients: false, membersOnly: true, history: 50 }) { id }
        createTrigger(input: {
          name: "moderators only", channel: "mods:*", actions: [JOIN]
          stack: [{ if: "$not(client.extras.role = 'mod')", then: [{ reject: "'Moderators only'", code: "NOT_A_MODERATOR" }] }]
        }) { id }
      }`,
    );
    expect(setUp.errors).toBeUndefined();
    const mod = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "mod-1", { claims: { role: "mod" } }) });
    await joinBySubscription(mod, "mods:room");
    expect((await wsGraphQL(mod, SEND_MESSAGE, { channel: "mods:room", payload: { text: "hi mods" } })).errors).toBeUndefined();
    for (const claims of [{}, { role: "user" }]) {
      const outsider = await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, "user-1", { claims }) });
      const refused = wsSubscribe(outsider, CHANNEL_SUBSCRIPTION, { name: "mods:room" });
      expect((await refused.next()).errors?.[0]?.extensions?.code).toBe("NOT_A_MODERATOR");
      const history = await wsGraphQL(outsider, `{ history(channel: "mods:room") { payload } }`);
      expect(history.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
      expect((await wsGraphQL(outsider, SEND_MESSAGE, { channel: "mods:room", payload: {} })).errors?.[0]?.extensions?.code).toBe(
        "FORBIDDEN",
      );
    }
  });
});

describe("hostile options", () => {
  it.each([5000, 500])("refuses a %i-level options object over SSE and keeps serving", async (depth) => {
    const server = await startServer();
    // Written by hand: this process's own JSON.stringify would overflow on it.
    const deep = `${'{"d":'.repeat(depth)}1${"}".repeat(depth)}`;
    const body = `{"query":${JSON.stringify(CHANNEL_SUBSCRIPTION)},"variables":{"name":"deep","options":${deep}}}`;
    const response = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body,
    });
    const text = await response.text();
    expect(text).toContain('"code":"BAD_USER_INPUT"');
    expect(text).not.toContain("INTERNAL_SERVER_ERROR");
    const health = await fetch(server.httpUrl.replace("/graphql", "/health"));
    expect(health.status).toBe(200);
  });
});
