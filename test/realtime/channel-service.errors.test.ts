/**
 * What ChannelService tells a caller it refuses: the exact code, message and details of each refusal
 * (they reach clients as GraphQL errors), and the inputs at the edge of each rule that it accepts.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { AppError } from "../../src/errors.js";
import { MAX_JSON_DEPTH } from "../../src/validation.js";
import { client, createCore, OPEN_RULES, recorder, requestSession, settle, socketSession } from "./core.js";

/** The refusal `run` ends with, as a client would see it. */
async function refusal(run: () => Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await run();
  } catch (error) {
    if (error instanceof AppError) return { code: error.code, message: error.message, details: error.details };
    throw error;
  }
  throw new Error("not refused");
}

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("ChannelService refuses bad input with exact errors", () => {
  it("send options must be a JSON object, and options.to a client id", async () => {
    const core = createCore();
    const session = requestSession();
    for (const options of [[], "x", 3, true]) {
      expect(await refusal(() => core.channels.sendMessage(session, "room", 1, options))).toEqual({
        code: "BAD_USER_INPUT",
        message: "options must be a JSON object",
        details: { field: "options" },
      });
    }
    for (const to of [3, null, ["a"]]) {
      expect(await refusal(() => core.channels.sendMessage(session, "room", 1, { to }))).toEqual({
        code: "BAD_USER_INPUT",
        message: "options.to must be a client id",
        details: { field: "options.to" },
      });
    }
    for (const options of [null, undefined, {}, { to: "someone" }, { tag: 1 }]) {
      const result = await core.channels.sendMessage(session, "room", 1, options);
      expect(result.delivered).toBe(true);
      expect(result.event?.commandOptions).toEqual(options ?? null);
    }
  });

  it("JSON that nests too deep, holds unstorable text or is too large is refused, naming the field", async () => {
    const core = createCore({ maxPayloadBytes: 10 });
    const session = requestSession();
    expect(await refusal(() => core.channels.sendMessage(session, "room", nested(MAX_JSON_DEPTH + 1), null))).toEqual({
      code: "BAD_USER_INPUT",
      message: `The payload nests deeper than ${MAX_JSON_DEPTH} levels`,
      details: { field: "payload" },
    });
    expect(await refusal(() => core.channels.joinChannel(session, "room", nested(MAX_JSON_DEPTH + 1)))).toEqual({
      code: "BAD_USER_INPUT",
      message: `The options nest deeper than ${MAX_JSON_DEPTH} levels`,
      details: { field: "options" },
    });
    expect(
      await refusal(() => core.channels.open(socketSession(), "room", { history: 0, deep: nested(MAX_JSON_DEPTH) }, recorder())),
    ).toEqual({
      code: "BAD_USER_INPUT",
      message: `The options nest deeper than ${MAX_JSON_DEPTH} levels`,
      details: { field: "options" },
    });
    expect(await refusal(() => core.channels.sendMessage(session, "room", "a\u0000b", null))).toEqual({
      code: "BAD_USER_INPUT",
      message: "The payload must be Unicode text: no lone surrogates and no NUL characters",
      details: { field: "payload" },
    });
    expect(await refusal(() => core.channels.sendMessage(session, "room", 1, { t: "\ud800" }))).toEqual({
      code: "BAD_USER_INPUT",
      message: "The options must be Unicode text: no lone surrogates and no NUL characters",
      details: { field: "options" },
    });
    expect(await refusal(() => core.channels.sendMessage(session, "room", "123456789", null))).toEqual({
      code: "PAYLOAD_TOO_LARGE",
      message: "The payload is 11 bytes; the limit is 10",
      details: { field: "payload", limit: 10 },
    });
    expect(await refusal(() => core.channels.sendMessage(session, "room", 1, { to: "abcdef" }))).toEqual({
      code: "PAYLOAD_TOO_LARGE",
      message: "The options is 15 bytes; the limit is 10",
      details: { field: "options", limit: 10 },
    });
    // Exactly at the limit is allowed.
    expect((await core.channels.sendMessage(session, "room", "12345678", null)).delivered).toBe(true);
  });

  it("absent JSON takes no bytes: null and undefined options fit a limit smaller than the text 'null'", async () => {
    const core = createCore({ maxPayloadBytes: 3 });
    const session = requestSession();
    expect((await core.channels.sendMessage(session, "room", 1, null)).delivered).toBe(true);
    expect((await core.channels.sendMessage(session, "room", 1, undefined)).delivered).toBe(true);
    expect((await core.channels.sendMessage(session, "room", null, null)).delivered).toBe(true);
    expect((await core.channels.joinChannel(requestSession(client(true)), "room", undefined)).joined).toBe(true);
  });

  it("history must be asked with last 0 or more, and options.history a whole number", async () => {
    const core = createCore();
    const session = requestSession();
    expect(await refusal(() => core.channels.history(session, "room", -1))).toEqual({
      code: "BAD_USER_INPUT",
      message: "last must be 0 or more",
      details: { field: "last" },
    });
    expect(await core.channels.history(session, "room", 0)).toEqual([]);
    for (const history of [1.5, -1, "2", null]) {
      expect(await refusal(() => core.channels.open(socketSession(), "room", { history }, recorder()))).toEqual({
        code: "BAD_USER_INPUT",
        message: "options.history must be a whole number of messages",
        details: { field: "options.history" },
      });
    }
  });
});

describe("ChannelService join options", () => {
  it("JOIN events carry the join options members may see: without history, null when nothing is left", async () => {
    const core = createCore();
    const session = socketSession();
    expect((await core.channels.joinChannel(session, "a", {})).event?.commandOptions).toEqual({});
    expect((await core.channels.joinChannel(session, "b", { history: 2, tag: "x" })).event?.commandOptions).toEqual({ tag: "x" });
    expect((await core.channels.joinChannel(session, "c", { history: 2 })).event?.commandOptions).toBeNull();
    expect((await core.channels.joinChannel(session, "d", null)).event?.commandOptions).toBeNull();
    expect((await core.channels.joinChannel(session, "e", "plain")).event?.commandOptions).toBe("plain");
    const sink = recorder();
    expect(await core.channels.open(socketSession(), "f", null, sink)).not.toBeNull();
    const other = recorder();
    expect(await core.channels.open(socketSession(), "g", "plain", other)).not.toBeNull();
    await settle();
    expect(sink.events.map((e) => [e.action, e.commandOptions])).toEqual([["JOIN", null]]);
    expect(other.events.map((e) => [e.action, e.commandOptions])).toEqual([["JOIN", "plain"]]);
  });
});

describe("ChannelService gate refusals", () => {
  it("an expired token is refused from the very millisecond it expires", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_000_000);
    const core = createCore();
    expect(await refusal(() => core.channels.sendMessage(requestSession(client(), { expiresAt: 1_000_000 }), "room", 1, null))).toEqual({
      code: "UNAUTHENTICATED",
      message: "Token expired",
      details: {},
    });
    expect((await core.channels.sendMessage(requestSession(client(), { expiresAt: 1_000_001 }), "room", 1, null)).delivered).toBe(true);
  });

  it("each rule refuses with its own code, message and the channel", async () => {
    const core = createCore();
    core.rules.set("closed", { ...OPEN_RULES, active: false });
    core.rules.set("signed-in", { ...OPEN_RULES, anonymousClients: false });
    core.rules.set("announcements", { ...OPEN_RULES, messaging: "NOBODY" });
    core.rules.set("verified", { ...OPEN_RULES, messaging: "AUTHENTICATED" });
    core.rules.set("quiet", { ...OPEN_RULES, presence: false });
    core.rules.set("club", { ...OPEN_RULES, membersOnly: true });
    const anonymous = requestSession();
    expect(await refusal(() => core.channels.joinChannel(anonymous, "closed", null))).toEqual({
      code: "FORBIDDEN",
      message: "Channel closed is inactive",
      details: { channel: "closed" },
    });
    expect(await refusal(() => core.channels.history(anonymous, "signed-in", 1))).toEqual({
      code: "UNAUTHENTICATED",
      message: "Channel signed-in is for authenticated clients",
      details: { channel: "signed-in" },
    });
    expect(await refusal(() => core.channels.sendMessage(requestSession(client(true)), "announcements", 1, null))).toEqual({
      code: "FORBIDDEN",
      message: "Only the admin may send to channel announcements",
      details: { channel: "announcements" },
    });
    expect(await refusal(() => core.channels.sendMessage(anonymous, "verified", 1, null))).toEqual({
      code: "UNAUTHENTICATED",
      message: "Only authenticated clients may send to channel verified",
      details: { channel: "verified" },
    });
    expect(await refusal(() => core.channels.presence(anonymous, "quiet"))).toEqual({
      code: "FORBIDDEN",
      message: "Presence is off for channel quiet",
      details: { channel: "quiet" },
    });
    const outsider = requestSession(client(true));
    expect(await refusal(() => core.channels.sendMessage(outsider, "club", 1, null))).toEqual({
      code: "FORBIDDEN",
      message: "Only members of channel club may send to it",
      details: { channel: "club" },
    });
    expect(await refusal(() => core.channels.history(outsider, "club", 1))).toEqual({
      code: "FORBIDDEN",
      message: "Only members of channel club may read its history",
      details: { channel: "club" },
    });
    expect(await refusal(() => core.channels.presence(outsider, "club"))).toEqual({
      code: "FORBIDDEN",
      message: "Only members of channel club may see who is in it",
      details: { channel: "club" },
    });
  });

  it("rate limits name what was limited and the rate, per client and per address of anonymous clients", async () => {
    const core = createCore({ messagesPerSecond: 1, joinsPerSecond: 1, addressMessagesPerSecond: 2, addressJoinsPerSecond: 2 });
    const signedIn = requestSession(client(true));
    await core.channels.sendMessage(signedIn, "room", 1, null);
    expect(await refusal(() => core.channels.sendMessage(signedIn, "room", 1, null))).toEqual({
      code: "RATE_LIMITED",
      message: "Too many messages: at most 1 per second",
      details: {},
    });
    await core.channels.joinChannel(signedIn, "room", null);
    expect(await refusal(() => core.channels.joinChannel(signedIn, "room", null))).toEqual({
      code: "RATE_LIMITED",
      message: "Too many joins: at most 1 per second",
      details: {},
    });
    const [first, second, third] = [requestSession(), requestSession(), requestSession()];
    await core.channels.sendMessage(first, "room", 1, null);
    await core.channels.sendMessage(second, "room", 1, null);
    expect(await refusal(() => core.channels.sendMessage(third, "room", 1, null))).toEqual({
      code: "RATE_LIMITED",
      message: "Too many messages from anonymous clients at your address: at most 2 per second",
      details: {},
    });
    await core.channels.joinChannel(first, "room", null);
    await core.channels.joinChannel(second, "room", null);
    expect(await refusal(() => core.channels.joinChannel(third, "room", null))).toEqual({
      code: "RATE_LIMITED",
      message: "Too many joins from anonymous clients at your address: at most 2 per second",
      details: {},
    });
  });

  it("reading and listening spend no joins: a subscription takes one join, history and presence none", async () => {
    const core = createCore({ joinsPerSecond: 1 });
    const session = socketSession(client(true));
    const sink = recorder();
    expect(await core.channels.open(session, "room", null, sink)).not.toBeNull();
    expect(sink.ended).toEqual([]);
    for (let i = 0; i < 3; i++) {
      await core.channels.history(session, "room", 5);
      await core.channels.presence(session, "room");
    }
    core.channels.enforceRules(); // re-checks every subscription with the listen gate
    expect(sink.ended).toEqual([]);
    expect(await core.channels.open(socketSession(client(true)), "room", null, recorder())).not.toBeNull(); // another client's joins
    expect(await refusal(() => core.channels.open(session, "other", null, recorder()))).toEqual({
      code: "RATE_LIMITED",
      message: "Too many joins: at most 1 per second",
      details: {},
    });
  });
});

describe("ChannelService slot and channel limits", () => {
  it("refuses a subscription beyond the socket's slots, and any on a closed connection", async () => {
    const core = createCore({ maxSubscriptionsPerSocket: 1 });
    const session = socketSession();
    await core.channels.open(session, "a", null, recorder());
    expect(await refusal(() => core.channels.open(session, "b", null, recorder()))).toEqual({
      code: "LIMIT_EXCEEDED",
      message: "Too many subscriptions: at most 1 per connection",
      details: {},
    });
    core.channels.closeSession(session);
    expect(await refusal(() => core.channels.open(session, "c", null, recorder()))).toEqual({
      code: "FORBIDDEN",
      message: "The connection has closed",
      details: {},
    });
  });

  it("refuses a subscription whose connection closes while its join is under way, and leaves no membership", async () => {
    const core = createCore();
    const session = socketSession();
    const opening = refusal(() => core.channels.open(session, "room", null, recorder()));
    core.channels.closeSession(session);
    expect(await opening).toEqual({ code: "FORBIDDEN", message: "The connection has closed", details: {} });
    expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
    expect(session.socket!.subscriptions).toBe(0);
  });

  it("refuses a channel beyond maxChannelsPerClient, naming the limit", async () => {
    const core = createCore({ maxChannelsPerClient: 1 });
    const session = socketSession();
    await core.channels.joinChannel(session, "a", null);
    expect(await refusal(() => core.channels.joinChannel(session, "b", null))).toEqual({
      code: "LIMIT_EXCEEDED",
      message: "Too many channels: a client may be in at most 1",
      details: {},
    });
  });

  it("the admin's subscriptions take no place among its channels, even opened at once", async () => {
    const core = createCore({ maxChannelsPerClient: 1 });
    const admin = socketSession(client(true), { isAdmin: true });
    const opened = await Promise.all(["a", "b", "c"].map((channel) => core.channels.open(admin, channel, null, recorder())));
    expect(opened.every((subscription) => subscription !== null)).toBe(true);
    expect(core.channels.stats().memberships).toBe(0);
  });
});
