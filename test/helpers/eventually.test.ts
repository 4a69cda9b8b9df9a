import { describe, expect, it } from "vitest";
import { eventually } from "./eventually.js";

describe("eventually", () => {
  it("returns the first value accepted", async () => {
    let calls = 0;
    const value = await eventually("the third call", () => ++calls, { until: (n) => n === 3, intervalMs: 1 });
    expect(value).toBe(3);
    expect(calls).toBe(3);
  });

  it("fails after the time limit, naming what it waited for and the last value seen", async () => {
    await expect(
      eventually("a ready status", async () => ({ status: "starting" }), { until: () => false, timeoutMs: 30, intervalMs: 5 }),
    ).rejects.toThrow("waited 30 ms for a ready status; the last value seen: { status: 'starting' }");
  });
});
