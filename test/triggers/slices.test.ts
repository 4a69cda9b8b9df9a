import { describe, expect, it } from "vitest";
import { nextSlice, sliceIsOver, TIME_SLICE_MS } from "../../src/triggers/guard/slices.js";

/** Works for `ms` milliseconds without letting the event loop run (as a step of a trigger run does). */
function step(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

/**
 * Runs `count` runs of `steps` steps of 1 ms each, each run waiting for the next slice when the
 * current one is over, and tells which runs worked in each turn of the event loop: in all, and
 * before the first run was done (until then, none stops with time left in its slice).
 */
async function runTogether(count: number, steps: number): Promise<{ turns: Set<number>[]; beforeFirstDone: Set<number>[] }> {
  let turn = 0;
  let counting = true;
  const count_ = () => {
    turn++;
    if (counting) setImmediate(count_);
  };
  setImmediate(count_);
  const turns = new Map<number, Set<number>>();
  let firstDone = Number.POSITIVE_INFINITY;
  const run = async (id: number) => {
    for (let i = 0; i < steps; i++) {
      step(1);
      if (!turns.has(turn)) turns.set(turn, new Set());
      turns.get(turn)!.add(id);
      if (sliceIsOver()) await nextSlice();
    }
    firstDone = Math.min(firstDone, turn);
  };
  await Promise.all(Array.from({ length: count }, (_, id) => run(id)));
  counting = false;
  return { turns: [...turns.values()], beforeFirstDone: [...turns.entries()].filter(([at]) => at < firstDone).map(([, runs]) => runs) };
}

describe("time slices", () => {
  it("are shared: twenty runs waiting for slices take turns, one at a time, instead of a step each per turn", async () => {
    const { turns, beforeFirstDone } = await runTogether(20, 30);
    // The first turn is when they all start (each does its first step before it first looks at the clock).
    const later = beforeFirstDone.slice(1);
    expect(later.length).toBeGreaterThan(10);
    // One run works until the slice is over (the next goes on in the same turn only when one finishes with time left).
    expect(Math.max(...later.map((runs) => runs.size))).toBeLessThanOrEqual(2);
    // A slice is a few steps of one run, not one step of each.
    expect(turns.length).toBeGreaterThan((20 * 30) / (TIME_SLICE_MS + 2) / 2);
  });

  it("let every waiting run go on in its turn, oldest first", async () => {
    const { turns } = await runTogether(5, 40);
    // Each run works in turns spread over the whole: none waits for all the others to finish.
    const firstTurnOf = (id: number) => turns.findIndex((runs, index) => index > 0 && runs.has(id));
    const order = [0, 1, 2, 3, 4].map(firstTurnOf);
    expect(order.every((turn) => turn > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const lastTurnOf = (id: number) => turns.findLastIndex((runs) => runs.has(id));
    expect(Math.min(...[0, 1, 2, 3, 4].map(lastTurnOf))).toBeGreaterThan(turns.length / 2);
  });
});
