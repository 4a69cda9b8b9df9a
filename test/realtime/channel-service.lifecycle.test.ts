/**
 * The life of ChannelService subscriptions and memberships in-process: the replayed history and the
 * live events held meanwhile, token expiry, the pulled stream (slow readers, clean ends, `return()`),
 * leaving across a cluster, closing connections, rules enforced on open subscriptions and joins.
 */
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import type { ChannelRules } from "../../src/realtime/channel-config.js";
import type { ClusterLeaves, SubscriptionSink } from "../../src/realtime/channels.js";
import { NO_OBSERVER, type RealtimeObserver, type Transport } from "../../src/realtime/observer.js";
import type { PresenceTracker } from "../../src/realtime/presence.js";
import type { EventMiddleware } from "../../src/realtime/publisher.js";
import type { ChannelEvent, RealtimeClient } from "../../src/realtime/types.js";
import { eventually } from "../helpers/eventually.js";
import { client, createCore, OPEN_RULES, recorder, requestSession, settle, socketSession } from "./core.js";

/** A short label per event: the action and the payload of a message or the client of a join/leave. */
function label(event: ChannelEvent): string {
  return event.action === "MESSAGE" ? `MESSAGE:${String(event.payload)}` : `${event.action}:${event.client.id}`;
}

/** A recorder that also takes batches, remembering each one. */
function batchingRecorder(): ReturnType<typeof recorder> & {
  batches: ChannelEvent[][];
  eventBatch(events: readonly ChannelEvent[]): void;
} {
  const sink = recorder();
  const batches: ChannelEvent[][] = [];
  return {
    ...sink,
    batches,
    eventBatch: (events) => {
      batches.push([...events]);
      sink.events.push(...events);
    },
  };
}

function leavesOf(events: ChannelEvent[], clientId: string): number {
  return events.filter((event) => event.action === "LEAVE" && event.client.id === clientId).length;
}

/** A cluster that records the leaves it is asked to spread. */
function recordingCluster(): ClusterLeaves & { requests: [string, string, boolean][] } {
  const requests: [string, string, boolean][] = [];
  return { requests, requestLeave: (channel, clientId, announce) => void requests.push([channel, clientId, announce]) };
}

/** Presence across a cluster: this instance's members plus those `remote` lists per channel. */
function clusterPresence(remote: Map<string, RealtimeClient[]>) {
  return (membership: { members(channel: string): RealtimeClient[] }): PresenceTracker => ({
    joined: () => {},
    left: () => {},
    list: async (channel) => [...membership.members(channel), ...(remote.get(channel) ?? [])],
  });
}

async function wait(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** An observer that records the transport of each slow consumer dropped, and ignores the rest. */
function slowConsumerDrops(): { dropped: Transport[]; observer: RealtimeObserver } {
  const dropped: Transport[] = [];
  return { dropped, observer: { ...NO_OBSERVER, slowConsumerDropped: (transport) => void dropped.push(transport) } };
}

describe("a subscription's replayed history and the live events held meanwhile", () => {
  it("hands over the history, then its own JOIN and the live events, each once, in publish order, batches included", async () => {
    const core = createCore();
    const sender = requestSession();
    await core.channels.sendMessage(sender, "room", 1, null);
    await core.channels.sendMessage(sender, "room", 2, null);
    const [x, y, z, w] = [socketSession(), socketSession(), socketSession(), socketSession()];
    const latest = core.history.latest.bind(core.history);
    core.history.latest = async (channel, last) => {
      await core.channels.sendMessage(sender, "room", 3, null); // stored before the read and live: once only
      await Promise.all([core.channels.joinChannel(x, "room", null), core.channels.joinChannel(y, "room", null)]);
      await settle();
      const stored = await latest(channel, last);
      await core.channels.sendMessage(sender, "room", 4, null); // after the read: live only
      await settle();
      return stored;
    };
    const session = socketSession();
    const sink = batchingRecorder();
    const subscription = await core.channels.open(session, "room", { history: 10 }, sink);
    expect(subscription).not.toBeNull();
    expect(sink.events.map(label)).toEqual([
      "MESSAGE:1",
      "MESSAGE:2",
      "MESSAGE:3",
      `JOIN:${session.client.id}`,
      `JOIN:${x.client.id}`,
      `JOIN:${y.client.id}`,
      "MESSAGE:4",
    ]);
    expect(sink.batches).toEqual([]);

    await Promise.all([core.channels.joinChannel(z, "room", null), core.channels.joinChannel(w, "room", null)]);
    await settle();
    expect(sink.batches.map((batch) => batch.map(label))).toEqual([[`JOIN:${z.client.id}`, `JOIN:${w.client.id}`]]);
    await core.channels.sendMessage(sender, "room", 5, null);
    await settle();
    expect(sink.events.map(label).slice(7)).toEqual([`JOIN:${z.client.id}`, `JOIN:${w.client.id}`, "MESSAGE:5"]);
    subscription!.close();
  });

  it("counts each subscription under its transport: WebSocket or HTTP", async () => {
    const core = createCore();
    const ws = await core.channels.open(socketSession(), "room", null, recorder());
    const http = await core.channels.open(requestSession(), "room", null, recorder());
    expect(core.fanout.listenersByTransport()).toEqual({ ws: 1, http: 1 } satisfies Record<Transport, number>);
    ws!.close();
    http!.close();
    expect(core.fanout.listenersByTransport()).toEqual({ ws: 0, http: 0 });
  });
});

describe("a subscription over HTTP ends when its token expires", () => {
  it("ends with Token expired once the token expires, and leaves", async () => {
    const core = createCore();
    const session = requestSession(client(), { expiresAt: Date.now() + 40 });
    const sink = recorder();
    await core.channels.open(session, "room", null, sink);
    expect(sink.ended).toEqual([]);
    const [ended] = await eventually("the subscription to end", () => sink.ended, { until: (e) => e.length > 0, intervalMs: 5 });
    expect(ended!.error).toBeInstanceOf(AppError);
    expect(ended!.error).toMatchObject({ code: "UNAUTHENTICATED", message: "Token expired" });
    expect(sink.ended).toHaveLength(1);
    expect(core.channels.stats().memberships).toBe(0);
  });

  it("does not end early for a token valid for a minute, nor for one valid longer than a timer can wait", async () => {
    const core = createCore();
    const soon = recorder();
    const late = recorder();
    const minute = await core.channels.open(requestSession(client(), { expiresAt: Date.now() + 60_000 }), "room", null, soon);
    const days = await core.channels.open(requestSession(client(), { expiresAt: Date.now() + 40 * 24 * 3600_000 }), "room", null, late);
    await wait(20); // a timer set wrongly (negative, or beyond 2^31 - 1 ms) fires after 1 ms
    expect(soon.ended).toEqual([]);
    expect(late.ended).toEqual([]);
    minute!.close();
    days!.close();
  });

  it("a WebSocket subscription keeps no expiry timer of its own (the connection is closed instead)", async () => {
    const core = createCore();
    const sink = recorder();
    const subscription = await core.channels.open(socketSession(client(), { expiresAt: Date.now() + 5 }), "room", null, sink);
    await wait(20);
    expect(sink.ended).toEqual([]);
    subscription!.close();
  });
});

describe("a refused subscription leaves earlier memberships alone", () => {
  it("a join refused by a trigger, or failing, undoes nothing of the client's other subscription", async () => {
    const refuse: EventMiddleware = async (event) => {
      const options = event.commandOptions as { refuse?: string } | null;
      if (event.action === "JOIN" && options?.refuse === "error") throw new AppError("FORBIDDEN", "refused by a trigger");
      if (event.action === "JOIN" && options?.refuse === "drop") return { deliver: false };
      return { deliver: true, event };
    };
    const core = createCore({}, [refuse]);
    const session = socketSession();
    const first = await core.channels.open(session, "room", null, recorder());
    await expect(core.channels.open(session, "room", { refuse: "error" }, recorder())).rejects.toThrow("refused by a trigger");
    expect(await core.channels.open(session, "room", { refuse: "drop" }, recorder())).toBeNull();
    expect(core.membership.has("room", session.client.id)).toBe(true);
    await settle();
    expect(leavesOf(core.published, session.client.id)).toBe(0);
    expect(session.socket!.subscriptions).toBe(1);
    first!.close();
    expect(core.membership.has("room", session.client.id)).toBe(false);
  });

  it("a message a trigger drops is not delivered: the send says so", async () => {
    const mute: EventMiddleware = async (event) => (event.channel === "muted" ? { deliver: false } : { deliver: true, event });
    const core = createCore({}, [mute]);
    expect(await core.channels.sendMessage(requestSession(), "muted", 1, null)).toEqual({ delivered: false, event: null });
    const sent = await core.channels.sendMessage(requestSession(), "open", 1, null);
    expect(sent).toEqual({ delivered: true, event: expect.objectContaining({ action: "MESSAGE", payload: 1, channel: "open" }) });
  });
});

describe("the pulled stream of a subscription", () => {
  it("yields each event as not done, and ends cleanly when its client leaves the channel", async () => {
    const core = createCore();
    const session = socketSession();
    const stream = await core.channels.subscribe(session, "room", null);
    await settle();
    const first = await stream.next();
    expect(first.done).toBe(false);
    expect(label(first.value as ChannelEvent)).toBe(`JOIN:${session.client.id}`);
    await core.channels.sendMessage(requestSession(), "room", 7, null);
    await settle();
    expect(await stream.next()).toEqual({ done: false, value: expect.objectContaining({ action: "MESSAGE", payload: 7 }) });
    expect(await core.channels.leaveChannel(session, "room")).toBe(true);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(session.socket!.subscriptions).toBe(0);
  });

  it("return() ends the subscription and leaves the channel", async () => {
    const core = createCore();
    const session = requestSession();
    const stream = await core.channels.subscribe(session, "room", null);
    expect(core.membership.has("room", session.client.id)).toBe(true);
    expect(await stream.return!()).toEqual({ done: true, value: undefined });
    expect(core.membership.has("room", session.client.id)).toBe(false);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
    await settle();
    expect(leavesOf(core.published, session.client.id)).toBe(1);
  });

  it("is empty when a trigger drops the join", async () => {
    const drop: EventMiddleware = async (event) => (event.action === "JOIN" ? { deliver: false } : { deliver: true, event });
    const core = createCore({}, [drop]);
    const session = socketSession();
    const stream = await core.channels.subscribe(session, "room", null);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(session.socket!.subscriptions).toBe(0);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("cuts off a slow HTTP reader with SLOW_CONSUMER, reports it once as HTTP, and leaves", async () => {
    const { dropped, observer } = slowConsumerDrops();
    const core = createCore({ maxQueuedEvents: 2 }, [], () => ({ observer }));
    const session = requestSession();
    const stream = await core.channels.subscribe(session, "room", null);
    for (const n of [1, 2, 3]) await core.channels.sendMessage(requestSession(), "room", n, null);
    await settle();
    expect(dropped).toEqual(["http"]);
    const error = await stream.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: "SLOW_CONSUMER", message: "Too slow: more than 2 events were waiting for this subscription" });
    expect(core.membership.has("room", session.client.id)).toBe(false);
    expect(leavesOf(core.published, session.client.id)).toBe(1);
  });

  it("drops a slow WebSocket reader's connection, naming the channel, and leaves the counting to the socket", async () => {
    const { dropped, observer } = slowConsumerDrops();
    const core = createCore({ maxQueuedEvents: 2 }, [], () => ({ observer }));
    const reasons: string[] = [];
    const session = socketSession(client(), {
      socket: { joins: [], subscriptions: 0, closed: false, drop: (reason) => void reasons.push(reason) },
    });
    await core.channels.subscribe(session, "room", null);
    for (const n of [1, 2, 3]) await core.channels.sendMessage(requestSession(), "room", n, null);
    await settle();
    expect(reasons).toEqual(["more than 2 events waiting on channel room"]);
    expect(dropped).toEqual([]);
    expect(core.membership.has("room", session.client.id)).toBe(false);
  });

  it("cuts off a reader whose replayed history alone overflows, and leaves once open", async () => {
    const core = createCore({ maxQueuedEvents: 2 });
    for (const n of [1, 2, 3, 4]) await core.channels.sendMessage(requestSession(), "room", n, null);
    const session = requestSession();
    const stream = await core.channels.subscribe(session, "room", { history: 4 });
    expect(core.membership.has("room", session.client.id)).toBe(false);
    await expect(stream.next()).rejects.toMatchObject({ code: "SLOW_CONSUMER" });
    await settle();
    expect(leavesOf(core.published, session.client.id)).toBe(1);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });
});

describe("leaving a channel", () => {
  it("the LEAVE names the client as it joined, whatever the leaving request says of it", async () => {
    const core = createCore();
    const joined: RealtimeClient = { id: "member-7", authenticated: true, extras: { name: "Ada" } };
    await core.channels.joinChannel(requestSession(joined), "room", null);
    expect(await core.channels.leaveChannel(requestSession({ id: "member-7", authenticated: true, extras: null }), "room")).toBe(true);
    await settle();
    expect(core.published.filter((e) => e.action === "LEAVE").map((e) => e.client)).toEqual([joined]);
    expect(await core.channels.leaveChannel(requestSession(joined), "room")).toBe(false);
  });

  it("forgets the connection's joins of the channel", async () => {
    const core = createCore();
    const session = socketSession();
    await core.channels.joinChannel(session, "room", null);
    await core.channels.joinChannel(session, "room", null);
    await core.channels.joinChannel(session, "hall", null);
    expect(session.socket!.joins).toEqual(["room", "room", "hall"]);
    await core.channels.leaveChannel(session, "room");
    expect(session.socket!.joins).toEqual(["hall"]);
  });

  it("in a cluster, asks the other instances to leave too: announcing there when the client was a member only elsewhere", async () => {
    const cluster = recordingCluster();
    const remote = new Map<string, RealtimeClient[]>();
    const presence = clusterPresence(remote);
    const core = createCore({}, [], (membership) => ({ cluster, presence: presence(membership) }));
    const here = socketSession(client(true));
    await core.channels.joinChannel(here, "room", null);
    expect(await core.channels.leaveChannel(here, "room")).toBe(true);
    expect(cluster.requests).toEqual([["room", here.client.id, false]]);

    const away = client(true);
    remote.set("room", [client(true), away]);
    expect(await core.channels.leaveChannel(requestSession(away), "room")).toBe(true);
    expect(cluster.requests.at(-1)).toEqual(["room", away.id, true]);

    const nowhere = client(true);
    expect(await core.channels.leaveChannel(requestSession(nowhere), "room")).toBe(false);
    expect(cluster.requests).toHaveLength(2);
    await settle();
    expect(leavesOf(core.published, away.id)).toBe(0); // the instance where it was a member announces it
    expect(leavesOf(core.published, here.client.id)).toBe(1);
  });

  it("leaveHere ends the client's subscriptions and joins on this instance, announcing the LEAVE only when asked", async () => {
    const core = createCore();
    const session = socketSession();
    const sink = recorder();
    await core.channels.open(session, "room", null, sink);
    await core.channels.joinChannel(session, "room", null);
    core.channels.leaveHere("room", session.client.id, true);
    expect(sink.ended).toEqual([{ error: undefined }]);
    expect(session.socket!.joins).toEqual([]);
    expect(session.socket!.subscriptions).toBe(0);
    expect(core.membership.has("room", session.client.id)).toBe(false);
    await settle();
    expect(leavesOf(core.published, session.client.id)).toBe(1);

    const quiet = socketSession();
    await core.channels.joinChannel(quiet, "room", null);
    core.channels.leaveHere("room", quiet.client.id, false);
    expect(core.membership.has("room", quiet.client.id)).toBe(false);
    core.channels.leaveHere("room", "not-a-member", true);
    await settle();
    expect(leavesOf(core.published, quiet.client.id)).toBe(0);
    expect(leavesOf(core.published, "not-a-member")).toBe(0);
  });

  it("a LEAVE that cannot be published is logged, and the leave still happens", async () => {
    const failure = new Error("trigger broke");
    const breakLeaves: EventMiddleware = async (event) => {
      if (event.action === "LEAVE") throw failure;
      return { deliver: true, event };
    };
    const warned: unknown[][] = [];
    const logger = { warn: (...args: unknown[]) => void warned.push(args) } as never;
    const core = createCore({}, [breakLeaves], () => ({ logger }));
    const session = socketSession();
    await core.channels.joinChannel(session, "room", null);
    expect(await core.channels.leaveChannel(session, "room")).toBe(true);
    expect(warned).toEqual([[{ err: failure, channel: "room" }, "could not publish a LEAVE event"]]);
    expect(core.membership.has("room", session.client.id)).toBe(false);
  });
});

describe("members-only channels in a cluster", () => {
  it("an authenticated client that joined through another instance may send; an anonymous one or one nowhere may not", async () => {
    const remote = new Map<string, RealtimeClient[]>();
    const presence = clusterPresence(remote);
    const clustered = createCore({}, [], (membership) => ({ cluster: recordingCluster(), presence: presence(membership) }));
    const alone = createCore({}, [], (membership) => ({ presence: presence(membership) }));
    const signedIn = client(true);
    const anonymous = client(false);
    remote.set("club", [client(true), signedIn, anonymous]);
    for (const core of [clustered, alone]) core.rules.set("club", { ...OPEN_RULES, membersOnly: true });
    expect((await clustered.channels.sendMessage(requestSession(signedIn), "club", 1, null)).delivered).toBe(true);
    await expect(clustered.channels.sendMessage(requestSession(anonymous), "club", 1, null)).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(clustered.channels.sendMessage(requestSession(client(true)), "club", 1, null)).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(alone.channels.sendMessage(requestSession(signedIn), "club", 1, null)).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});

describe("closing connections and enforcing rules", () => {
  it("closing an HTTP session ends its subscriptions", async () => {
    const core = createCore();
    const session = requestSession();
    await core.channels.open(session, "room", null, recorder());
    core.channels.closeSession(session);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("rules enforced after one connection closed still reach the joins of the others", async () => {
    const core = createCore();
    const [a, b] = [socketSession(), socketSession()];
    await core.channels.joinChannel(a, "room", null);
    await core.channels.joinChannel(b, "room", null);
    core.channels.closeSession(a);
    expect(core.membership.has("room", b.client.id)).toBe(true);
    core.rules.set("room", { ...OPEN_RULES, active: false });
    core.channels.enforceRules();
    expect(core.membership.has("room", b.client.id)).toBe(false);
    expect(b.socket!.joins).toEqual([]);
  });

  it("rules enforced after one client left still reach the joins of the others", async () => {
    const core = createCore();
    const [a, b] = [socketSession(), socketSession()];
    await core.channels.joinChannel(a, "room", null);
    await core.channels.joinChannel(b, "room", null);
    expect(await core.channels.leaveChannel(a, "room")).toBe(true);
    core.rules.set("room", { ...OPEN_RULES, active: false });
    core.channels.enforceRules();
    expect(core.membership.has("room", b.client.id)).toBe(false);
    expect(b.socket!.joins).toEqual([]);
  });

  it("a rules source that fails with an unexpected error ends the subscription as no longer allowed", async () => {
    const core = createCore();
    const sink = recorder();
    await core.channels.open(socketSession(), "room", null, sink);
    const broken: ChannelRules = {
      ...OPEN_RULES,
      get active(): boolean {
        throw new Error("configuration store broke");
      },
    };
    core.rules.set("room", broken);
    core.channels.enforceRules();
    expect(sink.ended).toHaveLength(1);
    expect(sink.ended[0]!.error).toBeInstanceOf(AppError);
    expect(sink.ended[0]!.error).toMatchObject({ code: "FORBIDDEN", message: "No longer allowed" });
  });

  it("closing a subscription twice leaves once: the client's other subscription keeps it a member", async () => {
    const core = createCore();
    const session = socketSession();
    const first = await core.channels.open(session, "room", null, recorder());
    const second = await core.channels.open(session, "room", null, recorder());
    first!.close();
    first!.close();
    expect(core.membership.has("room", session.client.id)).toBe(true);
    expect(session.socket!.subscriptions).toBe(1);
    second!.close();
    expect(core.membership.has("room", session.client.id)).toBe(false);
    expect(session.socket!.subscriptions).toBe(0);
  });

  it("a subscription its client closed while rules were enforced is not told it ended", async () => {
    const core = createCore();
    const session = socketSession();
    let second: { close(): void } | null = null;
    const ended: string[] = [];
    const first: SubscriptionSink = {
      event: () => {},
      end: () => {
        ended.push("first");
        second?.close();
      },
    };
    const other: SubscriptionSink = { event: () => {}, end: () => void ended.push("second") };
    await core.channels.open(session, "room", null, first);
    second = await core.channels.open(session, "room", null, other);
    core.rules.set("room", { ...OPEN_RULES, active: false });
    core.channels.enforceRules();
    expect(ended).toEqual(["first"]);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });
});

describe("channels being joined count against the limit until their joins end", () => {
  it("a join still under way keeps its place after another of the client's joins finished", async () => {
    const gates = new Map<string, () => void>();
    const slowJoins: EventMiddleware = async (event) => {
      if (event.action === "JOIN" && event.channel !== "c") await new Promise<void>((resolve) => gates.set(event.channel, resolve));
      return { deliver: true, event };
    };
    const core = createCore({ maxChannelsPerClient: 2 }, [slowJoins]);
    const session = socketSession();
    const joiningA = core.channels.joinChannel(session, "a", null);
    const joiningB = core.channels.joinChannel(session, "b", null);
    await eventually("both joins to be under way", () => gates.size === 2);
    gates.get("b")!();
    await joiningB;
    await expect(core.channels.joinChannel(session, "c", null)).rejects.toMatchObject({
      code: "LIMIT_EXCEEDED",
      message: "Too many channels: a client may be in at most 2",
    });
    gates.get("a")!();
    await joiningA;
    expect(session.socket!.joins).toEqual(["b", "a"]);
  });
});
