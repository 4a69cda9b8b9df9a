import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import type { ChannelListener } from "../../src/realtime/fanout.js";
import type { ChannelEvent } from "../../src/realtime/types.js";
import { client, createCore, OPEN_RULES, recorder, requestSession, settle, socketSession } from "./core.js";

/** The code of the error a promise rejects with, or "resolved". */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "resolved",
    (error: unknown) => (error instanceof AppError ? error.code : `not an AppError: ${String(error)}`),
  );
}

/** What a subscriber saw, as `ACTION:payload.n` (messages) or `ACTION:client` (joins and leaves). */
function seen(events: readonly ChannelEvent[]): string[] {
  return events.map((event) =>
    event.action === "MESSAGE" ? `MESSAGE:${(event.payload as { n: number }).n}` : `${event.action}:${event.client.id}`,
  );
}

/** A middleware that holds each JOIN until the test lets it through or drops it. */
function heldJoins() {
  const waiting: { channel: string; decide: (deliver: boolean) => void }[] = [];
  const middleware = async (event: ChannelEvent) => {
    if (event.action !== "JOIN") return { deliver: true as const, event };
    const deliver = await new Promise<boolean>((decide) => waiting.push({ channel: event.channel, decide }));
    return deliver ? { deliver: true as const, event } : { deliver: false as const };
  };
  return { waiting, middleware };
}

describe("ChannelService replay then live delivery", () => {
  for (const sinkKind of ["event by event", "in batches"] as const) {
    it(`hands over the replayed history, the subscriber's own JOIN, then every live message, with no gap or repeat (${sinkKind})`, async () => {
      const core = createCore();
      const sender = requestSession();
      for (let n = 1; n <= 3; n++) await core.channels.sendMessage(sender, "room", { n }, null);
      const sink = recorder();
      const batches: ChannelEvent[][] = [];
      const target =
        sinkKind === "in batches" ? { ...sink, eventBatch: (events: readonly ChannelEvent[]) => batches.push([...events]) } : sink;
      const session = socketSession();
      await core.channels.open(session, "room", { history: 2 }, target);
      for (let n = 4; n <= 6; n++) await core.channels.sendMessage(sender, "room", { n }, null);
      await settle();
      const all = [...sink.events, ...batches.flat()];
      expect(seen(all)).toEqual(["MESSAGE:2", "MESSAGE:3", `JOIN:${session.client.id}`, "MESSAGE:4", "MESSAGE:5", "MESSAGE:6"]);
      expect(all.filter((event) => event.action === "MESSAGE").map((event) => event.seq)).toEqual([2, 3, 4, 5, 6]);
    });
  }

  // In a cluster a message stored before the replay's read can reach the bus after it, inside a
  // batch of JOINs and LEAVEs; the fan-out hands the subscription such a batch directly here.
  it("drops from a live batch only the events the replay already held", async () => {
    const core = createCore();
    const sender = requestSession();
    for (let n = 1; n <= 2; n++) await core.channels.sendMessage(sender, "room", { n }, null);
    const batches: ChannelEvent[][] = [];
    const sink = { ...recorder(), eventBatch: (events: readonly ChannelEvent[]) => batches.push([...events]) };
    const subscription = await core.channels.open(socketSession(), "room", { history: 2 }, sink);
    const history = await core.history.latest("room", 10);
    const live = { ...history[1]!, id: "live-3", seq: 3, payload: { n: 3 } };
    const listener = subscription as unknown as ChannelListener;
    listener.deliverAll!([history[0]!, history[1]!, live]);
    listener.deliverAll!([history[1]!]);
    expect(batches.map(seen)).toEqual([["MESSAGE:3"]]);
  });
});

describe("ChannelService channel and queue limits", () => {
  it("counts subscriptions toward maxChannelsPerClient; a channel already held takes no new place", async () => {
    const core = createCore({ maxChannelsPerClient: 2 });
    const who = client(true);
    const session = socketSession(who);
    await core.channels.open(session, "a", null, recorder());
    await core.channels.open(session, "b", null, recorder());
    expect(await codeOf(core.channels.open(session, "c", null, recorder()))).toBe("LIMIT_EXCEEDED");
    expect(await codeOf(core.channels.joinChannel(socketSession(who), "c", null))).toBe("LIMIT_EXCEEDED");
    expect(await codeOf(core.channels.open(socketSession(who), "a", null, recorder()))).toBe("resolved");
    expect(core.channels.stats().memberships).toBe(2);
  });

  it("keeps counting a channel among the client's joins while a second join of it is still under way", async () => {
    const held = heldJoins();
    const core = createCore({ maxChannelsPerClient: 1 }, [held.middleware]);
    const who = client(true);
    const first = core.channels.joinChannel(socketSession(who), "a", null);
    const second = core.channels.joinChannel(socketSession(who), "a", null);
    await settle();
    expect(held.waiting).toHaveLength(2);
    held.waiting[0]!.decide(false); // the first join is dropped: its place is given back, the second still holds one
    expect(await first).toEqual({ joined: false, event: null });
    expect(await codeOf(core.channels.joinChannel(socketSession(who), "b", null))).toBe("LIMIT_EXCEEDED");
    held.waiting[1]!.decide(true);
    expect((await second).joined).toBe(true);
    expect(await codeOf(core.channels.joinChannel(socketSession(who), "b", null))).toBe("LIMIT_EXCEEDED");
  });

  it("a JOIN a trigger drops through joinChannel makes no member, no presence and no LEAVE", async () => {
    const core = createCore({}, [async (event) => (event.action === "JOIN" ? { deliver: false } : { deliver: true, event })]);
    const session = socketSession(client(true));
    expect(await core.channels.joinChannel(session, "room", null)).toEqual({ joined: false, event: null });
    await settle();
    expect(core.channels.stats().memberships).toBe(0);
    expect(await core.channels.presence(session, "room")).toEqual([]);
    expect(session.socket!.joins).toEqual([]);
    expect(core.published.filter((event) => event.action === "LEAVE")).toEqual([]);
  });

  it("lets a pulled subscription have exactly maxQueuedEvents waiting, and cuts it off at one more", async () => {
    const core = createCore({ maxQueuedEvents: 3 });
    const sender = requestSession();
    const stream = await core.channels.subscribe(requestSession(), "room", null);
    expect((await stream.next()).value).toMatchObject({ action: "JOIN" });
    for (let n = 1; n <= 3; n++) await core.channels.sendMessage(sender, "room", { n }, null);
    await settle();
    const read: ChannelEvent[] = [];
    for (let i = 0; i < 3; i++) read.push((await stream.next()).value as ChannelEvent);
    expect(seen(read)).toEqual(["MESSAGE:1", "MESSAGE:2", "MESSAGE:3"]);
    for (let n = 4; n <= 7; n++) await core.channels.sendMessage(sender, "room", { n }, null);
    await settle();
    await expect(stream.next()).rejects.toMatchObject({ code: "SLOW_CONSUMER" });
  });
});

describe("ChannelService channel rules", () => {
  it("history: last must not be negative, 0 gives nothing, and it is capped by what the channel keeps", async () => {
    const core = createCore();
    core.rules.set("kept", { ...OPEN_RULES, history: 3 });
    const sender = requestSession();
    for (let n = 1; n <= 5; n++) await core.channels.sendMessage(sender, "kept", { n }, null);
    expect(await codeOf(core.channels.history(sender, "kept", -1))).toBe("BAD_USER_INPUT");
    expect(await core.channels.history(sender, "kept", 0)).toEqual([]);
    expect(seen(await core.channels.history(sender, "kept", 2))).toEqual(["MESSAGE:4", "MESSAGE:5"]);
    expect(seen(await core.channels.history(sender, "kept", 100))).toEqual(["MESSAGE:3", "MESSAGE:4", "MESSAGE:5"]);
  });

  it("presence is refused where it is off, for members too", async () => {
    const core = createCore();
    core.rules.set("quiet", { ...OPEN_RULES, presence: false });
    const session = socketSession();
    await core.channels.joinChannel(session, "quiet", null);
    expect(await codeOf(core.channels.presence(session, "quiet"))).toBe("FORBIDDEN");
    expect((await core.channels.presence(session, "open")).map((member) => member.id)).toEqual([]);
  });

  it("messaging NOBODY lets only the admin send; AUTHENTICATED refuses anonymous senders", async () => {
    const core = createCore();
    core.rules.set("announcements", { ...OPEN_RULES, messaging: "NOBODY" });
    core.rules.set("signed", { ...OPEN_RULES, messaging: "AUTHENTICATED" });
    const anonymous = requestSession(client(false));
    const known = requestSession(client(true));
    const admin = requestSession(client(), { isAdmin: true });
    expect(await codeOf(core.channels.sendMessage(anonymous, "announcements", { n: 1 }, null))).toBe("FORBIDDEN");
    expect(await codeOf(core.channels.sendMessage(known, "announcements", { n: 1 }, null))).toBe("FORBIDDEN");
    expect((await core.channels.sendMessage(admin, "announcements", { n: 1 }, null)).delivered).toBe(true);
    expect(await codeOf(core.channels.sendMessage(anonymous, "signed", { n: 1 }, null))).toBe("UNAUTHENTICATED");
    expect((await core.channels.sendMessage(known, "signed", { n: 1 }, null)).delivered).toBe(true);
    // Joining and reading stay open to everyone the channel admits.
    expect((await core.channels.joinChannel(socketSession(client(false)), "announcements", null)).joined).toBe(true);
    expect(seen(await core.channels.history(anonymous, "signed", 10))).toEqual(["MESSAGE:1"]);
  });

  it("send options must be a JSON object, and options.to a client id that alone receives the message", async () => {
    const core = createCore();
    const sender = requestSession();
    for (const options of [[1], "to", 3, true]) {
      expect(await codeOf(core.channels.sendMessage(sender, "room", { n: 0 }, options))).toBe("BAD_USER_INPUT");
    }
    expect(await codeOf(core.channels.sendMessage(sender, "room", { n: 0 }, { to: 42 }))).toBe("BAD_USER_INPUT");
    const alice = socketSession();
    const bob = socketSession();
    const toAlice = recorder();
    const toBob = recorder();
    await core.channels.open(alice, "room", null, toAlice);
    await core.channels.open(bob, "room", null, toBob);
    await core.channels.sendMessage(sender, "room", { n: 1 }, { to: alice.client.id });
    await core.channels.sendMessage(sender, "room", { n: 2 }, {});
    await settle();
    expect(seen(toAlice.events.filter((event) => event.action === "MESSAGE"))).toEqual(["MESSAGE:1", "MESSAGE:2"]);
    expect(seen(toBob.events.filter((event) => event.action === "MESSAGE"))).toEqual(["MESSAGE:2"]);
  });

  it("options.history must be a whole number of messages, and replays at most what the channel keeps", async () => {
    const core = createCore();
    core.rules.set("kept", { ...OPEN_RULES, history: 2 });
    const sender = requestSession();
    for (let n = 1; n <= 4; n++) await core.channels.sendMessage(sender, "kept", { n }, null);
    for (const history of [-1, 1.5, "2", null, Number.NaN]) {
      expect(await codeOf(core.channels.open(socketSession(), "kept", { history }, recorder()))).toBe("BAD_USER_INPUT");
    }
    const sink = recorder();
    await core.channels.open(socketSession(), "kept", { history: 10 }, sink);
    expect(seen(sink.events.filter((event) => event.action === "MESSAGE"))).toEqual(["MESSAGE:3", "MESSAGE:4"]);
    const none = recorder();
    const latecomer = socketSession();
    await core.channels.open(latecomer, "kept", { history: 0 }, none);
    await settle();
    expect(none.events.filter((event) => event.action === "MESSAGE")).toEqual([]);
    expect(none.events.filter((event) => event.client.id === latecomer.client.id).map((event) => event.action)).toEqual(["JOIN"]);
  });
});

describe("ChannelService channel count while joins are under way", () => {
  it("does not count twice a channel the client is in and joins again while joining others", async () => {
    const held = heldJoins();
    const core = createCore({ maxChannelsPerClient: 4 }, [held.middleware]);
    const who = client(true);
    const session = socketSession(who);
    const first = core.channels.open(session, "m:0", null, recorder());
    await settle();
    held.waiting[0]!.decide(true);
    await first;
    // A burst: m:0 again (a member already), and three new channels: four in all, the limit.
    const burst = ["m:0", "m:3", "m:1", "m:4"].map((channel) => core.channels.open(socketSession(who), channel, null, recorder()));
    await settle();
    for (const join of held.waiting.slice(1)) join.decide(true);
    expect(await Promise.all(burst.map((opened) => codeOf(opened)))).toEqual(["resolved", "resolved", "resolved", "resolved"]);
    expect(core.channels.stats().memberships).toBe(4);
  });
});
