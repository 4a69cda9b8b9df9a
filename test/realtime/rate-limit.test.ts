import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/realtime/rate-limit.js";
import { assertProperty } from "../helpers/property.js";

/** How close to one token a bucket may be for either answer to count as right (floating-point rounding). */
const ROUNDING = 1e-9;

describe("RateLimiter", () => {
  it("allows a call exactly when the key's bucket holds a token: the burst at once, then what the rate refills", () => {
    assertProperty(
      fc.property(
        fc.double({ min: 0.1, max: 1000, noNaN: true }),
        fc.array(fc.record({ key: fc.constantFrom("a", "b"), gapMs: fc.integer({ min: 0, max: 3000 }) }), { maxLength: 200 }),
        (perSecond, calls) => {
          const limiter = new RateLimiter(perSecond);
          // The model: a full bucket of max(1, rate) tokens per key, refilled at the rate, one token a call.
          const capacity = Math.max(1, perSecond);
          const tokens = { a: capacity, b: capacity };
          let now = 1_000_000;
          const start = now;
          const allowed = { a: 0, b: 0 };
          for (const [i, { key, gapMs }] of calls.entries()) {
            now += gapMs;
            for (const k of ["a", "b"] as const) tokens[k] = Math.min(capacity, tokens[k] + (gapMs / 1000) * perSecond);
            const taken = limiter.take(key, now);
            if (tokens[key] >= 1 + ROUNDING) expect(taken, `call ${i} (${key}) with ${tokens[key]} tokens`).toBe(true);
            if (tokens[key] < 1 - ROUNDING) expect(taken, `call ${i} (${key}) with ${tokens[key]} tokens`).toBe(false);
            if (taken) {
              tokens[key] -= 1;
              allowed[key] += 1;
            }
          }
          const elapsed = (now - start) / 1000;
          for (const key of ["a", "b"] as const) expect(allowed[key]).toBeLessThanOrEqual(capacity + elapsed * perSecond + ROUNDING);
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
