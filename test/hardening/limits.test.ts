import { type IncomingMessage, request } from "node:http";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CHANNEL_SUBSCRIPTION, GENERIC_CHANNEL_SUBSCRIPTION, JOIN_CHANNEL, joinBySubscription, SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL, wsGraphQL, wsSubscribe } from "../helpers/graphql.js";
import { scrape } from "../helpers/metrics.js";
import { startReceiver } from "../helpers/receiver.js";
import { ADMIN_TOKEN, startServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const sendOver = (url: string, payload: unknown, options?: unknown, token?: string) =>
  httpGraphQL(url, SEND_MESSAGE, { channel: "limits", payload, options }, { token }).then((r) => r.body);

/** A string payload whose JSON encoding is exactly `bytes` long. */
const payloadOf = (bytes: number) => "x".repeat(bytes - 2);

describe("limits, each at n and n+1", () => {
  it("payload size: checked before any trigger runs", async () => {
    const server = await startServer({ MAX_PAYLOAD_BYTES: "1000" });
    const trigger = await createTrigger(server.httpUrl, { channel: "limits", stack: [{ log: "'ran'" }] });
    expect((await sendOver(server.httpUrl, payloadOf(1000))).data?.sendMessage.delivered).toBe(true);
    const tooBig = await sendOver(server.httpUrl, payloadOf(1001));
    expect(tooBig.errors?.[0]).toMatchObject({ extensions: { code: "PAYLOAD_TOO_LARGE", field: "payload", limit: 1000 } });
    const bigOptions = await sendOver(server.httpUrl, 1, { note: "x".repeat(1000) });
    expect(bigOptions.errors?.[0]?.extensions?.code).toBe("PAYLOAD_TOO_LARGE");
    const runs = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { runs { id } } }`, { id: trigger.id });
    expect(runs.data!.trigger.runs).toHaveLength(1); // only the message that fit
  });

  it("HTTP body size: 413 past the limit", async () => {
    const server = await startServer({ MAX_HTTP_BODY_BYTES: "2048" });
    const body = (size: number) => {
      const base = JSON.stringify({ query: "{ __typename }", variables: { pad: "" } });
      return JSON.stringify({ query: "{ __typename }", variables: { pad: "y".repeat(size - base.length) } });
    };
    const post = (text: string) => fetch(server.httpUrl, { method: "POST", headers: { "content-type": "application/json" }, body: text });
    expect(body(2048)).toHaveLength(2048);
    expect((await post(body(2048))).status).toBe(200);
    const refused = await post(body(2049));
    expect(refused.status).toBe(413);
    expect((await refused.json()).errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await fetch(server.httpUrl.replace("/graphql", "/health"))).status).toBe(200);
  });

  it("WebSocket message size: a larger frame closes the socket with 1009", async () => {
    const server = await startServer({ MAX_WS_MESSAGE_BYTES: "2048" });
    const frame = (size: number) => {
      const base = JSON.stringify({ type: "ping", payload: { pad: "" } });
      return JSON.stringify({ type: "ping", payload: { pad: "z".repeat(size - base.length) } });
    };
    const open = async () => {
      const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ type: "connection_init" }));
      await new Promise((resolve) => socket.once("message", resolve)); // connection_ack
      return socket;
    };
    const fits = await open();
    fits.send(frame(2048));
    expect(JSON.parse(String(await new Promise((resolve) => fits.once("message", resolve))))).toMatchObject({ type: "pong" });
    const tooBig = await open();
    const closed = new Promise<number>((resolve) => tooBig.once("close", resolve));
    tooBig.send(frame(2049));
    expect(await closed).toBe(1009);
    fits.close();
  });

  it("subscriptions per socket: the extra one gets an error and the socket stays open", async () => {
    const server = await startServer({ MAX_SUBSCRIPTIONS_PER_SOCKET: "3" });
    const client = await connectWs(server.wsUrl);
    for (const name of ["s1", "s2", "s3"]) await joinBySubscription(client, name);
    const extra = wsSubscribe(client, CHANNEL_SUBSCRIPTION, { name: "s4" });
    expect((await extra.next()).errors?.[0]).toMatchObject({ extensions: { code: "LIMIT_EXCEEDED" } });
    const stillOpen = await wsGraphQL(client, SEND_MESSAGE, { channel: "s1", payload: 1 });
    expect(stillOpen.data).toMatchObject({ sendMessage: { delivered: true } });
  });

  it("channels per client: refused past the limit, allowed again after leaving", async () => {
    const server = await startServer({ MAX_CHANNELS_PER_CLIENT: "2" });
    const client = await connectWs(server.wsUrl);
    for (const channel of ["c1", "c2"])
      expect((await wsGraphQL(client, JOIN_CHANNEL, { channel })).data).toMatchObject({ joinChannel: { joined: true } });
    expect((await wsGraphQL(client, JOIN_CHANNEL, { channel: "c1" })).data).toMatchObject({ joinChannel: { joined: true } }); // already a member
    expect((await wsGraphQL(client, JOIN_CHANNEL, { channel: "c3" })).errors?.[0]?.extensions?.code).toBe("LIMIT_EXCEEDED");
    expect((await wsSubscribe(client, CHANNEL_SUBSCRIPTION, { name: "c3" }).next()).errors?.[0]?.extensions?.code).toBe("LIMIT_EXCEEDED");
    await wsGraphQL(client, `mutation { leaveChannel(channel: "c2") }`);
    expect((await wsGraphQL(client, JOIN_CHANNEL, { channel: "c3" })).data).toMatchObject({ joinChannel: { joined: true } });
  });

  it("messages per second per client: the extra one is refused with RATE_LIMITED; the admin is exempt", async () => {
    const server = await startServer({ MAX_MESSAGES_PER_SECOND: "5" });
    const client = await connectWs(server.wsUrl);
    const results = [];
    for (let n = 0; n < 6; n++) results.push(await wsGraphQL(client, SEND_MESSAGE, { channel: "rate", payload: n }));
    expect(results.slice(0, 5).every((result) => result.data?.sendMessage)).toBe(true);
    expect(results[5]!.errors?.[0]).toMatchObject({ extensions: { code: "RATE_LIMITED" } });
    for (let n = 0; n < 10; n++) {
      const byAdmin = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "rate", payload: n }, { token: ADMIN_TOKEN });
      expect(byAdmin.body.data).toMatchObject({ sendMessage: { delivered: true } });
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await wsGraphQL(client, SEND_MESSAGE, { channel: "rate", payload: "later" })).data).toMatchObject({
      sendMessage: { delivered: true },
    });
  });
});

describe("slow consumers", () => {
  // Plain channel subscriptions are written straight to the socket, so their backlog is the socket's
  // unread output; the generic path waits for each write, so its backlog is the subscription's queue.
  it("drops a WebSocket that stops reading once its unread output passes MAX_WS_BUFFERED_BYTES, or a subscription's queue MAX_QUEUED_EVENTS; readers get everything", {
    timeout: 60_000,
  }, async () => {
    const server = await startServer({ MAX_WS_BUFFERED_BYTES: String(256 * 1024), MAX_QUEUED_EVENTS: "50" });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "limits");
    let sent = 0;
    for (const query of [CHANNEL_SUBSCRIPTION, GENERIC_CHANNEL_SUBSCRIPTION]) {
      const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
      const frames: { type: string; payload?: any }[] = [];
      socket.on("message", (data) => frames.push(JSON.parse(String(data))));
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ type: "connection_init" }));
      await expect.poll(() => frames.some((frame) => frame.type === "connection_ack")).toBe(true);
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables: { name: "limits" } } }));
      await expect.poll(() => frames.some((frame) => frame.type === "next")).toBe(true);
      const slowId = frames.find((frame) => frame.type === "next")!.payload.data.channel.client.id;
      expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "JOIN", client: { id: slowId } });

      socket.pause(); // stops reading: the kernel's buffers fill, then the server's
      let left = false;
      for (let round = 0; !left; round++) {
        expect(round, "the slow socket was never dropped").toBeLessThan(400);
        const body = await sendOver(server.httpUrl, { n: ++sent, pad: "p".repeat(60_000) }, undefined, ADMIN_TOKEN);
        expect(body.data?.sendMessage.delivered).toBe(true);
        for (;;) {
          const event = (await watcher.subscription.next()).data!.channel;
          if (event.action === "LEAVE") {
            expect(event.client.id).toBe(slowId);
            left = true;
            continue;
          }
          expect(event.payload.n).toBe(sent); // the reader misses nothing, in order
          break;
        }
      }
      await httpGraphQL(server.httpUrl, "{ __typename }").then(({ status }) => expect(status).toBe(200));
    }
  });

  it("ends an SSE subscription whose reader falls MAX_QUEUED_EVENTS behind with SLOW_CONSUMER", { timeout: 60_000 }, async () => {
    const server = await startServer({ MAX_QUEUED_EVENTS: "50" });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "limits");
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const body = JSON.stringify({ query: CHANNEL_SUBSCRIPTION, variables: { name: "limits" } });
      const req = request(
        server.httpUrl,
        { method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" } },
        resolve,
      );
      req.on("error", reject);
      req.end(body);
    });
    const joined = (await watcher.subscription.next()).data!.channel;
    expect(joined.action).toBe("JOIN");
    response.pause(); // reads nothing more until the end
    let text = "";
    let left = false;
    for (let sent = 1; !left; sent++) {
      expect(sent, "the slow stream was never ended").toBeLessThan(400);
      expect(
        (await sendOver(server.httpUrl, { n: sent, pad: "p".repeat(60_000) }, undefined, ADMIN_TOKEN)).data?.sendMessage.delivered,
      ).toBe(true);
      for (let event = (await watcher.subscription.next()).data!.channel; ; event = (await watcher.subscription.next()).data!.channel) {
        if (event.action === "LEAVE" && event.client.id === joined.client.id) left = true;
        else if (event.payload?.n === sent) break;
      }
    }
    response
      .setEncoding("utf8")
      .on("data", (chunk: string) => (text += chunk))
      .resume();
    await new Promise((resolve) => response.once("end", resolve));
    expect(text).toContain('"SLOW_CONSUMER"');
  });
});

describe("dead peers", () => {
  it("cuts off a WebSocket that stops answering pings (checked every WS_KEEPALIVE_MS), and its client leaves; a live one stays", async () => {
    const server = await startServer({ WS_KEEPALIVE_MS: "200" });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "limits");
    const open = async (autoPong: boolean) => {
      const socket = new WebSocket(server.wsUrl, "graphql-transport-ws", { autoPong });
      const frames: { type: string; payload?: any }[] = [];
      socket.on("message", (data) => frames.push(JSON.parse(String(data))));
      let pings = 0;
      socket.on("ping", () => pings++);
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ type: "connection_init" }));
      await expect.poll(() => frames.some((frame) => frame.type === "connection_ack")).toBe(true);
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: CHANNEL_SUBSCRIPTION, variables: { name: "limits" } } }));
      await expect.poll(() => frames.some((frame) => frame.type === "next")).toBe(true);
      await watcher.subscription.next(); // its JOIN
      return {
        socket,
        pings: () => pings,
        clientId: frames.find((frame) => frame.type === "next")!.payload.data.channel.client.id as string,
      };
    };
    const silent = await open(false);
    const alive = await open(true);
    const closed = new Promise((resolve) => silent.socket.once("close", resolve));
    expect((await watcher.subscription.next()).data!.channel).toMatchObject({ action: "LEAVE", client: { id: silent.clientId } });
    await closed;
    const pinged = alive.pings();
    await eventually("three more pings to the live socket", alive.pings, { until: (count) => count >= pinged + 3 });
    expect(alive.socket.readyState).toBe(WebSocket.OPEN);
  });
});

describe("GraphQL hardening", () => {
  it("limits aliases and tokens at n and n+1, over HTTP and the WebSocket", async () => {
    const server = await startServer({ GRAPHQL_MAX_ALIASES: "2", GRAPHQL_MAX_TOKENS: "120" });
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: history(channel: "x") { id }`).join(" ")} }`;
    expect((await httpGraphQL(server.httpUrl, aliases(2))).body.errors).toBeUndefined();
    const threeAliases = await httpGraphQL(server.httpUrl, aliases(3));
    expect(threeAliases.body.errors?.[0]?.message).toMatch(/aliases/i);

    const tokens = (n: number) => `{ ${"__typename ".repeat(n - 2)}}`;
    expect((await httpGraphQL(server.httpUrl, tokens(120))).body.errors).toBeUndefined();
    expect((await httpGraphQL(server.httpUrl, tokens(121))).body.errors?.[0]?.message).toMatch(/token/i);

    const client = await connectWs(server.wsUrl);
    const overSocket = await wsGraphQL(client, aliases(3)).catch((errors: unknown) => ({ errors }));
    expect(JSON.stringify(overSocket)).toMatch(/aliases/i);
  });

  it("limits depth at n and n+1", async () => {
    const server = await startServer({ GRAPHQL_MAX_DEPTH: "3" });
    const depth3 = `mutation { sendMessage(channel: "d", payload: 1) { event { id } } }`;
    const depth4 = `mutation { sendMessage(channel: "d", payload: 1) { event { client { id } } } }`;
    expect((await httpGraphQL(server.httpUrl, depth3)).body.errors).toBeUndefined();
    expect((await httpGraphQL(server.httpUrl, depth4)).body.errors?.[0]?.message).toMatch(/depth limit of 3 exceeded, found 4/);
  });

  it("limits directives and query cost at n and n+1", async () => {
    const directives = (n: number) => `{ ${Array.from({ length: n }, () => "__typename @include(if: true)").join(" ")} }`;
    const strict = await startServer({ GRAPHQL_MAX_DIRECTIVES: "2", GRAPHQL_MAX_COST: "100" });
    expect((await httpGraphQL(strict.httpUrl, directives(2))).body.errors).toBeUndefined();
    expect((await httpGraphQL(strict.httpUrl, directives(3))).body.errors?.[0]?.message).toMatch(/Directives limit of 2 exceeded, found 3/);

    // Learn the cost of a query from a refusal, then allow exactly that cost and one less.
    const query = `{ ${Array.from({ length: 15 }, (_, i) => `h${i}: history(channel: "x") { id seq payload client { id extras } }`).join(" ")} }`;
    const refusal = (await httpGraphQL(strict.httpUrl, query)).body.errors?.[0]?.message ?? "";
    const cost = Number(/Query Cost limit of 100 exceeded, found (\d+)/.exec(refusal)?.[1]);
    expect(cost).toBeGreaterThan(100);
    const exact = await startServer({ GRAPHQL_MAX_COST: String(cost) });
    expect((await httpGraphQL(exact.httpUrl, query)).body.errors).toBeUndefined();
    const oneLess = await startServer({ GRAPHQL_MAX_COST: String(cost - 1) });
    expect((await httpGraphQL(oneLess.httpUrl, query)).body.errors?.[0]?.message).toMatch(/Query Cost limit/);
  });

  it("refuses cross-site simple POSTs (CSRF) and accepts JSON", async () => {
    const server = await startServer();
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const response = await fetch(server.httpUrl, {
        method: "POST",
        headers: { "content-type": type },
        body: '{"query":"mutation { sendMessage(channel: \\"c\\", payload: 1) { delivered } }"}',
      });
      expect(response.status).toBe(415);
      expect((await response.json()).errors[0].extensions.code).toBe("CSRF_PREVENTED");
    }
    const json = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "c", payload: 1 });
    expect(json.body.data).toMatchObject({ sendMessage: { delivered: true } });
  });

  it("masks unexpected errors: no stack traces or internals outside development", async () => {
    const server = await startServer();
    const result = await httpGraphQL(server.httpUrl, `{ trigger(id: "x") { id } }`, {}, { token: ADMIN_TOKEN });
    expect(JSON.stringify(result.body)).not.toMatch(/\bat \w|\.ts:\d|node_modules/);
  });
});

describe("graceful shutdown", () => {
  it("stops accepting, lets in-flight sends finish, then closes sockets with 1001", async () => {
    // The trigger's first step calls a receiver that holds the request until released: while it is
    // held, the send is in flight for certain.
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const receiver = await startReceiver(() => ({ status: 200, until: released }));
    const server = await startServer({
      TRIGGER_TIMEOUT_MS: "20000",
      WEBHOOK_SECRET: `whsec_${Buffer.from("a-shutdown-webhook-secret-0123456").toString("base64")}`,
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
    });
    await createTrigger(server.httpUrl, {
      channel: "slow",
      stack: [
        { http: { url: `'${receiver.origin}/hold'`, body: "payload" }, as: "held" },
        { set: "payload.sum", value: "$sum($map([1..20000], function($x) { $x * 2 }))" },
      ],
    });
    const client = await connectWs(server.wsUrl);
    const closed = new Promise<{ code: number }>((resolve) => client.on("closed", (event) => resolve(event as { code: number })));
    await joinBySubscription(client, "slow");
    let sendAnswered = false;
    const inFlight = httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "slow", payload: {} }).finally(() => void (sendAnswered = true));
    await eventually("the trigger's request at the receiver", () => receiver.requests.length, { until: (count) => count === 1 });
    const stopping = server.stop();
    await expect(fetch(server.httpUrl.replace("/graphql", "/health"))).rejects.toThrow(); // no longer accepting
    expect(sendAnswered).toBe(false); // the send was in flight when the server stopped accepting
    release();
    const answered = await inFlight;
    expect(answered.body.data).toMatchObject({ sendMessage: { delivered: true, event: { payload: { sum: 400020000 } } } });
    await stopping;
    expect((await closed).code).toBe(1001);
  });
});

describe("trigger safety", () => {
  it("keeps serving other requests while a runaway trigger runs", async () => {
    const server = await startServer({ TRIGGER_TIMEOUT_MS: "3000" });
    await createTrigger(server.httpUrl, { channel: "hostile", stack: [{ log: "( $f := function($x) { $f($x) }; $f(0) )" }] });
    const received = async () => (await scrape(server.httpUrl)).value("realtime_messages_received_total", { action: "MESSAGE" });
    const before = await received();
    let sendDone = false;
    const hostile = httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "hostile", payload: 1 }).then((result) => {
      sendDone = true;
      return result;
    });
    // Once the message is in the publish path, where its trigger runs:
    await eventually("the runaway's message received", received, { until: (count) => count > before, intervalMs: 5 });
    const health = await fetch(server.httpUrl.replace("/graphql", "/health"));
    const other = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "calm", payload: 1 });
    expect(health.status).toBe(200);
    expect(other.body.data).toMatchObject({ sendMessage: { delivered: true } });
    expect(sendDone).toBe(false); // answered while the runaway was still running
    expect((await hostile).body.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
  });
});
