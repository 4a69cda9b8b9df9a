/**
 * graphql-transport-ws protocol abuses, over raw `ws` sockets against a real server: each abuse
 * gets the close code the protocol (and graphql-ws) promise, and the server keeps serving others.
 * Close codes: 4400 bad message, 4401 not acknowledged, 4406 subprotocol not acceptable, 4408 init
 * timeout, 4409 duplicate subscription id, 4429 too many init requests.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CHANNEL_SUBSCRIPTION, joinBySubscription, SEND_MESSAGE, type TestEvent } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL } from "../helpers/graphql.js";
import { spawnServer } from "../helpers/process.js";
import { rawSocket as openRawSocket, PROTOCOL, type RawSocket } from "../helpers/raw-ws.js";
import { startServer, type TestServer } from "../helpers/server.js";

const INIT = JSON.stringify({ type: "connection_init" });

/** How long a silent socket may stay open: graphql-ws's default (3 s) plus slack, whether or not WS_INIT_TIMEOUT_MS is honoured. */
const INIT_TIMEOUT_BOUND_MS = 3500;

let server: TestServer;
let healthUrl: string;
beforeAll(async () => {
  // WS_INIT_TIMEOUT_MS: 500 where the server knows the setting; graphql-ws's default 3 s otherwise.
  server = await startServer({ WS_INIT_TIMEOUT_MS: "500", CHANNEL_PRESENCE: "true" });
  healthUrl = server.httpUrl.replace("/graphql", "/health");
});

/** `protocols: null` offers no subprotocol at all. */
function rawSocket(protocols: string | string[] | null = PROTOCOL): RawSocket {
  return openRawSocket(server.wsUrl, protocols);
}

/** Opens a raw socket, sends connection_init and waits for connection_ack. */
async function acknowledged(): Promise<RawSocket> {
  const socket = rawSocket();
  await socket.opened;
  socket.send(INIT);
  expect(await socket.next()).toEqual({ type: "connection_ack" });
  return socket;
}

/** Waits for the close, bounded in time, and returns its code and reason. */
async function closeOf(socket: RawSocket, withinMs = 5000): Promise<{ code: number; reason: string; afterMs: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket still open after ${withinMs} ms`)), withinMs);
  });
  try {
    return await Promise.race([socket.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const subscribeFrame = (id: string, channel: string) =>
  JSON.stringify({ id, type: "subscribe", payload: { query: CHANNEL_SUBSCRIPTION, variables: { name: channel } } });

/** The server still serves: /health is 200, and a fresh client subscribes and receives a message sent over HTTP. */
async function expectServerServes(): Promise<void> {
  expect((await fetch(healthUrl)).status).toBe(200);
  const channel = `check:${randomUUID()}`;
  const client = await connectWs(server.wsUrl);
  const { subscription } = await joinBySubscription(client, channel);
  const { status, body } = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { check: true } });
  expect(status).toBe(200);
  expect(body.data?.sendMessage.delivered).toBe(true);
  const received = await subscription.next();
  expect(received.data?.channel).toMatchObject({ action: "MESSAGE", channel, payload: { check: true } });
  subscription.unsubscribe();
  await client.dispose();
}

describe("graphql-transport-ws abuses close the socket with the protocol's code", () => {
  it("no connection_init within the init timeout: 4408", async () => {
    const socket = rawSocket();
    await socket.opened;
    const { code, afterMs } = await closeOf(socket, INIT_TIMEOUT_BOUND_MS + 1500);
    expect(code).toBe(4408);
    expect(afterMs).toBeLessThanOrEqual(INIT_TIMEOUT_BOUND_MS);
    await expectServerServes();
  });

  it("a second connection_init: 4429", async () => {
    const socket = await acknowledged();
    socket.send(INIT);
    expect((await closeOf(socket)).code).toBe(4429);
    await expectServerServes();
  });

  it("subscribe before connection_ack: 4401", async () => {
    const socket = rawSocket();
    await socket.opened;
    socket.send(subscribeFrame("early", "proto:early"));
    expect((await closeOf(socket)).code).toBe(4401);
    await expectServerServes();
  });

  it("a subscription id reused while the first is active: 4409, and the first one's membership is undone", async () => {
    const channel = `proto:dup:${randomUUID()}`;
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), channel);
    const socket = await acknowledged();
    socket.send(subscribeFrame("same", channel));
    const join = await socket.next();
    expect(join).toMatchObject({ id: "same", type: "next", payload: { data: { channel: { action: "JOIN" } } } });
    const abuserId = join.payload.data.channel.client.id as string;
    expect((await watcher.subscription.next()).data?.channel).toMatchObject({ action: "JOIN", client: { id: abuserId } });

    socket.send(subscribeFrame("same", channel));
    expect((await closeOf(socket)).code).toBe(4409);
    // Closing the socket ended the first subscription: its client left.
    expect((await watcher.subscription.next()).data?.channel).toMatchObject({ action: "LEAVE", client: { id: abuserId } });
    await expectServerServes();
  });

  describe("malformed frames: 4400", () => {
    const malformed: [string, string | Buffer][] = [
      ["not JSON", "{nope"],
      ["empty text", ""],
      ["JSON that is not an object (array)", "[]"],
      ["JSON that is not an object (null)", "null"],
      ["JSON that is not an object (string)", '"connection_init"'],
      ["JSON without type", "{}"],
      ["a type that is not a string", '{"type":1}'],
      ["an unknown type", '{"type":"foo"}'],
      ["subscribe without id", JSON.stringify({ type: "subscribe", payload: { query: "{ __typename }" } })],
      ["subscribe with an empty id", JSON.stringify({ type: "subscribe", id: "", payload: { query: "{ __typename }" } })],
      ["subscribe with a numeric id", JSON.stringify({ type: "subscribe", id: 1, payload: { query: "{ __typename }" } })],
      ["subscribe without payload", JSON.stringify({ type: "subscribe", id: "1" })],
      ["subscribe whose payload has no query", JSON.stringify({ type: "subscribe", id: "1", payload: {} })],
      [
        "subscribe whose variables are not an object",
        JSON.stringify({ type: "subscribe", id: "1", payload: { query: "{ __typename }", variables: [1] } }),
      ],
      ["ping whose payload is not an object", JSON.stringify({ type: "ping", payload: "x" })],
      ["a binary frame of garbage", Buffer.from([0xff, 0x00, 0xfe, 0x7b])],
    ];

    it.each(malformed)("after the ack, %s", async (_name, frame) => {
      const socket = await acknowledged();
      socket.send(frame);
      expect((await closeOf(socket)).code).toBe(4400);
    });

    it("before connection_init, a frame that is not JSON", async () => {
      const socket = rawSocket();
      await socket.opened;
      socket.send("not json at all");
      expect((await closeOf(socket)).code).toBe(4400);
    });

    it("the server still serves after all of them", async () => {
      await expectServerServes();
    });
  });

  // A client sending a message only the server may send is a protocol error too (the protocol:
  // "receiving a message of a type or format which is not specified ... 4400"). graphql-ws's own
  // message handling throws on these, which would close the socket with 4500 "Internal server error".
  describe("server-to-client message types sent by a client", () => {
    const serverOnly: [string, string][] = [
      ["connection_ack", JSON.stringify({ type: "connection_ack" })],
      ["next", JSON.stringify({ type: "next", id: "1", payload: { data: null } })],
      ["error", JSON.stringify({ type: "error", id: "1", payload: [{ message: "x" }] })],
    ];

    it.each(serverOnly)("%s: closed as a bad message (4400), not as an internal server error", async (_type, frame) => {
      const socket = await acknowledged();
      socket.send(frame);
      const { code, reason } = await closeOf(socket);
      // Shows the reason too when it fails: today { code: 4500, reason: "Unexpected message of type … received" }.
      expect({ code, reason }).toMatchObject({ code: 4400 });
    });

    it("the server still serves after them", async () => {
      await expectServerServes();
    });
  });

  it("complete for an unknown id is ignored: the socket stays usable", async () => {
    const socket = await acknowledged();
    socket.send(JSON.stringify({ type: "complete", id: "never-subscribed" }));
    socket.send(JSON.stringify({ type: "ping" }));
    expect(await socket.next()).toEqual({ type: "pong" });
    socket.ws.close(1000);
    expect((await closeOf(socket)).code).toBe(1000);
  });
});

describe("subprotocol negotiation", () => {
  // graphql-ws completes the upgrade without a subprotocol when none it knows is offered, then
  // closes the socket with 4406. A `ws` client that asked for a subprotocol refuses such a
  // handshake itself ("Server sent no subprotocol", close 1006); one that asked for none sees 4406.
  it("a wrong subprotocol is refused: the socket never opens", async () => {
    const socket = rawSocket("graphql-ws");
    await expect(socket.opened).rejects.toThrow();
    const { code } = await closeOf(socket);
    expect([1002, 1006, 4406]).toContain(code);
    expect(socket.errors.join(" ")).toMatch(/subprotocol/i);
    await expectServerServes();
  });

  it("no subprotocol at all: closed with 4406", async () => {
    const socket = rawSocket(null);
    await socket.opened;
    const { code, reason } = await closeOf(socket);
    expect(code).toBe(4406);
    expect(reason).toMatch(/subprotocol/i);
    await expectServerServes();
  });

  it("graphql-transport-ws among others is chosen", async () => {
    const socket = rawSocket(["graphql-ws", PROTOCOL]);
    await socket.opened;
    expect(socket.ws.protocol).toBe(PROTOCOL);
    socket.send(INIT);
    expect(await socket.next()).toEqual({ type: "connection_ack" });
    socket.ws.close(1000);
    await closeOf(socket);
  });
});

describe("clients that go away mid-subscription", () => {
  const PRESENCE = `query ($channel: String!) { presence(channel: $channel) { id } }`;

  async function presentIds(channel: string): Promise<string[]> {
    const { body } = await httpGraphQL<{ presence: { id: string }[] }>(server.httpUrl, PRESENCE, { channel });
    expect(body.errors).toBeUndefined();
    return body.data!.presence.map((client) => client.id).sort();
  }

  /** Waits until the presence of `channel` is exactly `expected` (in any order). */
  async function expectPresence(channel: string, expected: string[]): Promise<void> {
    const wanted = JSON.stringify([...expected].sort());
    await eventually(`presence of ${channel} to be ${wanted}`, () => presentIds(channel), {
      until: (ids) => JSON.stringify(ids) === wanted,
      timeoutMs: 3000,
    });
  }

  it.each([
    ["terminates the TCP connection (no close frame)", (socket: RawSocket) => socket.ws.terminate()],
    ["closes the WebSocket cleanly", (socket: RawSocket) => socket.ws.close(1000, "bye")],
    ["closes with an application code", (socket: RawSocket) => socket.ws.close(4000, "gone")],
  ])("a client that %s leaves: LEAVE is published, presence forgets it, the server stays healthy", async (_how, goAway) => {
    const channel = `proto:gone:${randomUUID()}`;
    const watcherClient = await connectWs(server.wsUrl);
    const watcher = await joinBySubscription(watcherClient, channel);
    const socket = await acknowledged();
    socket.send(subscribeFrame("s1", channel));
    const join = await socket.next();
    const goneId = join.payload.data.channel.client.id as string;
    expect((await watcher.subscription.next()).data?.channel).toMatchObject({ action: "JOIN", client: { id: goneId } });
    await expectPresence(channel, [watcher.join.client.id, goneId]);

    goAway(socket);
    const leave = (await watcher.subscription.next()).data?.channel as TestEvent;
    expect(leave).toMatchObject({ action: "LEAVE", channel, client: { id: goneId } });
    await expectPresence(channel, [watcher.join.client.id]);
    expect((await fetch(healthUrl)).status).toBe(200);

    // leaveChannel still works for the remaining member, over its own socket.
    const leaveResult = await new Promise<unknown>((resolve, reject) => {
      let value: unknown;
      watcherClient.subscribe(
        { query: `mutation ($channel: String!) { leaveChannel(channel: $channel) }`, variables: { channel } },
        { next: (result) => void (value = result), error: reject, complete: () => resolve(value) },
      );
    });
    expect(leaveResult).toEqual({ data: { leaveChannel: true } });
    await expectPresence(channel, []);
    await expectServerServes();
  });

  it("clients that close while their subscription is still being set up leave nothing behind", async () => {
    const channel = `proto:race:${randomUUID()}`;
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), channel);
    // Close at a spread of moments right after subscribing, to land inside the join.
    for (let attempt = 0; attempt < 20; attempt++) {
      const socket = await acknowledged();
      socket.send(subscribeFrame("r", channel));
      if (attempt % 4 !== 0) await new Promise((resolve) => setTimeout(resolve, attempt % 5));
      if (attempt % 2 === 0) socket.ws.terminate();
      else socket.ws.close(1000);
      await closeOf(socket);
    }
    await expectPresence(channel, [watcher.join.client.id]);
    // Every JOIN the watcher saw is matched by a LEAVE of the same client.
    const events = (await watcher.subscription.collectFor(500)).map((result) => result.data!.channel as TestEvent);
    const joined = events
      .filter((event) => event.action === "JOIN")
      .map((event) => event.client.id)
      .sort();
    const left = events
      .filter((event) => event.action === "LEAVE")
      .map((event) => event.client.id)
      .sort();
    expect(left).toEqual(joined);
    await expectServerServes();
  });
});

describe("the server's log", () => {
  it("records a client's protocol mistakes as no error of the server's, and prints nothing outside its JSON log", {
    timeout: 30_000,
  }, async () => {
    const child = await spawnServer({ MAX_WS_MESSAGE_BYTES: "2048" });
    const open = async () => {
      const socket = new WebSocket(child.wsUrl, PROTOCOL);
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(INIT);
      await new Promise((resolve) => socket.once("message", resolve)); // connection_ack
      return socket;
    };
    const closeCode = (socket: WebSocket) => new Promise<number>((resolve) => socket.once("close", resolve));
    const mistakes: [string | Buffer, number][] = [
      ["z".repeat(4096), 1009],
      [JSON.stringify({ type: "next", id: "1", payload: { data: null } }), 4400],
      [JSON.stringify({ type: "connection_ack" }), 4400],
      ["{nope", 4400],
      [Buffer.from([0xff, 0x00]), 4400],
    ];
    for (const [frame, code] of mistakes) {
      const socket = await open();
      const closed = closeCode(socket);
      socket.send(frame);
      expect(await closed).toBe(code);
    }
    expect((await httpGraphQL(child.httpUrl, "{ __typename }")).status).toBe(200);
    const lines = child.output().trim().split("\n");
    expect(lines.some((line) => line.includes('"msg":"listening on'))).toBe(true);
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: number; msg: string }; // every line is pino JSON
      expect(entry.level, entry.msg).toBeLessThan(40); // nothing at warn or above
    }
  });
});
