import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Logger } from "../../src/logger.js";
import { createLogger } from "../../src/logger.js";
import { type ChannelBus, createMemoryBus } from "../../src/realtime/bus.js";
import { ChannelFanout, type ChannelListener } from "../../src/realtime/fanout.js";
import type { RealtimeObserver } from "../../src/realtime/observer.js";
import { type ChannelEvent, commandOf, type RealtimeAction } from "../../src/realtime/types.js";
import { assertProperty } from "../helpers/property.js";
import { settle } from "./core.js";

const CHANNEL = "fanout:batches";
const CLIENT_IDS = ["a", "b", "c", "d"];

function event(n: number, action: RealtimeAction, from: string, to: string | null): ChannelEvent {
  return {
    id: `event-${n}`,
    action,
    command: commandOf[action],
    channel: CHANNEL,
    payload: { n },
    commandOptions: to === null ? null : { to },
    client: { id: from, authenticated: false, extras: null },
    createdAt: new Date(Date.UTC(2026, 0, 1) + n).toISOString(),
    seq: null,
  };
}

/** A listener recording what it receives; `batched` ones take batches through `deliverAll`. */
function recordingListener(
  clientId: string,
  batched: boolean,
): ChannelListener & { received: ChannelEvent[]; calls: number; emptyBatches: number } {
  const received: ChannelEvent[] = [];
  const listener: ChannelListener & { received: ChannelEvent[]; calls: number; emptyBatches: number } = {
    clientId,
    received,
    calls: 0,
    emptyBatches: 0,
    deliver: (e) => {
      listener.calls += 1;
      received.push(e);
    },
  };
  if (batched) {
    listener.deliverAll = (events) => {
      // An assertion thrown here would be caught and logged by the fan-out: record instead.
      if (events.length === 0) listener.emptyBatches += 1;
      listener.calls += 1;
      received.push(...events);
    };
  }
  return listener;
}

/** Records each delivery the fan-out reports: [action, listeners reached, createdAt]. */
function countingObserver(): RealtimeObserver & { deliveries: number; calls: [RealtimeAction, number, string][] } {
  const observer = {
    deliveries: 0,
    calls: [] as [RealtimeAction, number, string][],
    received: () => {},
    delivered: (action: RealtimeAction, listeners: number, createdAt: string) => {
      observer.deliveries += listeners;
      observer.calls.push([action, listeners, createdAt]);
    },
    notPublished: () => {},
    slowConsumerDropped: () => {},
  };
  return observer;
}

/** A logger that records what is logged at error level (the fan-out logs nothing else). */
function recordingLogger(): Logger & { errors: { fields: { err: unknown; channel: string }; message: string }[] } {
  const errors: { fields: { err: unknown; channel: string }; message: string }[] = [];
  return { errors, error: (fields: { err: unknown; channel: string }, message: string) => errors.push({ fields, message }) } as never;
}

/** The in-memory bus, counting the subscriptions open on it per channel. */
function countingBus(): ChannelBus & { open: Map<string, number> } {
  const inner = createMemoryBus();
  const open = new Map<string, number>();
  return {
    open,
    publish: (channel, e) => inner.publish(channel, e),
    subscribe(channel, listener) {
      open.set(channel, (open.get(channel) ?? 0) + 1);
      const stop = inner.subscribe(channel, listener);
      let stopped = false;
      return () => {
        if (!stopped) open.set(channel, open.get(channel)! - 1);
        stopped = true;
        stop();
      };
    },
  };
}

const step = fc.record({
  action: fc.constantFrom<RealtimeAction>("JOIN", "LEAVE", "MESSAGE", "MESSAGE"),
  from: fc.constantFrom(...CLIENT_IDS),
  to: fc.option(fc.constantFrom(...CLIENT_IDS, "nobody-here"), { freq: 3 }),
  /** Let the event loop turn (batches flush) before this event is published. */
  pause: fc.boolean(),
});

describe("the in-memory bus", () => {
  it("hands each event, after the publisher's synchronous code, to the listeners subscribed when it was published, in order", async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant("publish" as const), fc.constant("subscribe" as const), fc.constant("unsubscribe" as const)), {
          maxLength: 40,
        }),
        async (operations) => {
          const bus = createMemoryBus();
          const received: number[][] = [];
          const expected: number[][] = [];
          const live: { index: number; stop: () => void }[] = [];
          for (const [n, operation] of operations.entries()) {
            if (operation === "subscribe") {
              const index = received.length;
              received.push([]);
              expected.push([]);
              live.push({ index, stop: bus.subscribe(CHANNEL, (e) => received[index]!.push((e.payload as { n: number }).n)) });
            } else if (operation === "unsubscribe" && live.length > 0) {
              live.shift()!.stop();
            } else if (operation === "publish") {
              bus.publish(CHANNEL, event(n, "MESSAGE", "a", null));
              bus.publish("another channel", event(n, "MESSAGE", "a", null));
              for (const { index } of live) expected[index]!.push(n);
              expect(received.flat()).not.toContain(n); // not during publish
            }
          }
          await settle();
          expect(received).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("the in-memory bus, unsubscribing", () => {
  it("an unsubscribed listener stops receiving while the channel's other listeners go on; a second unsubscribe changes nothing", async () => {
    const bus = createMemoryBus();
    const first: string[] = [];
    const second: string[] = [];
    const stopFirst = bus.subscribe(CHANNEL, (e) => first.push(e.id));
    const stopSecond = bus.subscribe(CHANNEL, (e) => second.push(e.id));
    expect(bus.publish(CHANNEL, event(1, "MESSAGE", "a", null))).toBeUndefined();
    stopFirst();
    bus.publish(CHANNEL, event(2, "MESSAGE", "a", null));
    await settle();
    expect(first).toEqual(["event-1"]);
    expect(second).toEqual(["event-1", "event-2"]);
    stopFirst();
    bus.publish(CHANNEL, event(3, "MESSAGE", "a", null));
    await settle();
    expect(second).toEqual(["event-1", "event-2", "event-3"]);
    stopSecond();
    const third: string[] = [];
    const stopThird = bus.subscribe(CHANNEL, (e) => third.push(e.id));
    stopSecond(); // a stale unsubscribe must not cut off the channel's new listener
    stopFirst();
    bus.publish(CHANNEL, event(4, "MESSAGE", "a", null));
    await settle();
    expect(third).toEqual(["event-4"]);
    expect(second).toEqual(["event-1", "event-2", "event-3"]);
    stopThird();
    expect(bus.publish(CHANNEL, event(5, "MESSAGE", "a", null))).toBeUndefined();
    await settle();
    expect(third).toEqual(["event-4"]);
  });

  it("the same function subscribed twice on a channel is one listener: it receives each event once", async () => {
    const bus = createMemoryBus();
    const received: string[] = [];
    const listener = (e: ChannelEvent) => received.push(e.id);
    const stopOne = bus.subscribe(CHANNEL, listener);
    const stopTwo = bus.subscribe(CHANNEL, listener);
    bus.publish(CHANNEL, event(1, "MESSAGE", "a", null));
    await settle();
    expect(received).toEqual(["event-1"]);
    stopOne();
    bus.publish(CHANNEL, event(2, "MESSAGE", "a", null));
    stopTwo();
    await settle();
    expect(received).toEqual(["event-1"]);
  });
});

describe("channel fan-out batches JOIN and LEAVE events", () => {
  it("every listener receives exactly the events it may see, in publish order, batched or not", async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        async (steps, batched) => {
          const bus = createMemoryBus();
          const observer = countingObserver();
          const fanout = new ChannelFanout(bus, createLogger("silent")).observe(observer);
          const listeners = CLIENT_IDS.map((id, i) => recordingListener(id, batched[i]!));
          for (const listener of listeners) fanout.add(CHANNEL, listener);

          const published = steps.map((s, n) => event(n, s.action, s.from, s.action === "MESSAGE" ? s.to : null));
          for (const [n, s] of steps.entries()) {
            if (s.pause) await new Promise((resolve) => setImmediate(resolve));
            bus.publish(CHANNEL, published[n]!);
          }
          await settle();

          let expectedDeliveries = 0;
          const maySee = (e: ChannelEvent, clientId: string) => {
            const to = (e.commandOptions as { to?: string } | null)?.to;
            return to === undefined || to === clientId;
          };
          for (const listener of listeners) {
            const visible = published.filter((e) => maySee(e, listener.clientId));
            expect(listener.received.map((e) => e.id)).toEqual(visible.map((e) => e.id));
            expect(listener.emptyBatches).toBe(0);
            expectedDeliveries += visible.length;
          }
          expect(observer.deliveries).toBe(expectedDeliveries);
          // One report per event that reached anyone, in publish order, with its own action, count and time.
          const reports = published.flatMap((e): [RealtimeAction, number, string][] => {
            const reached = listeners.filter((listener) => maySee(e, listener.clientId)).length;
            return reached > 0 ? [[e.action, reached, e.createdAt]] : [];
          });
          expect(observer.calls).toEqual(reports);
          for (const listener of listeners) fanout.remove(CHANNEL, listener);
          expect(fanout.counts()).toEqual({ channels: 0, listeners: 0 });
        },
      ),
      { numRuns: 150 },
    );
  });

  it("JOINs published in one turn of the event loop reach a batching listener in one call", async () => {
    const bus = createMemoryBus();
    const fanout = new ChannelFanout(bus, createLogger("silent"));
    const batching = recordingListener("a", true);
    const single = recordingListener("b", false);
    fanout.add(CHANNEL, batching);
    fanout.add(CHANNEL, single);
    const joins = Array.from({ length: 50 }, (_, n) => event(n, "JOIN", `joiner-${n}`, null));
    for (const join of joins) bus.publish(CHANNEL, join);
    await settle();
    expect(batching.received).toEqual(joins);
    expect(batching.calls).toBe(1);
    expect(single.received).toEqual(joins);
    expect(single.calls).toBe(50);
    fanout.remove(CHANNEL, batching);
    fanout.remove(CHANNEL, single);
  });
});

describe("channel fan-out bookkeeping and failures", () => {
  it("subscribes the bus once per channel and unsubscribes it with the channel's last listener", async () => {
    const bus = countingBus();
    const fanout = new ChannelFanout(bus, createLogger("silent"));
    const [a, b, c] = [recordingListener("a", false), recordingListener("b", true), recordingListener("c", false)];
    fanout.add(CHANNEL, a);
    fanout.add(CHANNEL, b);
    fanout.add("other", c);
    expect(bus.open).toEqual(
      new Map([
        [CHANNEL, 1],
        ["other", 1],
      ]),
    );
    expect(fanout.counts()).toEqual({ channels: 2, listeners: 3 });
    expect(fanout.listenerCount(CHANNEL)).toBe(2);
    expect(fanout.listenerCount("other")).toBe(1);
    expect(fanout.listenerCount("nowhere")).toBe(0);

    fanout.remove(CHANNEL, c); // not a listener of this channel: nothing changes
    fanout.remove("nowhere", a);
    expect(fanout.counts()).toEqual({ channels: 2, listeners: 3 });
    fanout.remove(CHANNEL, a);
    expect(bus.open.get(CHANNEL)).toBe(1);
    expect(fanout.listenerCount(CHANNEL)).toBe(1);
    bus.publish(CHANNEL, event(1, "MESSAGE", "x", null));
    await settle();
    expect(a.received).toEqual([]);
    expect(b.received.map((e) => e.id)).toEqual(["event-1"]);

    fanout.remove(CHANNEL, b);
    expect(bus.open.get(CHANNEL)).toBe(0);
    expect(fanout.counts()).toEqual({ channels: 1, listeners: 1 });
    expect(fanout.listenerCount(CHANNEL)).toBe(0);
    fanout.add(CHANNEL, a); // a channel listened to again subscribes again
    expect(bus.open.get(CHANNEL)).toBe(1);
    bus.publish(CHANNEL, event(2, "MESSAGE", "x", null));
    await settle();
    expect(a.received.map((e) => e.id)).toEqual(["event-2"]);
    expect(b.received.map((e) => e.id)).toEqual(["event-1"]);
  });

  it("counts listeners by transport, those without one as HTTP", () => {
    const fanout = new ChannelFanout(createMemoryBus(), createLogger("silent"));
    expect(fanout.listenersByTransport()).toEqual({ ws: 0, http: 0 });
    fanout.add(CHANNEL, { ...recordingListener("a", false), transport: "ws" });
    fanout.add(CHANNEL, { ...recordingListener("b", false), transport: "ws" });
    fanout.add("other", { ...recordingListener("c", false), transport: "ws" });
    fanout.add(CHANNEL, { ...recordingListener("d", false), transport: "http" });
    fanout.add("other", recordingListener("e", false));
    expect(fanout.listenersByTransport()).toEqual({ ws: 3, http: 2 });
  });

  it("hands a message on in the bus's own delivery, without waiting for the turn's batches; a JOIN waits for them", async () => {
    const bus = createMemoryBus();
    const fanout = new ChannelFanout(bus, createLogger("silent"));
    const listener = recordingListener("a", false);
    fanout.add(CHANNEL, listener);
    bus.publish(CHANNEL, event(1, "MESSAGE", "x", null));
    await Promise.resolve(); // the in-memory bus delivers in a microtask
    expect(listener.received.map((e) => e.id)).toEqual(["event-1"]);
    bus.publish(CHANNEL, event(2, "JOIN", "x", null));
    await Promise.resolve();
    expect(listener.received.map((e) => e.id)).toEqual(["event-1"]);
    await settle();
    expect(listener.received.map((e) => e.id)).toEqual(["event-1", "event-2"]);
  });

  it("hands a lone JOIN to a batching listener through deliver, not as a batch of one", async () => {
    const bus = createMemoryBus();
    const fanout = new ChannelFanout(bus, createLogger("silent"));
    const batching = recordingListener("a", true);
    let batches = 0;
    const deliverAll = batching.deliverAll!;
    batching.deliverAll = (events) => {
      batches += 1;
      deliverAll(events);
    };
    fanout.add(CHANNEL, batching);
    const join = event(1, "JOIN", "b", null);
    bus.publish(CHANNEL, join);
    await settle();
    expect(batching.received).toEqual([join]);
    expect(batches).toBe(0);
  });

  it("a listener that throws is logged and the other listeners still receive every event, batched or not", async () => {
    const bus = createMemoryBus();
    const logger = recordingLogger();
    const fanout = new ChannelFanout(bus, logger);
    const failure = new Error("listener broke");
    const throwing: ChannelListener = {
      clientId: "a",
      deliver: () => {
        throw failure;
      },
      deliverAll: () => {
        throw failure;
      },
    };
    const after = recordingListener("b", true);
    fanout.add(CHANNEL, throwing);
    fanout.add(CHANNEL, after);
    const message = event(1, "MESSAGE", "x", null);
    bus.publish(CHANNEL, message);
    await settle();
    expect(after.received).toEqual([message]);
    expect(logger.errors).toEqual([{ fields: { err: failure, channel: CHANNEL }, message: "a channel listener failed" }]);

    const joins = [event(2, "JOIN", "x", null), event(3, "JOIN", "y", null)];
    for (const join of joins) bus.publish(CHANNEL, join);
    await settle();
    expect(after.received).toEqual([message, ...joins]);
    expect(logger.errors).toHaveLength(2);
    expect(logger.errors[1]).toEqual({ fields: { err: failure, channel: CHANNEL }, message: "a channel listener failed" });
  });

  it("an observer that throws is logged, never thrown into the bus, and the channel keeps flowing", async () => {
    const bus = createMemoryBus();
    const logger = recordingLogger();
    const failure = new Error("observer broke");
    const fanout = new ChannelFanout(bus, logger).observe({
      received: () => {},
      delivered: () => {
        throw failure;
      },
      notPublished: () => {},
      slowConsumerDropped: () => {},
    });
    const listener = recordingListener("a", false);
    fanout.add(CHANNEL, listener);
    bus.publish(CHANNEL, event(1, "MESSAGE", "x", null));
    bus.publish(CHANNEL, event(2, "MESSAGE", "x", null));
    await settle();
    expect(listener.received.map((e) => e.id)).toEqual(["event-1", "event-2"]);
    expect(logger.errors).toEqual([
      { fields: { err: failure, channel: CHANNEL }, message: "could not hand on an event of a channel" },
      { fields: { err: failure, channel: CHANNEL }, message: "could not hand on an event of a channel" },
    ]);
  });

  it("a private message in a batch reaches only its recipient, through deliverAll or deliver, and counts only it", async () => {
    const bus = createMemoryBus();
    const observer = countingObserver();
    const fanout = new ChannelFanout(bus, createLogger("silent")).observe(observer);
    const [a, b, c] = [recordingListener("a", true), recordingListener("b", false), recordingListener("c", true)];
    for (const listener of [a, b, c]) fanout.add(CHANNEL, listener);
    const join = event(1, "JOIN", "x", null);
    const toB = event(2, "MESSAGE", "x", "b");
    const toNobody = event(3, "MESSAGE", "x", "nobody-here");
    for (const e of [join, toB, toNobody]) bus.publish(CHANNEL, e);
    await settle();
    expect(a.received).toEqual([join]);
    expect(b.received).toEqual([join, toB]);
    expect(c.received).toEqual([join]);
    expect([a.calls, b.calls, c.calls]).toEqual([1, 2, 1]);
    expect(observer.calls).toEqual([
      ["JOIN", 3, join.createdAt],
      ["MESSAGE", 1, toB.createdAt],
    ]);
  });
});
