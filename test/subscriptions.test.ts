import { beforeAll, describe, expect, it } from "vitest";
import {
  CHANNEL_SUBSCRIPTION,
  GENERIC_CHANNEL_SUBSCRIPTION,
  joinBySubscription,
  SEND_MESSAGE,
  type TestEvent,
} from "./helpers/channels.js";
import { connectWs, type ExecutionResult, httpGraphQL, type Subscription, sseSubscribe, wsSubscribe } from "./helpers/graphql.js";
import { startServer, type TestServer } from "./helpers/server.js";

// Plain `channel` subscriptions over WebSocket are executed once per event for every subscriber
// sharing a document and variables; anything else (a directive at the root, SSE) runs GraphQL per
// subscriber. These tests hold both paths to the same behaviour.

type ChannelData = { channel: TestEvent };

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});

const send = (channel: string, payload: unknown, options?: unknown) =>
  httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload, options });

/** Waits for a subscription's first result: the subscriber's own JOIN. */
async function joined(subscription: Subscription<ChannelData>): Promise<TestEvent> {
  const first = await subscription.next();
  if (!first.data) throw new Error(`subscription failed: ${JSON.stringify(first.errors)}`);
  expect(first.data.channel.action).toBe("JOIN");
  return first.data.channel;
}

/**
 * An error as a client compares it: what it says, its code and where; not where in the document,
 * nor the HTTP status Yoga notes on some errors for its HTTP responses.
 */
function refusal(result: ExecutionResult<unknown>) {
  return result.errors?.map(({ message, path, extensions: { http: _http, ...extensions } = {} }) => ({ message, path, extensions }));
}

describe("every subscription path delivers the same events", () => {
  it("plain WebSocket, generic WebSocket and SSE subscriptions see the same events in the same order, private ones only for their recipient", async () => {
    const channel = "paths:same";
    const fast = wsSubscribe<ChannelData>(await connectWs(server.wsUrl), CHANNEL_SUBSCRIPTION, { name: channel });
    const fastClient = (await joined(fast)).client;
    const generic = wsSubscribe<ChannelData>(await connectWs(server.wsUrl), GENERIC_CHANNEL_SUBSCRIPTION, { name: channel });
    const genericJoin = await joined(generic);
    expect((await fast.next()).data!.channel).toEqual(genericJoin);
    const sse = sseSubscribe<ChannelData>(server.httpUrl, CHANNEL_SUBSCRIPTION, { name: channel });
    const sseJoin = await joined(sse);
    expect((await fast.next()).data!.channel).toEqual(sseJoin);
    expect((await generic.next()).data!.channel).toEqual(sseJoin);

    const sent: TestEvent[] = [];
    for (let n = 1; n <= 5; n++) {
      const options = n === 3 ? { to: fastClient.id } : n === 4 ? { to: genericJoin.client.id } : undefined;
      const { body } = await send(channel, { n }, options);
      sent.push(body.data!.sendMessage.event);
    }
    const publicOnes = sent.filter((_, i) => i !== 2 && i !== 3);
    const received = async (subscription: Subscription<ChannelData>, count: number) => {
      const events: TestEvent[] = [];
      for (let i = 0; i < count; i++) events.push((await subscription.next()).data!.channel);
      expect(await subscription.collectFor(100)).toEqual([]);
      return events;
    };
    expect(await received(fast, 4)).toEqual([sent[0], sent[1], sent[2], sent[4]]);
    expect(await received(generic, 4)).toEqual([sent[0], sent[1], sent[3], sent[4]]);
    expect(await received(sse, 3)).toEqual(publicOnes);
    expect(publicOnes.map((event) => event.seq)).toEqual([1, 2, 3]);
    sse.unsubscribe();
  });

  it("gives subscribers with different selections, aliases and variables each their own result", async () => {
    const channel = "paths:shapes";
    const ws = await connectWs(server.wsUrl);
    const aliased = wsSubscribe(ws, `subscription { room: channel(name: "${channel}") { __typename kind: action payload } }`);
    expect((await aliased.next()).data).toEqual({ room: { __typename: "ChannelEvent", kind: "JOIN", payload: null } });
    const narrow = wsSubscribe(
      await connectWs(server.wsUrl),
      `subscription ($n: String!) { channel(name: $n) { seq client { authenticated } } }`,
      { n: channel },
    );
    expect((await narrow.next()).data).toEqual({ channel: { seq: null, client: { authenticated: false } } });
    await aliased.next(); // the narrow subscriber's JOIN
    const elsewhere = wsSubscribe(
      await connectWs(server.wsUrl),
      `subscription ($n: String!) { channel(name: $n) { seq client { authenticated } } }`,
      { n: `${channel}:other` },
    );
    await elsewhere.next();

    await send(channel, { hello: "world" });
    expect((await aliased.next()).data).toEqual({ room: { __typename: "ChannelEvent", kind: "MESSAGE", payload: { hello: "world" } } });
    expect((await narrow.next()).data).toEqual({ channel: { seq: 1, client: { authenticated: false } } });
    expect(await elsewhere.collectFor(150)).toEqual([]);
  });

  it("renders every selection of a delivered event as the generic path executes it", async () => {
    // [selection under `channel`, what follows the operation]: plain fields are rendered by a compiled function, the rest by graphql-js.
    const shapes: [string, string][] = [
      [
        "{ __typename a: id b: payload c: client { __typename i: id extras authenticated } action command commandOptions createdAt seq channel }",
        "",
      ],
      ["{ ...on ChannelEvent { id payload } }", ""],
      ["{ ...E }", " fragment E on ChannelEvent { id channel }"],
      ["{ id payload @skip(if: true) }", ""],
      ["{ id id payload }", ""],
    ];
    for (const [index, [selection, rest]] of shapes.entries()) {
      const channel = `paths:render:${index}`;
      const documentFor = (directive: string) => `subscription ($n: String!) { ev: channel(name: $n)${directive} ${selection} }${rest}`;
      const fast = wsSubscribe(await connectWs(server.wsUrl), documentFor(""), { n: channel });
      await fast.next(); // its own JOIN
      const generic = wsSubscribe(await connectWs(server.wsUrl), documentFor(" @include(if: true)"), { n: channel });
      await generic.next(); // its own JOIN
      expect((await fast.next()).data).toBeDefined(); // the generic subscriber's JOIN
      await send(channel, { index, list: [1, "two", null] });
      const [fromFast, fromGeneric] = [await fast.next(), await generic.next()];
      expect(fromFast.errors).toBeUndefined();
      expect(fromFast).toEqual(fromGeneric);
    }
  });

  it("stops delivering as soon as a subscriber unsubscribes, publishes its LEAVE, and keeps serving the others", async () => {
    const channel = "paths:leave";
    const stays = await joinBySubscription(await connectWs(server.wsUrl), channel);
    const goes = await joinBySubscription(await connectWs(server.wsUrl), channel);
    await stays.subscription.next(); // the second JOIN
    goes.subscription.unsubscribe();
    expect((await stays.subscription.next()).data!.channel).toMatchObject({ action: "LEAVE", client: { id: goes.join.client.id } });
    await send(channel, "after");
    expect((await stays.subscription.next()).data!.channel.payload).toBe("after");
    expect(await goes.subscription.collectFor(150)).toEqual([]);

    // A new subscriber with the same document afterwards is served as the first one was.
    const again = await joinBySubscription(await connectWs(server.wsUrl), channel);
    await send(channel, "again");
    expect((await again.subscription.next()).data!.channel.payload).toBe("again");
  });
});

describe("clients joining together", () => {
  it("each subscriber receives its own JOIN, then every later JOIN and message in one order, however the JOINs were batched", async () => {
    const channel = "paths:crowd";
    const sockets = await Promise.all(Array.from({ length: 20 }, () => connectWs(server.wsUrl)));
    // Every subscribe is sent at once: their JOINs reach the members in batches.
    const subscriptions = sockets.map((socket, i) =>
      wsSubscribe<ChannelData>(socket, i % 5 === 4 ? GENERIC_CHANNEL_SUBSCRIPTION : CHANNEL_SUBSCRIPTION, { name: channel }),
    );
    const ownJoins = await Promise.all(subscriptions.map(joined));
    const { body } = await send(channel, { last: true });
    const last = body.data!.sendMessage.event as TestEvent;
    const received = await Promise.all(
      subscriptions.map(async (subscription, i) => {
        const events = [ownJoins[i]!];
        while (events.at(-1)!.id !== last.id) events.push((await subscription.next()).data!.channel);
        return events;
      }),
    );
    // The first to join saw everyone's JOIN: each other subscriber saw exactly the part from its own on.
    const longest = received.reduce((a, b) => (b.length > a.length ? b : a));
    expect(longest.filter((e) => e.action === "JOIN").length).toBe(20);
    for (const [i, events] of received.entries()) {
      const from = longest.findIndex((e) => e.id === ownJoins[i]!.id);
      expect(events).toEqual(longest.slice(from));
    }
    for (const subscription of subscriptions) subscription.unsubscribe();
    await Promise.all(sockets.map((socket) => socket.dispose()));
  });
});

describe("every subscription path refuses the same way", () => {
  it("refuses a bad channel name with the same error on each path", async () => {
    const variables = { name: "not a valid name!" };
    const fast = await wsSubscribe(await connectWs(server.wsUrl), CHANNEL_SUBSCRIPTION, variables).next();
    const generic = await wsSubscribe(await connectWs(server.wsUrl), GENERIC_CHANNEL_SUBSCRIPTION, variables).next();
    const sse = await sseSubscribe(server.httpUrl, CHANNEL_SUBSCRIPTION, variables).next();
    expect(refusal(fast)).toEqual([
      { message: expect.any(String), path: ["channel"], extensions: expect.objectContaining({ code: "BAD_USER_INPUT" }) },
    ]);
    expect(refusal(generic)).toEqual(refusal(fast));
    expect(refusal(sse)).toEqual(refusal(fast));
    expect(fast.data ?? null).toBeNull();
  });

  it("refuses missing and mistyped variables with BAD_USER_INPUT on each path", async () => {
    for (const variables of [{}, { name: 42 }, { name: "ok", options: undefined, extra: true }]) {
      const fast = await wsSubscribe(await connectWs(server.wsUrl), CHANNEL_SUBSCRIPTION, variables).next();
      const generic = await wsSubscribe(await connectWs(server.wsUrl), GENERIC_CHANNEL_SUBSCRIPTION, variables).next();
      if ("name" in variables && variables.name === "ok") {
        expect(fast.data?.channel).toMatchObject({ action: "JOIN" }); // unknown variables are ignored, as GraphQL says
        continue;
      }
      expect(fast.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(refusal(generic)).toEqual(refusal(fast));
    }
  });

  it("names the aliased field in the error path", async () => {
    const result = await wsSubscribe(await connectWs(server.wsUrl), `subscription { room: channel(name: "bad name!") { id } }`).next();
    expect(refusal(result)).toEqual([
      { message: expect.any(String), path: ["room"], extensions: expect.objectContaining({ code: "BAD_USER_INPUT" }) },
    ]);
  });
});
