import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import type { ChannelEvent } from "../../src/realtime/types.js";
import { eventually } from "../helpers/eventually.js";
import { client, createCore, OPEN_RULES, recorder, requestSession, settle, socketSession } from "./core.js";

/** The code of the error a promise rejects with. */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "resolved",
    (error: unknown) => (error instanceof AppError ? error.code : `not an AppError: ${String(error)}`),
  );
}

function leaves(events: ChannelEvent[], clientId: string): number {
  return events.filter((event) => event.action === "LEAVE" && event.client.id === clientId).length;
}

describe("ChannelService limits under bursts", () => {
  it("opens at most maxSubscriptionsPerSocket subscriptions when they all arrive at once, and gives every slot back", async () => {
    const core = createCore({ maxSubscriptionsPerSocket: 10 });
    const session = socketSession();
    const attempts = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => core.channels.open(session, `burst:${i}`, null, recorder())),
    );
    const opened = attempts.filter((a) => a.status === "fulfilled");
    expect(opened).toHaveLength(10);
    for (const refused of attempts.filter((a) => a.status === "rejected")) {
      expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: "LIMIT_EXCEEDED" });
    }
    expect(session.socket!.subscriptions).toBe(10);
    for (const attempt of opened) (attempt as PromiseFulfilledResult<{ close(): void }>).value.close();
    expect(session.socket!.subscriptions).toBe(0);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("keeps a client in at most maxChannelsPerClient channels when its joins arrive at once", async () => {
    const core = createCore({ maxChannelsPerClient: 4 });
    const who = client(true);
    const sessions = [socketSession(who), socketSession(who)];
    const attempts = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => core.channels.joinChannel(sessions[i % 2]!, `room:${i}`, null)),
    );
    expect(attempts.filter((a) => a.status === "fulfilled")).toHaveLength(4);
    expect(core.channels.stats().memberships).toBe(4);
    // Joining a channel it is already in takes no new place: allowed at the limit, and still 4 memberships.
    const member = `room:${attempts.findIndex((a) => a.status === "fulfilled")}`;
    expect(await core.channels.joinChannel(sessions[0]!, member, null)).toMatchObject({ joined: true });
    expect(core.channels.stats().memberships).toBe(4);
    for (const session of sessions) core.channels.closeSession(session);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("gives the slot back when the join is refused or dropped", async () => {
    let verdict: "refuse" | "drop" | "pass" = "refuse";
    const core = createCore({ maxSubscriptionsPerSocket: 1 }, [
      async (event) => {
        if (event.action !== "JOIN" || verdict === "pass") return { deliver: true, event };
        if (verdict === "drop") return { deliver: false };
        throw new AppError("TRIGGER_REJECTED", "no");
      },
    ]);
    const session = socketSession();
    expect(await codeOf(core.channels.open(session, "a", null, recorder()))).toBe("TRIGGER_REJECTED");
    verdict = "drop";
    expect(await core.channels.open(session, "a", null, recorder())).toBeNull();
    verdict = "pass";
    expect(await core.channels.open(session, "a", null, recorder())).not.toBeNull();
    expect(session.socket!.subscriptions).toBe(1);
  });
});

describe("ChannelService memberships end exactly once", () => {
  it("cuts off a pulled subscription whose replay alone overflows its queue, and leaves nothing behind", async () => {
    const core = createCore({ maxQueuedEvents: 3 });
    const sender = requestSession();
    for (let i = 0; i < 5; i++) await core.channels.sendMessage(sender, "replayed", { i }, null);
    const session = socketSession();
    const stream = await core.channels.subscribe(session, "replayed", { history: 5 });
    await expect(stream.next()).rejects.toMatchObject({ code: "SLOW_CONSUMER" });
    await settle();
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
    expect(session.socket!.subscriptions).toBe(0);
    expect(leaves(core.published, session.client.id)).toBe(1);
  });

  it("leaveChannel completes every subscription the client holds there and publishes one LEAVE", async () => {
    const core = createCore();
    const who = client();
    const first = recorder();
    const second = recorder();
    const session = socketSession(who);
    await core.channels.open(session, "room", null, first);
    await core.channels.open(session, "room", null, second);
    await core.channels.joinChannel(session, "room", null);
    expect(await core.channels.leaveChannel(session, "room")).toBe(true);
    expect(first.ended).toEqual([{ error: undefined }]);
    expect(second.ended).toEqual([{ error: undefined }]);
    await core.channels.sendMessage(requestSession(), "room", { after: true }, null);
    await settle();
    expect(first.events.some((event) => event.action === "MESSAGE")).toBe(false);
    expect(leaves(core.published, who.id)).toBe(1);
    core.channels.closeSession(session);
    await settle();
    expect(leaves(core.published, who.id)).toBe(1);
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("a connection that closes while its join is under way leaves at once: one JOIN, one LEAVE, no member", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const core = createCore({}, [
      async (event) => {
        if (event.action === "JOIN") await gate;
        return { deliver: true, event };
      },
    ]);
    const session = socketSession();
    const joining = core.channels.joinChannel(session, "room", null);
    const subscribing = core.channels.open(session, "other", null, recorder());
    await settle();
    core.channels.closeSession(session);
    release();
    await joining;
    await subscribing.then(
      () => {
        throw new Error("a subscription opened on a closed connection");
      },
      () => undefined,
    );
    await settle();
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
    expect(leaves(core.published, session.client.id)).toBe(2);
  });

  it("closing a session ends its subscriptions even when no transport returns them", async () => {
    const core = createCore();
    const session = socketSession();
    await core.channels.open(session, "a", null, recorder());
    await core.channels.open(session, "b", null, recorder());
    core.channels.closeSession(session);
    await settle();
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
    expect(leaves(core.published, session.client.id)).toBe(2);
  });
});

describe("ChannelService gates", () => {
  it("removes subscribers who may no longer listen after a rules change, with the refusal and a LEAVE", async () => {
    const core = createCore();
    const anonymous = recorder();
    const signedIn = recorder();
    const anonymousSession = socketSession();
    await core.channels.open(anonymousSession, "room", null, anonymous);
    await core.channels.open(socketSession(client(true)), "room", null, signedIn);
    core.rules.set("room", { ...OPEN_RULES, anonymousClients: false });
    core.channels.enforceRules();
    expect(anonymous.ended).toHaveLength(1);
    expect(anonymous.ended[0]!.error).toMatchObject({ code: "UNAUTHENTICATED" });
    expect(signedIn.ended).toHaveLength(0);
    await settle();
    expect(leaves(core.published, anonymousSession.client.id)).toBe(1);
    core.rules.set("room", { ...OPEN_RULES, active: false });
    core.channels.enforceRules();
    expect(signedIn.ended[0]!.error).toMatchObject({ code: "FORBIDDEN" });
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("members-only channels: only members send, read history and presence; a refused join is no membership", async () => {
    const core = createCore({}, [
      async (event) => {
        if (event.action === "JOIN" && event.client.id.endsWith("-refused")) throw new AppError("TRIGGER_REJECTED", "not you");
        return { deliver: true, event };
      },
    ]);
    core.rules.set("club", { ...OPEN_RULES, membersOnly: true });
    const outsider = requestSession();
    const refused = socketSession({ id: "x-refused", authenticated: true, extras: null });
    const member = socketSession();
    await core.channels.open(member, "club", null, recorder());
    expect(await codeOf(core.channels.open(refused, "club", null, recorder()))).toBe("TRIGGER_REJECTED");
    for (const session of [outsider, refused]) {
      expect(await codeOf(core.channels.sendMessage(session, "club", { hi: 1 }, null))).toBe("FORBIDDEN");
      expect(await codeOf(core.channels.history(session, "club", 10))).toBe("FORBIDDEN");
      expect(await codeOf(core.channels.presence(session, "club"))).toBe("FORBIDDEN");
    }
    expect((await core.channels.sendMessage(member, "club", { hi: 1 }, null)).delivered).toBe(true);
    expect(await core.channels.history(member, "club", 10)).toHaveLength(1);
    expect((await core.channels.presence(member, "club")).map((c) => c.id)).toEqual([member.client.id]);
    const admin = requestSession(client(), { isAdmin: true });
    expect(await core.channels.history(admin, "club", 10)).toHaveLength(1);
    // A member who leaves is an outsider again.
    await core.channels.leaveChannel(member, "club");
    expect(await codeOf(core.channels.sendMessage(member, "club", { hi: 2 }, null))).toBe("FORBIDDEN");
  });

  it("refuses every operation once the session's token has expired, and ends a stream over HTTP when it does", async () => {
    const core = createCore();
    const expired = socketSession(client(true), { expiresAt: Date.now() - 1 });
    for (const attempt of [
      core.channels.sendMessage(expired, "room", {}, null),
      core.channels.joinChannel(expired, "room", null),
      core.channels.open(expired, "room", null, recorder()),
      core.channels.history(expired, "room", 1),
      core.channels.presence(expired, "room"),
    ]) {
      expect(await codeOf(attempt)).toBe("UNAUTHENTICATED");
    }
    const stream = recorder();
    await core.channels.open(requestSession(client(true), { expiresAt: Date.now() + 50 }), "room", null, stream);
    await eventually("the subscription ended at the token's expiry", () => stream.ended.length, {
      until: (ends) => ends > 0,
      timeoutMs: 5000,
    });
    expect(stream.ended).toHaveLength(1);
    expect(stream.ended[0]?.error).toMatchObject({ code: "UNAUTHENTICATED", message: "Token expired" });
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
  });

  it("limits anonymous sends and joins per address, across clients, and not authenticated ones", async () => {
    const core = createCore({ addressMessagesPerSecond: 3, addressJoinsPerSecond: 2 });
    const fromOneAddress = () => requestSession(client(), { address: "203.0.113.9" });
    const sends = await Promise.all(Array.from({ length: 5 }, () => codeOf(core.channels.sendMessage(fromOneAddress(), "room", {}, null))));
    expect(sends.filter((code) => code === "resolved")).toHaveLength(3);
    expect(sends.filter((code) => code === "RATE_LIMITED")).toHaveLength(2);
    const joins = await Promise.all(Array.from({ length: 4 }, () => codeOf(core.channels.joinChannel(fromOneAddress(), "room", null))));
    expect(joins.filter((code) => code === "RATE_LIMITED")).toHaveLength(2);
    const otherAddress = requestSession(client(), { address: "203.0.113.10" });
    expect(await codeOf(core.channels.sendMessage(otherAddress, "room", {}, null))).toBe("resolved");
    const signedIn = requestSession(client(true), { address: "203.0.113.9" });
    expect(await codeOf(core.channels.sendMessage(signedIn, "room", {}, null))).toBe("resolved");
  });

  it("limits joins per client", async () => {
    const core = createCore({ joinsPerSecond: 2 });
    const session = socketSession();
    const codes = await Promise.all(Array.from({ length: 4 }, (_, i) => codeOf(core.channels.joinChannel(session, `r${i}`, null))));
    expect(codes.filter((code) => code === "RATE_LIMITED")).toHaveLength(2);
  });

  it("checks join and subscribe options like payloads: depth and size, before anything is published", async () => {
    const core = createCore({ maxPayloadBytes: 1000 });
    let deep: unknown = {};
    for (let i = 0; i < 5000; i++) deep = { d: deep };
    const huge = { text: "x".repeat(2000) };
    for (const options of [deep, huge]) {
      const session = socketSession();
      const expected = options === deep ? "BAD_USER_INPUT" : "PAYLOAD_TOO_LARGE";
      expect(await codeOf(core.channels.joinChannel(session, "room", options))).toBe(expected);
      expect(await codeOf(core.channels.open(session, "room", options, recorder()))).toBe(expected);
      expect(await codeOf(core.channels.sendMessage(session, "room", {}, options))).toBe(expected);
    }
    expect(core.published).toHaveLength(0);
  });

  it("refuses text no database stores faithfully: lone surrogates and NUL, in values and keys", async () => {
    const core = createCore();
    const session = socketSession();
    for (const bad of [{ text: "a\ud800" }, ["\udfff\ud9ae"], { "k\u0000": 1 }, "nul\u0000"]) {
      expect(await codeOf(core.channels.sendMessage(session, "room", bad, null))).toBe("BAD_USER_INPUT");
      expect(await codeOf(core.channels.sendMessage(session, "room", {}, { note: bad }))).toBe("BAD_USER_INPUT");
      expect(await codeOf(core.channels.joinChannel(session, "room", { note: bad }))).toBe("BAD_USER_INPUT");
    }
    expect((await core.channels.sendMessage(session, "room", { text: "emoji \ud83d\ude00 fine" }, null)).delivered).toBe(true);
  });

  it("follows an anonymous HTTP client's JOIN with its LEAVE: it lasts one request", async () => {
    const core = createCore();
    const caller = requestSession();
    expect((await core.channels.joinChannel(caller, "room", null)).joined).toBe(true);
    expect(core.published.filter((event) => event.client.id === caller.client.id).map((event) => event.action)).toEqual(["JOIN", "LEAVE"]);
    expect(core.channels.stats().memberships).toBe(0);
    const signedIn = requestSession(client(true));
    await core.channels.joinChannel(signedIn, "room", null);
    expect(core.channels.stats().memberships).toBe(1);
  });

  it("never makes a join private: options.to only addresses messages", async () => {
    const core = createCore();
    const watcher = recorder();
    await core.channels.open(socketSession(), "room", null, watcher);
    await core.channels.joinChannel(socketSession(), "room", { to: "someone-else" });
    await settle();
    expect(watcher.events.filter((event) => event.action === "JOIN")).toHaveLength(2);
  });

  it("lets the admin watch unseen: no JOIN or LEAVE published, not in presence, its own JOIN to itself only", async () => {
    const core = createCore();
    await core.channels.sendMessage(requestSession(), "room", { n: 1 }, null);
    const member = socketSession();
    await core.channels.open(member, "room", null, recorder());
    const admin = socketSession(client(), { isAdmin: true });
    const watcher = recorder();
    const watching = await core.channels.open(admin, "room", { history: 5 }, watcher);
    expect(watcher.events.map((event) => event.action)).toEqual(["MESSAGE", "JOIN"]);
    expect(watcher.events[1]!.client.id).toBe(admin.client.id);
    expect((await core.channels.presence(admin, "room")).map((c) => c.id)).toEqual([member.client.id]);
    watching!.close();
    await settle();
    expect(core.published.filter((event) => event.client.id === admin.client.id)).toEqual([]);
    expect(core.channels.stats()).toMatchObject({ memberships: 1, listeners: 1 });
  });

  it("does not broadcast the options the server acts on itself", async () => {
    const core = createCore();
    await core.channels.open(socketSession(), "room", { history: 5, mood: "happy" }, recorder());
    await core.channels.open(socketSession(), "room", { history: 5 }, recorder());
    const joins = core.published.filter((event) => event.action === "JOIN");
    expect(joins.map((event) => event.commandOptions)).toEqual([{ mood: "happy" }, null]);
  });
});
