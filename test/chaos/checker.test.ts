/**
 * The fault-injection suite's checker knows the answer: a consistent run passes every invariant, and
 * each kind of broken promise, planted in an otherwise consistent run, breaks its invariant (and
 * only the ones it should).
 */
import { describe, expect, it } from "vitest";
import { check, type RunRecord } from "./checker.js";
import type { Observation, SendRecord } from "./workload.js";

/** A consistent run: 6 messages on a history channel and 2 on a live one, all acknowledged, seen and forwarded. */
function consistentRun(): RunRecord {
  const sends: SendRecord[] = [];
  const observations: Observation[] = [];
  const history: { id: string; seq: number; n: number }[] = [];
  for (let n = 1; n <= 8; n++) {
    const channel = n <= 6 ? "hist:0" : "live:0";
    const seq = n <= 6 ? n : n - 6;
    sends.push({ n, channel, instance: 0, door: "ws", at: n, doneAt: n, outcome: "ack", eventId: `e${n}`, seq });
    if (channel === "hist:0") history.push({ id: `e${n}`, seq, n });
    for (const subscription of ["s1", "s2"]) {
      observations.push({
        subscription: `${subscription}:${channel}`,
        instance: 0,
        channel,
        eventId: `e${n}`,
        action: "MESSAGE",
        seq,
        n,
        clientId: "c",
        at: n,
      });
    }
  }
  return {
    sends,
    observations,
    history: { "hist:0": history },
    historyChannels: ["hist:0"],
    deliveries: sends.map((send) => ({ webhookId: `msg_${send.n}`, body: { n: send.n }, at: 0 })),
    counters: { "hist:0": 6, "live:0": 2 },
    afterCounters: { "hist:0": 7, "live:0": 2 },
    presence: [{ "hist:0": ["a", "b"], "live:0": ["a"] }],
    members: [
      { subscriber: "s1", instance: 0, channel: "hist:0", clientId: "a" },
      { subscriber: "s2", instance: 0, channel: "hist:0", clientId: "b" },
      { subscriber: "s1", instance: 0, channel: "live:0", clientId: "a" },
    ],
    exits: [{ instance: 1, at: 0, code: null, signal: "SIGKILL", expected: true }],
  };
}

const broken = (run: RunRecord) =>
  check(run)
    .filter((verdict) => !verdict.held)
    .map((verdict) => verdict.invariant);

describe("the chaos checker", () => {
  it("finds nothing wrong with a consistent run", () => {
    const verdicts = check(consistentRun());
    expect(verdicts.filter((verdict) => !verdict.held)).toEqual([]);
    expect(verdicts).toHaveLength(14);
  });

  it("finds an acknowledged message missing from history, and one stored twice", () => {
    const run = consistentRun();
    const history = run.history["hist:0"]!;
    const without3 = { "hist:0": history.filter((event) => event.n !== 3) };
    expect(broken({ ...run, history: without3 })).toEqual(["acknowledged messages are in history"]);
    // A subscriber that missed it too has a gap that history cannot fill.
    const observations = run.observations.filter((observation) => !(observation.n === 3 && observation.subscription.startsWith("s1")));
    expect(broken({ ...run, history: without3, observations })).toEqual([
      "acknowledged messages are in history",
      "every gap a subscriber saw is filled from history",
    ]);
    expect(broken({ ...run, observations })).toEqual([]);
    expect(broken({ ...run, history: { "hist:0": [...history, { id: "e3", seq: 7, n: 3 }] } })).toEqual(["no message is stored twice"]);
  });

  it("finds a refused message that reached a subscriber, or ran its AFTER trigger", () => {
    const run = consistentRun();
    const sends = run.sends.map((send) => (send.n === 7 ? { ...send, outcome: "error" as const, code: "SERVICE_UNAVAILABLE" } : send));
    expect(broken({ ...run, sends, counters: { ...run.counters, "live:0": 1 } })).toEqual([
      "a message whose sender got an error reached nobody",
      "no AFTER run for a refused message",
    ]);
  });

  it("finds a refusal that does not say to retry: an outage told as anything but SERVICE_UNAVAILABLE", () => {
    const run = consistentRun();
    const refuse = (code: string) => {
      const sends = run.sends.map((send) => (send.n === 8 ? { ...send, outcome: "error" as const, code, message: "boom" } : send));
      const observations = run.observations.filter((observation) => observation.n !== 8);
      const deliveries = run.deliveries.filter((delivery) => delivery.body.n !== 8);
      return broken({ ...run, sends, observations, deliveries, counters: { ...run.counters, "live:0": 1 } });
    };
    expect(refuse("SERVICE_UNAVAILABLE")).toEqual([]);
    expect(refuse("INTERNAL_SERVER_ERROR")).toEqual(["every refusal is SERVICE_UNAVAILABLE (worth retrying)"]);
    expect(refuse("TRIGGER_FAILED")).toEqual(["every refusal is SERVICE_UNAVAILABLE (worth retrying)"]);
  });

  it("finds an AFTER run that never came, and one split over two webhook-ids", () => {
    const run = consistentRun();
    expect(broken({ ...run, deliveries: run.deliveries.filter((delivery) => delivery.body.n !== 2) })).toEqual([
      "every acknowledged event's AFTER run reached the receiver",
    ]);
    expect(broken({ ...run, deliveries: [...run.deliveries, { webhookId: "msg_other", body: { n: 2 }, at: 0 }] })).toEqual([
      "an AFTER run's attempts share one webhook-id",
    ]);
  });

  it("finds seq going backwards in history, and a subscription that got an event twice", () => {
    const run = consistentRun();
    const history = run.history["hist:0"]!.map((event) => (event.n === 4 ? { ...event, seq: 2 } : event));
    expect(broken({ ...run, history: { "hist:0": history } })).toEqual(["seq strictly increases in history"]);
    expect(broken({ ...run, observations: [...run.observations, run.observations[0]!] })).toEqual([
      "no subscription receives an event twice",
    ]);
  });

  it("finds a presence list that did not converge, an instance that exited on its own, and a counter off by one", () => {
    const run = consistentRun();
    expect(broken({ ...run, presence: [{ "hist:0": ["a"], "live:0": ["a", "z"] }] })).toEqual([
      "presence converges to the connected subscribers",
    ]);
    expect(broken({ ...run, exits: [{ instance: 0, at: 0, code: 1, signal: null, expected: false }] })).toEqual([
      "no instance exits unless killed",
    ]);
    expect(broken({ ...run, counters: { ...run.counters, "hist:0": 5 } })).toEqual(["state counters count every acknowledged message"]);
    expect(broken({ ...run, counters: { ...run.counters, "hist:0": 7 } })).toEqual(["state counters count every acknowledged message"]);
    // A send whose outcome is unknown may have counted.
    const sends = run.sends.map((send) => (send.n === 1 ? { ...send, outcome: "unknown" as const, code: "CONNECTION_LOST" } : send));
    expect(broken({ ...run, sends, counters: { ...run.counters, "hist:0": 6 } })).toEqual([]);
    expect(broken({ ...run, sends, counters: { ...run.counters, "hist:0": 5 } })).toEqual([]);
    // An AFTER trigger's counter counts attempts: more is fine, fewer is not.
    expect(broken({ ...run, afterCounters: { ...run.afterCounters, "live:0": 1 } })).toEqual([
      "AFTER triggers' state counters count every acknowledged message",
    ]);
  });
});
