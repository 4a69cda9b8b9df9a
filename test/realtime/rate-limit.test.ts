import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/realtime/rate-limit.js";

describe("RateLimiter", () => {
  it("allows at most the burst plus what the rate refills, per key, for any rate and any times", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.1, max: 1000, noNaN: true }),
        fc.array(fc.record({ key: fc.constantFrom("a", "b"), gapMs: fc.integer({ min: 0, max: 3000 }) }), { maxLength: 200 }),
        (perSecond, calls) => {
          const limiter = new RateLimiter(perSecond);
          let now = 1_000_000;
          const start = now;
          const allowed = { a: 0, b: 0 };
          for (const { key, gapMs } of calls) {
            now += gapMs;
            if (limiter.take(key, now)) allowed[key] += 1;
          }
          const elapsed = (now - start) / 1000;
          for (const key of ["a", "b"] as const)
            expect(allowed[key]).toBeLessThanOrEqual(Math.max(1, perSecond) + elapsed * perSecond + 1e-9);
        },
      ),
    );
  });

  it("lets a rate below one a second through once, then once per 1/rate seconds", () => {
    const limiter = new RateLimiter(0.5);
    expect(limiter.take("k", 0)).toBe(true);
    expect(limiter.take("k", 100)).toBe(false);
    expect(limiter.take("k", 1900)).toBe(false);
    expect(limiter.take("k", 2100)).toBe(true);
  });
});
