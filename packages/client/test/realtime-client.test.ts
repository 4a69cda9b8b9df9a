import type { AddressInfo } from "node:net";
import { connect, createServer, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import WebSocket from "ws";
import { parseEnv } from "../../../src/env.js";
import { createLogger } from "../../../src/logger.js";
import { type App, createApp } from "../../../src/server.js";
import { eventually } from "../../../test/helpers/eventually.js";
import { httpGraphQL } from "../../../test/helpers/graphql.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../../../test/helpers/server.js";
import { admin, createTrigger } from "../../../test/helpers/triggers.js";
import {
  type ChannelEvent,
  type ChannelGap,
  type ChannelMember,
  type ConnectionStatus,
  createRealtimeClient,
  type EventInfo,
  type PresenceUpdate,
  type RealtimeClient,
  type RealtimeClientOptions,
  RealtimeError,
  type TypedDocument,
} from "../src/index.js";

const SEND = `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered event { seq } } }`;

const clients = new Set<RealtimeClient>();
const cleanups: (() => Promise<void>)[] = [];
afterEach(() => {
  for (const client of clients) client.close();
  clients.clear();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A client of the module under test, closed after each test; fast backoff so reconnects are quick. */
function client(url: string, options: Partial<RealtimeClientOptions> = {}): RealtimeClient & { statuses: ConnectionStatus[] } {
  const realtime = createRealtimeClient({ url, webSocketImpl: WebSocket, reconnect: { initialDelayMs: 40, maxDelayMs: 200 }, ...options });
  clients.add(realtime);
  const statuses: ConnectionStatus[] = [];
  realtime.onStatus((status) => statuses.push(status));
  return Object.assign(realtime, { statuses });
}

/** Records what a channel handler receives. */
function recorder() {
  const received: { event: ChannelEvent; info: EventInfo }[] = [];
  return {
    received,
    handler: (event: ChannelEvent, info: EventInfo) => void received.push({ event, info }),
    messages: () => received.filter(({ event }) => event.action === "MESSAGE").map(({ event }) => event),
  };
}

/** How {@link eventually} polls the client's state here: often, so that a short-lived status is seen. */
const often = { timeoutMs: 5000, intervalMs: 10 };

async function sendOverHttp(server: TestServer | string, channel: string, payload: unknown): Promise<number | null> {
  const { body } = await httpGraphQL(typeof server === "string" ? server : server.httpUrl, SEND, { channel, payload });
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.sendMessage.event?.seq ?? null;
}

/**
 * A TCP proxy in front of a server: `cut()` drops every connection through it and refuses new ones
 * (the network goes away, the server stays up) until `restore()`.
 */
async function startProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let down = false;
  const proxy = createServer((incoming) => {
    if (down) {
      incoming.destroy();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    const drop = () => {
      for (const socket of [incoming, upstream]) {
        socket.destroy();
        sockets.delete(socket);
      }
    };
    for (const socket of [incoming, upstream]) {
      sockets.add(socket);
      socket.on("error", drop).on("close", drop);
    }
    incoming.pipe(upstream).pipe(incoming);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const cut = () => {
    down = true;
    for (const socket of sockets) socket.destroy();
  };
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        cut();
        proxy.close(() => resolve());
      }),
  );
  return { url: `ws://127.0.0.1:${(proxy.address() as AddressInfo).port}/graphql`, cut, restore: () => void (down = false) };
}

async function configure(server: TestServer, input: Record<string, unknown>): Promise<void> {
  const body = await admin(server.httpUrl, `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`, { input });
  if (!body.data) throw new Error(JSON.stringify(body.errors));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
  await configure(server, { pattern: "kept:*", history: 100, presence: true });
});

describe("the client module", () => {
  it("joins, receives, sends, reads history and presence, and leaves", async () => {
    const realtime = client(server.wsUrl);
    const room = recorder();
    const membership = await realtime.join("kept:basic", room.handler);
    expect(room.received).toHaveLength(1);
    expect(room.received[0]).toMatchObject({ event: { action: "JOIN", channel: "kept:basic" }, info: { self: true } });
    expect(membership.clientId).toBe(room.received[0]!.event.client.id);

    const sent = await realtime.send("kept:basic", { text: "mine" });
    expect(sent).toMatchObject({ delivered: true, event: { seq: 1, payload: { text: "mine" } } });
    await sendOverHttp(server, "kept:basic", { text: "theirs" });
    await eventually("two messages", () => room.messages().length, { ...often, until: (count) => count === 2 });
    expect(room.received.slice(1).map(({ event, info }) => [event.payload, event.seq, info.self])).toEqual([
      [{ text: "mine" }, 1, true],
      [{ text: "theirs" }, 2, false],
    ]);
    expect(membership.lastSeq).toBe(2);

    expect((await realtime.history("kept:basic", 10)).map((event) => event.payload)).toEqual([{ text: "mine" }, { text: "theirs" }]);
    expect((await realtime.presence("kept:basic")).map((member) => member.id)).toEqual([membership.clientId]);

    membership.leave();
    await expect.poll(() => realtime.presence("kept:basic").then((members) => members.length)).toBe(0);
    realtime.close();
    expect(realtime.statuses).toEqual(["connecting", "connected", "closed"]);
    await expect(realtime.send("kept:basic", {})).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
  });

  it("replays the requested history on the first join, oldest first", async () => {
    for (const n of range(1, 5)) await sendOverHttp(server, "kept:replay", { n });
    const room = recorder();
    await client(server.wsUrl).join("kept:replay", room.handler, { history: 3 });
    expect(room.received.map(({ event }) => event.action)).toEqual(["MESSAGE", "MESSAGE", "MESSAGE", "JOIN"]);
    expect(room.messages().map((event) => event.seq)).toEqual([3, 4, 5]);
  });

  it("rejects a refused join with the server's code, and a dropped one with JOIN_DROPPED", async () => {
    const realtime = client(server.wsUrl);
    await expect(realtime.join("bad name!", () => {})).rejects.toMatchObject({ name: "RealtimeError", code: "BAD_USER_INPUT" });
    await createTrigger(server.httpUrl, { channel: "closed:door", actions: ["JOIN"], stack: [{ drop: true }] });
    await expect(realtime.join("closed:door", () => {})).rejects.toMatchObject({ code: "JOIN_DROPPED" });
    await expect(realtime.send("kept:x", { text: "x" }, { to: 42 })).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    expect(realtime.status).toBe("connected"); // operation errors do not touch the connection
  });

  it("closes for good when the server refuses the connection (a wrong admin token)", async () => {
    const realtime = client(server.wsUrl, { adminToken: "not-the-admin-token-at-all" });
    const joining = realtime.join("kept:admin", () => {});
    await expect(joining).rejects.toBeInstanceOf(RealtimeError);
    await expect(joining).rejects.toMatchObject({ code: "CONNECTION_REFUSED" });
    expect(realtime.statuses).toEqual(["connecting", "closed"]);
  });

  it("lets the admin listen to a channel closed to anonymous clients", async () => {
    await configure(server, { pattern: "staff:room", anonymousClients: false });
    await expect(client(server.wsUrl).join("staff:room", () => {})).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    const room = recorder();
    await client(server.wsUrl, { adminToken: ADMIN_TOKEN }).join("staff:room", room.handler);
    await admin(server.httpUrl, `mutation { sendMessage(channel: "staff:room", payload: { text: "memo" }) { delivered } }`);
    await eventually("the memo", () => room.messages().length, { ...often, until: (count) => count === 1 });
  });
});

describe("reconnecting and resuming", () => {
  it("misses nothing and repeats nothing when the connection drops and messages are sent meanwhile", async () => {
    const proxy = await startProxy(Number(new URL(server.httpUrl).port));
    const realtime = client(proxy.url);
    const room = recorder();
    const gaps: ChannelGap[] = [];
    const membership = await realtime.join("kept:drop", room.handler, { onGap: (gap) => gaps.push(gap) });
    const firstId = membership.clientId;
    for (const n of range(1, 5)) await sendOverHttp(server, "kept:drop", { n });
    await eventually("messages 1-5", () => room.messages().length, { ...often, until: (count) => count === 5 });

    proxy.cut();
    await eventually("reconnecting", () => realtime.status, { ...often, until: (status) => status === "reconnecting" });
    for (const n of range(6, 8)) await sendOverHttp(server, "kept:drop", { n }); // while disconnected
    proxy.restore();
    await eventually("connected again", () => realtime.status, { ...often, until: (status) => status === "connected" });
    for (const n of range(9, 11)) await sendOverHttp(server, "kept:drop", { n });
    await eventually("messages 1-11", () => room.messages().length, { ...often, until: (count) => count >= 11 });
    // A last message marks the end: a repeat of an earlier one would have come before it.
    await sendOverHttp(server, "kept:drop", { n: 12 });
    await eventually("the last message", () => room.messages().at(-1)?.seq, { ...often, until: (seq) => seq === 12 });

    expect(room.messages().map((event) => (event.payload as { n: number }).n)).toEqual(range(1, 12));
    expect(room.messages().map((event) => event.seq)).toEqual(range(1, 12));
    expect(room.received.filter(({ event }) => event.action === "JOIN")).toHaveLength(1); // the rejoin is not news
    expect(gaps).toEqual([]);
    expect(membership.clientId).not.toBe(firstId); // an anonymous client is a new client on a new connection
    expect(membership.lastSeq).toBe(12);
    expect(realtime.statuses.slice(0, 3)).toEqual(["connecting", "connected", "reconnecting"]);
    expect(realtime.statuses.at(-1)).toBe("connected");
  });

  it("resumes from the kept history after a server restart on the same port and data folder", async () => {
    const restartable = await startServer();
    await configure(restartable, { pattern: "kept:*", history: 100 });
    const port = Number(new URL(restartable.httpUrl).port);
    const realtime = client(restartable.wsUrl);
    const room = recorder();
    await realtime.join("kept:restart", room.handler);
    for (const n of range(1, 3)) await sendOverHttp(restartable, "kept:restart", { n });
    await eventually("messages 1-3", () => room.messages().length, { ...often, until: (count) => count === 3 });

    await restartable.stop(); // closes every socket with 1001 Going Away
    await eventually("reconnecting", () => realtime.status, { ...often, until: (status) => status === "reconnecting" });
    const settings = parseEnv({ DATA_DIR: restartable.dataDir, ADMIN_TOKEN, LOG_LEVEL: "silent" });
    const app: App = await createApp(settings, createLogger(settings.LOG_LEVEL));
    cleanups.push(() => app.stop());
    // Published before the new server accepts connections, so the client can only learn of them from history.
    const sender = { client: { id: "offline-sender", authenticated: false, extras: null }, isAdmin: false, address: "127.0.0.1" };
    for (const n of range(4, 6)) await app.services.channels.sendMessage(sender, "kept:restart", { n }, null);
    await app.start(port, "127.0.0.1");
    await eventually("connected again", () => realtime.status, { ...often, until: (status) => status === "connected", timeoutMs: 10_000 });
    for (const n of range(7, 8)) await sendOverHttp(restartable.httpUrl, "kept:restart", { n });
    await eventually("messages 1-8", () => room.messages().length, { ...often, until: (count) => count >= 8 });
    // A last message marks the end: a repeat of an earlier one would have come before it.
    await sendOverHttp(restartable.httpUrl, "kept:restart", { n: 9 });
    await eventually("the last message", () => room.messages().at(-1)?.seq, { ...often, until: (seq) => seq === 9 });

    expect(room.messages().map((event) => (event.payload as { n: number }).n)).toEqual(range(1, 9));
    expect(room.messages().map((event) => event.seq)).toEqual(range(1, 9));
  });

  it("reports the messages it could not recover where the channel keeps no history", async () => {
    const proxy = await startProxy(Number(new URL(server.httpUrl).port));
    const realtime = client(proxy.url);
    const room = recorder();
    const gaps: ChannelGap[] = [];
    const membership = await realtime.join("fleeting:room", room.handler, { onGap: (gap) => gaps.push(gap) });
    const firstId = membership.clientId;
    for (const n of range(1, 2)) await sendOverHttp(server, "fleeting:room", { n });
    await eventually("messages 1-2", () => room.messages().length, { ...often, until: (count) => count === 2 });

    proxy.cut();
    await eventually("reconnecting", () => realtime.status, { ...often, until: (status) => status === "reconnecting" });
    for (const n of range(3, 4)) await sendOverHttp(server, "fleeting:room", { n });
    proxy.restore();
    await eventually("connected again", () => realtime.status, { ...often, until: (status) => status === "connected" });
    // Connected is not yet re-subscribed: with no history to fill in, a message sent before the new
    // subscription is live is rightly missed. Its own JOIN (a new client id) says it is live.
    await eventually("rejoined", () => membership.clientId !== firstId, often);
    await sendOverHttp(server, "fleeting:room", { n: 5 });
    await eventually("message 5", () => room.messages().length, { ...often, until: (count) => count === 3 });

    expect(room.messages().map((event) => event.seq)).toEqual([1, 2, 5]);
    expect(gaps).toEqual([{ channel: "fleeting:room", afterSeq: 2, nextSeq: 5 }]);
  });

  it("keeps joins made while reconnecting, and sends once connected", async () => {
    const proxy = await startProxy(Number(new URL(server.httpUrl).port));
    const realtime = client(proxy.url);
    await eventually("connected", () => realtime.status, { ...often, until: (status) => status === "connected" });
    proxy.cut();
    await eventually("reconnecting", () => realtime.status, { ...often, until: (status) => status === "reconnecting" });
    const room = recorder();
    const joining = realtime.join("kept:later", room.handler, { history: 10 }); // the send may win the race to the server
    const sending = realtime.send("kept:later", { text: "queued" }).catch((error: unknown) => error);
    proxy.restore();
    await joining;
    const sent = await sending;
    expect(sent).toMatchObject({ delivered: true });
    await eventually("the queued message", () => room.messages().length, { ...often, until: (count) => count === 1 });
  });

  it("follows presence: a sync on joining, each JOIN and LEAVE since, and a fresh sync after a reconnect", async () => {
    const proxy = await startProxy(Number(new URL(server.httpUrl).port));
    const watcher = client(proxy.url);
    const updates: PresenceUpdate[] = [];
    const names = (members: readonly ChannelMember[]) =>
      members.map((member) => (member.joinOptions as { name?: string } | null)?.name).sort();
    const watching = await watcher.join("kept:presence", () => {}, {
      options: { name: "watcher" },
      onPresence: (update) => void updates.push(update),
    });
    await eventually("the first sync", () => updates.find((update) => update.change.kind === "sync"), often);
    expect(names(watching.members)).toEqual(["watcher"]);

    const bob = client(server.wsUrl);
    const bobs = await bob.join("kept:presence", () => {}, { options: { name: "bob" } });
    await eventually("bob in the list", () => names(watching.members), { ...often, until: (list) => list.length === 2 });
    expect(updates.at(-1)?.change).toEqual({
      kind: "join",
      member: { id: bobs.clientId, authenticated: false, extras: null, joinOptions: { name: "bob" } },
    });
    expect(names(watching.members)).toEqual(["bob", "watcher"]);

    // While the watcher is cut off, bob leaves and carol joins: it hears of neither, and the sync after it reconnects has both.
    proxy.cut();
    await eventually("reconnecting", () => watcher.status, { ...often, until: (status) => status === "reconnecting" });
    bobs.leave();
    const carol = client(server.wsUrl);
    await carol.join("kept:presence", () => {}, { options: { name: "carol" } });
    const before = updates.length;
    proxy.restore();
    await eventually("a sync after the reconnect", () => updates.slice(before).find((update) => update.change.kind === "sync"), often);
    await eventually("the members after the outage", () => names(watching.members), {
      ...often,
      until: (list) => list.join() === "carol,watcher",
    });
    expect(watching.members.map((member) => member.id)).toContain(watching.clientId);
  });

  it("says when presence is unavailable, and keeps the membership", async () => {
    const realtime = client(server.wsUrl);
    const updates: PresenceUpdate[] = [];
    const room = recorder();
    const membership = await realtime.join("nopresence:room", room.handler, { onPresence: (update) => void updates.push(update) });
    const unavailable = await eventually("the sync's failure", () => updates.find((update) => update.change.kind === "unavailable"), often);
    expect(unavailable!.change).toMatchObject({ kind: "unavailable", error: { code: "FORBIDDEN" } });
    expect(membership.members).toEqual([]);
    await sendOverHttp(server, "nopresence:room", { still: "here" });
    await eventually("a message after it", () => room.messages().length, { ...often, until: (count) => count === 1 });
  });

  it("runs a typed custom subscription, subscribes again after a reconnect, and reports a refusal", async () => {
    const proxy = await startProxy(Number(new URL(server.httpUrl).port));
    const realtime = client(proxy.url);
    type Watched = { channel: { action: string; payload: { n?: number } | null } };
    const document = new String("subscription Watch($name: String!) { channel(name: $name) { action payload } }") as TypedDocument<
      Watched,
      { name: string }
    >;
    const seen: Watched["channel"][] = [];
    const errors: RealtimeError[] = [];
    const stop = realtime.subscribe(
      document,
      { name: "custom:room" },
      {
        next: (data) => {
          expectTypeOf(data.channel.payload).toEqualTypeOf<{ n?: number } | null>();
          seen.push(data.channel);
        },
        error: (error) => void errors.push(error),
      },
    );
    await eventually("its own JOIN", () => seen.length, { ...often, until: (count) => count === 1 });
    await sendOverHttp(server, "custom:room", { n: 1 });
    await eventually("message 1", () => seen.filter((event) => event.action === "MESSAGE").length, {
      ...often,
      until: (count) => count === 1,
    });

    proxy.cut();
    await eventually("reconnecting", () => realtime.status, { ...often, until: (status) => status === "reconnecting" });
    proxy.restore();
    await eventually("the JOIN of its second subscription", () => seen.filter((event) => event.action === "JOIN").length, {
      ...often,
      until: (count) => count === 2,
    });
    await sendOverHttp(server, "custom:room", { n: 2 });
    await eventually("message 2", () => seen.filter((event) => event.action === "MESSAGE").length, {
      ...often,
      until: (count) => count === 2,
    });
    stop();
    await sendOverHttp(server, "custom:room", { n: 3 });
    // A message to a channel it still watches would come after message 3; one more through another client marks the end.
    const marker = recorder();
    await client(server.wsUrl).join("custom:room", marker.handler);
    await sendOverHttp(server, "custom:room", { n: 4 });
    await eventually("the marker", () => marker.messages().length, { ...often, until: (count) => count === 1 });
    expect(seen.filter((event) => event.action === "MESSAGE").map((event) => event.payload?.n)).toEqual([1, 2]);
    expect(errors).toEqual([]);

    await configure(server, { pattern: "closed:*", anonymousClients: false });
    const refused = await new Promise<RealtimeError>((resolve) => {
      realtime.subscribe(document, { name: "closed:room" }, { next: () => {}, error: resolve });
    });
    expect(refused).toBeInstanceOf(RealtimeError);
    expect(refused.code).toBe("UNAUTHENTICATED");
  });

  it("types payloads as the app declares them", async () => {
    const realtime = client(server.wsUrl);
    type Chat = { text: string };
    const room = recorder();
    await realtime.join<Chat>("kept:typed", (event) => {
      expectTypeOf(event.payload).toEqualTypeOf<Chat>();
      room.handler(event, { self: false });
    });
    const sent = await realtime.send<Chat>("kept:typed", { text: "typed" });
    expectTypeOf(sent.event).toEqualTypeOf<ChannelEvent<Chat> | null>();
    const history = await realtime.history<Chat>("kept:typed");
    expectTypeOf(history).toEqualTypeOf<ChannelEvent<Chat>[]>();
    expect(history.map((event) => event.payload.text)).toEqual(["typed"]);
    // @ts-expect-error: a payload of another shape does not type-check
    void realtime.send<Chat>("kept:typed", { txt: "typo" }).catch(() => {});
  });
});
