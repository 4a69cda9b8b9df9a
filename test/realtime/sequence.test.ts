/**
 * LocalSequence in-process, with plain `initial` functions standing in for "where the channel's
 * stored history ends": a failure there is retried by the next message, the channels kept in
 * memory are bounded, and a channel forgotten and used again never goes back in its numbering.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChannelSequencer, DEFAULT_SEQUENCE_CHANNELS, LocalSequence, resumeFromHistory } from "../../src/realtime/sequence.js";
import { assertProperty } from "../helpers/property.js";
import { settle } from "./core.js";

describe("LocalSequence", () => {
  it("forgets a failed resume: the channel's next message asks again and numbering goes on from there", async () => {
    let calls = 0;
    const sequence = new LocalSequence(async () => {
      calls += 1;
      if (calls === 1) throw new Error("database unreachable");
      return 41;
    });
    await expect(sequence.next("room")).rejects.toThrow("database unreachable");
    expect(await sequence.next("room")).toBe(42);
    expect(await sequence.next("room")).toBe(43);
    expect(calls).toBe(2);
  });

  it("retries through ChannelSequencer too: a commit after a failed one gets a number", async () => {
    let fail = true;
    const sequencer = new ChannelSequencer(
      new LocalSequence(async () => {
        if (fail) {
          fail = false;
          throw new Error("database unreachable");
        }
        return 0;
      }),
    );
    const first = sequencer.run("room", async (seq) => seq);
    const second = sequencer.run("room", async (seq) => seq);
    await expect(first).rejects.toThrow("database unreachable");
    expect(await second).toBe(1);
  });

  it("keeps at most maxChannels channels in memory", async () => {
    const sequence = new LocalSequence(async () => 0, 3);
    for (let i = 0; i < 50; i++) await sequence.next(`channel-${i}`);
    expect(sequence.size).toBe(3);
  });

  it("keeps the most recently used channels: one in constant use is never resumed", async () => {
    const resumed: string[] = [];
    const sequence = new LocalSequence(async (channel) => {
      resumed.push(channel);
      return 0;
    }, 2);
    for (let i = 0; i < 20; i++) {
      expect(await sequence.next("busy")).toBe(i + 1);
      await sequence.next(`other-${i}`);
    }
    expect(resumed.filter((channel) => channel === "busy")).toEqual(["busy"]);
  });

  it("never hands a channel a number at or below one it already had, however channels are forgotten", async () => {
    // Channels without history resume at 0, channels with history where their history ends;
    // whatever the order of use and however small the memory, each channel's numbers only grow.
    const stored = new Map<string, number>();
    const keepsHistory = (channel: string) => channel.startsWith("h");
    await assertProperty(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.constantFrom("a", "b", "c", "d", "e", "h1", "h2", "h3"), { minLength: 1, maxLength: 200 }),
        async (maxChannels, uses) => {
          stored.clear();
          const sequence = new LocalSequence(async (channel) => (keepsHistory(channel) ? (stored.get(channel) ?? 0) : 0), maxChannels);
          const latest = new Map<string, number>();
          for (const channel of uses) {
            const seq = await sequence.next(channel);
            expect(seq).toBeGreaterThan(latest.get(channel) ?? 0);
            latest.set(channel, seq);
            if (keepsHistory(channel)) stored.set(channel, seq);
          }
          expect(sequence.size).toBeLessThanOrEqual(maxChannels);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("numbers a channel kept in memory consecutively, concurrent calls included", async () => {
    const sequence = new LocalSequence(async () => 10, 2);
    const numbers = await Promise.all([sequence.next("room"), sequence.next("room"), sequence.next("room")]);
    expect(numbers).toEqual([11, 12, 13]);
  });

  it("does not go back for a channel forgotten while its first number was still being looked up", async () => {
    let release!: (value: number) => void;
    const slow = new Promise<number>((resolve) => (release = resolve));
    const sequence = new LocalSequence(async (channel) => (channel === "slow" ? slow : 0), 1);
    const first = sequence.next("slow"); // pending
    await sequence.next("other"); // forgets "slow" while its lookup is pending
    const again = sequence.next("slow"); // resumes: must wait for the forgotten number
    release(100);
    expect(await first).toBe(101);
    expect(await again).toBeGreaterThan(101);
  });
});

describe("resumeFromHistory", () => {
  it("resumes a channel that keeps history after its last stored message, and one that keeps none at 0 without asking", async () => {
    const asked: string[] = [];
    const resume = resumeFromHistory(
      { historyKept: (channel) => (channel === "kept" ? 1 : 0) },
      {
        lastSeq: async (channel) => {
          asked.push(channel);
          return 17;
        },
      },
    );
    expect(await resume("kept")).toBe(17);
    expect(await resume("unkept")).toBe(0);
    expect(asked).toEqual(["kept"]);
  });
});

describe("LocalSequence defaults", () => {
  it("keeps DEFAULT_SEQUENCE_CHANNELS channels when not told otherwise, and forgets the least recent beyond", async () => {
    const resumed: string[] = [];
    const sequence = new LocalSequence(async (channel) => {
      resumed.push(channel);
      return 0;
    });
    for (let i = 0; i < DEFAULT_SEQUENCE_CHANNELS; i++) await sequence.next(`channel-${i}`);
    expect(sequence.size).toBe(DEFAULT_SEQUENCE_CHANNELS);
    await sequence.next("one more");
    expect(sequence.size).toBe(DEFAULT_SEQUENCE_CHANNELS);
    // channel-0 was forgotten: used again it resumes (above the highest number forgotten, 1).
    expect(await sequence.next("channel-0")).toBe(2);
    expect(resumed.filter((channel) => channel === "channel-0")).toHaveLength(2);
  });

  it("a forgotten channel resumes above the highest number any forgotten channel reached", async () => {
    const sequence = new LocalSequence(async () => 0, 1);
    for (let i = 0; i < 5; i++) await sequence.next("busy"); // 1..5
    expect(await sequence.next("other")).toBe(6); // forgets busy at 5
    expect(await sequence.next("busy")).toBe(7); // forgets other at 6
    expect(await sequence.next("third")).toBe(8); // forgets busy at 7
    expect(await sequence.next("fresh")).toBe(9); // forgets third at 8
  });

  it("a channel forgotten after a failed lookup leaves the floor where it was", async () => {
    const sequence = new LocalSequence(async (channel) => {
      if (channel === "broken") throw new Error("database unreachable");
      return 3;
    }, 1);
    await expect(sequence.next("broken")).rejects.toThrow("database unreachable");
    expect(await sequence.next("fine")).toBe(4);
    expect(await sequence.next("again")).toBe(5); // forgets "fine" at 4
  });
});

describe("ChannelSequencer", () => {
  it("runs a channel's commits one at a time in call order with consecutive numbers, other channels alongside", async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.array(fc.record({ channel: fc.constantFrom("a", "b"), turns: fc.nat(3), fails: fc.boolean() }), { minLength: 1, maxLength: 12 }),
        async (commits) => {
          const sequencer = new ChannelSequencer(new LocalSequence(async () => 0));
          const running = new Map<string, number>();
          const log: string[] = [];
          const results = commits.map(({ channel, turns, fails }, n) =>
            sequencer.run(channel, async (seq) => {
              expect(running.get(channel) ?? 0).toBe(0);
              running.set(channel, 1);
              log.push(`${channel}:${n}`);
              for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
              running.set(channel, 0);
              if (fails) throw new Error(`commit ${n} failed`);
              return seq;
            }),
          );
          const outcomes = await Promise.allSettled(results);
          for (const channel of ["a", "b"]) {
            const mine = commits.flatMap((c, n) => (c.channel === channel ? [n] : []));
            expect(log.filter((entry) => entry.startsWith(`${channel}:`))).toEqual(mine.map((n) => `${channel}:${n}`));
            mine.forEach((n, i) => {
              expect(outcomes[n]).toEqual(
                commits[n]!.fails ? { status: "rejected", reason: new Error(`commit ${n} failed`) } : { status: "fulfilled", value: i + 1 },
              );
            });
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("a commit called after the channel went idle waits for a commit still running that was called before it", async () => {
    const sequencer = new ChannelSequencer(new LocalSequence(async () => 0));
    let releaseFirst!: () => void;
    let releaseSecond!: () => void;
    const order: string[] = [];
    const first = sequencer.run("room", async (seq) => {
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      order.push(`first ${seq}`);
    });
    const second = sequencer.run("room", async (seq) => {
      order.push(`second starts ${seq}`);
      await new Promise<void>((resolve) => (releaseSecond = resolve));
      order.push("second ends");
    });
    await settle();
    releaseFirst();
    await first;
    await settle(); // the first commit's tail is done: it must not let a third commit skip the second
    const third = sequencer.run("room", async (seq) => void order.push(`third ${seq}`));
    await settle();
    expect(order).toEqual(["first 1", "second starts 2"]);
    releaseSecond();
    await Promise.all([second, third]);
    expect(order).toEqual(["first 1", "second starts 2", "second ends", "third 3"]);
  });
});
