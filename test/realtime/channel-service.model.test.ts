/**
 * A model of channel membership run against the real core (in-process, in-memory bus): random
 * sequences of subscribe, unsubscribe, bursts of subscribes, joinChannel, leaveChannel, send, rules
 * changes and closed connections (sequences of about 15 steps, up to 40). After every step the core
 * must agree with the model: who is a member (presence), how many listeners are fed, how many
 * subscriptions each connection holds, how many LEAVEs each client has caused, which operations were
 * refused, and no subscription receives anything after it ended. A send reaches every live
 * subscriber of its channel exactly once, and nobody else.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ChannelSubscription } from "../../src/realtime/channels.js";
import type { RealtimeClient, Session } from "../../src/realtime/types.js";
import { assertProperty } from "../helpers/property.js";
import { type Core, createCore, OPEN_RULES, recorder, requestSession, settle, socketSession } from "./core.js";

const CHANNELS = ["a", "b", "c"] as const;
type Channel = (typeof CHANNELS)[number];
const MAX_SUBSCRIPTIONS = 3;
const MAX_CHANNELS = 2;

/** Two connections of one authenticated client, and one anonymous connection. */
const CLIENTS: RealtimeClient[] = [
  { id: "signed-in", authenticated: true, extras: null },
  { id: "anonymous", authenticated: false, extras: null },
];
const SESSION_CLIENTS = [0, 0, 1];

interface Model {
  readonly rules: Record<Channel, { anonymousClients: boolean; membersOnly: boolean }>;
  /** Open subscriptions: session and channel, by handle. */
  readonly subscriptions: Map<number, { session: number; channel: Channel }>;
  /** joinChannel memberships per session. */
  readonly joins: Map<number, Channel[]>;
  readonly closed: Set<number>;
  /** LEAVEs each client should have caused on each channel. */
  readonly leaves: Map<string, number>;
  nextHandle: number;
  /** Messages sent so far; each send's payload carries its number. */
  sent: number;
}

interface Real {
  readonly core: Core;
  readonly sessions: Session[];
  readonly handles: Map<number, { subscription: ChannelSubscription; sink: ReturnType<typeof recorder> }>;
  readonly sinks: (ReturnType<typeof recorder> & { afterEnd: number })[];
}

const clientOf = (session: number) => CLIENTS[SESSION_CLIENTS[session]!]!;

/** How many joins (subscriptions and joinChannel) a client holds on a channel. */
function joinsOf(model: Model, client: RealtimeClient, channel: Channel): number {
  let count = 0;
  for (const subscription of model.subscriptions.values())
    if (clientOf(subscription.session) === client && subscription.channel === channel) count++;
  for (const [session, channels] of model.joins) if (clientOf(session) === client) count += channels.filter((c) => c === channel).length;
  return count;
}

function membersOf(model: Model, channel: Channel): string[] {
  return CLIENTS.filter((client) => joinsOf(model, client, channel) > 0)
    .map((client) => client.id)
    .sort();
}

function channelsOf(model: Model, client: RealtimeClient): number {
  return CHANNELS.filter((channel) => joinsOf(model, client, channel) > 0).length;
}

/** Applies a change to the model, counting a LEAVE for every client that stops being a member. */
function changeMembership(model: Model, change: () => void): void {
  const before = CHANNELS.map((channel) => membersOf(model, channel));
  change();
  CHANNELS.forEach((channel, i) => {
    const now = membersOf(model, channel);
    for (const id of before[i]!)
      if (!now.includes(id)) model.leaves.set(`${id}|${channel}`, (model.leaves.get(`${id}|${channel}`) ?? 0) + 1);
  });
}

const mayListen = (model: Model, session: number, channel: Channel) =>
  clientOf(session).authenticated || model.rules[channel].anonymousClients;

/** Whether the model lets `session` open a subscription to `channel` now; applies it if so. */
function modelOpen(model: Model, session: number, channel: Channel): number | null {
  if (model.closed.has(session) || !mayListen(model, session, channel)) return null;
  const open = [...model.subscriptions.values()].filter((s) => s.session === session).length;
  const client = clientOf(session);
  if (open >= MAX_SUBSCRIPTIONS) return null;
  if (joinsOf(model, client, channel) === 0 && channelsOf(model, client) >= MAX_CHANNELS) return null;
  const handle = model.nextHandle++;
  model.subscriptions.set(handle, { session, channel });
  return handle;
}

async function expectAgreement(model: Model, real: Real): Promise<void> {
  await settle();
  const admin = requestSession(CLIENTS[0], { isAdmin: true });
  for (const channel of CHANNELS) {
    const present = (await real.core.channels.presence(admin, channel)).map((client) => client.id).sort();
    expect(present, `members of ${channel}`).toEqual(membersOf(model, channel));
  }
  expect(real.core.channels.stats().listeners).toBe(model.subscriptions.size);
  for (const client of CLIENTS) {
    for (const channel of CHANNELS) {
      const seen = real.core.published.filter((e) => e.action === "LEAVE" && e.client.id === client.id && e.channel === channel).length;
      expect(seen, `LEAVEs of ${client.id} on ${channel}`).toBe(model.leaves.get(`${client.id}|${channel}`) ?? 0);
    }
  }
  for (const sink of real.sinks) expect(sink.afterEnd, "an event after the subscription ended").toBe(0);
  real.sessions.forEach((session, i) => {
    const open = [...model.subscriptions.values()].filter((s) => s.session === i).length;
    expect(session.socket?.subscriptions, `subscriptions on connection ${i}`).toBe(open);
  });
}

type Command = fc.AsyncCommand<Model, Real>;

const session = fc.integer({ min: 0, max: SESSION_CLIENTS.length - 1 });
const channel = fc.constantFrom(...CHANNELS);

function trackedSink(real: Real): ReturnType<typeof recorder> & { afterEnd: number } {
  const sink = Object.assign(recorder(), { afterEnd: 0 });
  const event = sink.event;
  sink.event = (e) => {
    if (sink.ended.length > 0) sink.afterEnd++;
    event(e);
  };
  real.sinks.push(sink);
  return sink;
}

const commands: fc.Arbitrary<Command>[] = [
  fc.record({ session, channel, count: fc.integer({ min: 1, max: 5 }) }).map(({ session, channel, count }) => ({
    check: () => true,
    toString: () => `burst(${session}, ${channel}, ${count})`,
    run: async (model: Model, real: Real) => {
      const expected = Array.from({ length: count }, () => modelOpen(model, session, channel));
      const sinks = expected.map(() => trackedSink(real));
      const outcomes = await Promise.allSettled(sinks.map((sink) => real.core.channels.open(real.sessions[session]!, channel, null, sink)));
      outcomes.forEach((outcome, i) => {
        const handle = expected[i] ?? null;
        expect(outcome.status, `subscribe ${i} of the burst`).toBe(handle === null ? "rejected" : "fulfilled");
        if (handle !== null && outcome.status === "fulfilled") real.handles.set(handle, { subscription: outcome.value!, sink: sinks[i]! });
      });
      await expectAgreement(model, real);
    },
  })),
  fc.nat().map((pick) => ({
    check: (model: Model) => model.subscriptions.size > 0,
    toString: () => `unsubscribe(#${pick})`,
    run: async (model: Model, real: Real) => {
      const handles = [...model.subscriptions.keys()];
      const handle = handles[pick % handles.length]!;
      changeMembership(model, () => model.subscriptions.delete(handle));
      real.handles.get(handle)!.subscription.close();
      await expectAgreement(model, real);
    },
  })),
  fc.record({ session, channel }).map(({ session, channel }) => ({
    check: (model: Model) => !model.closed.has(session),
    toString: () => `joinChannel(${session}, ${channel})`,
    run: async (model: Model, real: Real) => {
      const client = clientOf(session);
      const allowed =
        mayListen(model, session, channel) && (joinsOf(model, client, channel) > 0 || channelsOf(model, client) < MAX_CHANNELS);
      const outcome = await real.core.channels.joinChannel(real.sessions[session]!, channel, null).then(
        () => "joined",
        () => "refused",
      );
      expect(outcome).toBe(allowed ? "joined" : "refused");
      if (allowed) model.joins.set(session, [...(model.joins.get(session) ?? []), channel]);
      await expectAgreement(model, real);
    },
  })),
  fc.record({ session, channel }).map(({ session, channel }) => ({
    check: () => true,
    toString: () => `leaveChannel(${session}, ${channel})`,
    run: async (model: Model, real: Real) => {
      const client = clientOf(session);
      const wasMember = joinsOf(model, client, channel) > 0;
      changeMembership(model, () => {
        for (const [handle, s] of model.subscriptions)
          if (clientOf(s.session) === client && s.channel === channel) model.subscriptions.delete(handle);
        for (const [other, channels] of model.joins)
          if (clientOf(other) === client)
            model.joins.set(
              other,
              channels.filter((c) => c !== channel),
            );
      });
      expect(await real.core.channels.leaveChannel(real.sessions[session]!, channel)).toBe(wasMember);
      await expectAgreement(model, real);
    },
  })),
  fc.record({ session, channel }).map(({ session, channel }) => ({
    check: () => true,
    toString: () => `send(${session}, ${channel})`,
    run: async (model: Model, real: Real) => {
      const allowed =
        mayListen(model, session, channel) && (!model.rules[channel].membersOnly || joinsOf(model, clientOf(session), channel) > 0);
      const payload = { n: ++model.sent };
      const before = new Map([...real.handles].map(([handle, { sink }]) => [handle, sink.events.length]));
      const outcome = await real.core.channels.sendMessage(real.sessions[session]!, channel, payload, null).then(
        () => "sent",
        () => "refused",
      );
      expect(outcome).toBe(allowed ? "sent" : "refused");
      await expectAgreement(model, real);
      // Every live subscriber of the channel receives exactly this message; nobody else receives anything.
      for (const [handle, { sink }] of real.handles) {
        const received = sink.events.slice(before.get(handle) ?? 0);
        const live = model.subscriptions.get(handle);
        if (allowed && live?.channel === channel) {
          expect(received, `what subscription #${handle} received`).toHaveLength(1);
          expect(received[0], `what subscription #${handle} received`).toMatchObject({
            action: "MESSAGE",
            channel,
            payload,
            client: { id: clientOf(session).id },
          });
        } else expect(received, `what subscription #${handle} received`).toEqual([]);
      }
    },
  })),
  fc.record({ channel, anonymousClients: fc.boolean(), membersOnly: fc.boolean() }).map(({ channel, anonymousClients, membersOnly }) => ({
    check: () => true,
    toString: () => `rules(${channel}, anonymousClients: ${anonymousClients}, membersOnly: ${membersOnly})`,
    run: async (model: Model, real: Real) => {
      changeMembership(model, () => {
        model.rules[channel] = { anonymousClients, membersOnly };
        // Subscribers and joinChannel members who may no longer listen are removed.
        for (const [handle, s] of model.subscriptions)
          if (s.channel === channel && !mayListen(model, s.session, channel)) model.subscriptions.delete(handle);
        for (const [other, channels] of model.joins)
          if (!mayListen(model, other, channel))
            model.joins.set(
              other,
              channels.filter((c) => c !== channel),
            );
      });
      real.core.rules.set(channel, { ...OPEN_RULES, anonymousClients, membersOnly });
      real.core.channels.enforceRules();
      await expectAgreement(model, real);
    },
  })),
  session.map((session) => ({
    check: (model: Model) => !model.closed.has(session),
    toString: () => `close(${session})`,
    run: async (model: Model, real: Real) => {
      changeMembership(model, () => {
        model.closed.add(session);
        for (const [handle, s] of model.subscriptions) if (s.session === session) model.subscriptions.delete(handle);
        model.joins.delete(session);
      });
      real.core.channels.closeSession(real.sessions[session]!);
      await expectAgreement(model, real);
    },
  })),
];

describe("ChannelService against a model of membership", () => {
  it("agrees with the model after every step of any sequence of operations", async () => {
    await assertProperty(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: "+1" }), async (sequence) => {
        const core = createCore({ maxSubscriptionsPerSocket: MAX_SUBSCRIPTIONS, maxChannelsPerClient: MAX_CHANNELS });
        const real: Real = { core, sessions: SESSION_CLIENTS.map((i) => socketSession(CLIENTS[i]!)), handles: new Map(), sinks: [] };
        const model: Model = {
          rules: {
            a: { anonymousClients: true, membersOnly: false },
            b: { anonymousClients: true, membersOnly: false },
            c: { anonymousClients: true, membersOnly: false },
          },
          subscriptions: new Map(),
          joins: new Map(),
          closed: new Set(),
          leaves: new Map(),
          nextHandle: 0,
          sent: 0,
        };
        await fc.asyncModelRun(() => ({ model, real }), sequence);
        // Whatever happened, closing every connection leaves nothing behind.
        for (const session of real.sessions) core.channels.closeSession(session);
        await settle();
        expect(core.channels.stats()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
      }),
      { numRuns: 150 },
    );
  });
});
