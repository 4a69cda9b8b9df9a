/**
 * LocalSequence in-process, with plain `initial` functions standing in for "where the channel's
 * stored history ends": a failure there is retried by the next message, the channels kept in
 * memory are bounded, and a channel forgotten and used again never goes back in its numbering.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChannelSequencer, LocalSequence } from "../../src/realtime/sequence.js";

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
    await fc.assert(
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
