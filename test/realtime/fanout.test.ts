import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { createMemoryBus } from "../../src/realtime/bus.js";
import { ChannelFanout, type ChannelListener } from "../../src/realtime/fanout.js";
import type { RealtimeObserver } from "../../src/realtime/observer.js";
import { type ChannelEvent, commandOf, type RealtimeAction } from "../../src/realtime/types.js";
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
    createdAt: new Date().toISOString(),
    seq: null,
  };
}

/** A listener recording what it receives; `batched` ones take batches through `deliverAll`. */
function recordingListener(clientId: string, batched: boolean): ChannelListener & { received: ChannelEvent[]; calls: number } {
  const received: ChannelEvent[] = [];
  const listener: ChannelListener & { received: ChannelEvent[]; calls: number } = {
    clientId,
    received,
    calls: 0,
    deliver: (e) => {
      listener.calls += 1;
      received.push(e);
    },
  };
  if (batched) {
    listener.deliverAll = (events) => {
      expect(events.length).toBeGreaterThan(0);
      listener.calls += 1;
      received.push(...events);
    };
  }
  return listener;
}

/** Counts what the fan-out reports as delivered, per event creation. */
function countingObserver(): RealtimeObserver & { deliveries: number } {
  const observer = {
    deliveries: 0,
    received: () => {},
    delivered: (_action: RealtimeAction, listeners: number) => void (observer.deliveries += listeners),
    notPublished: () => {},
    slowConsumerDropped: () => {},
  };
  return observer;
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
    await fc.assert(
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

describe("channel fan-out batches JOIN and LEAVE events", () => {
  it("every listener receives exactly the events it may see, in publish order, batched or not", async () => {
    await fc.assert(
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
          for (const listener of listeners) {
            const visible = published.filter((e) => {
              const to = (e.commandOptions as { to?: string } | null)?.to;
              return to === undefined || to === listener.clientId;
            });
            expect(listener.received.map((e) => e.id)).toEqual(visible.map((e) => e.id));
            expectedDeliveries += visible.length;
          }
          expect(observer.deliveries).toBe(expectedDeliveries);
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
