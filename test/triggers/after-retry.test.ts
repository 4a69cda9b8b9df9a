import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseRetryAfter, retryDelay } from "../../src/triggers/after/worker.js";
import { assertProperty } from "../helpers/property.js";

const DAY_MS = 24 * 60 * 60 * 1000;

describe("retry waits of AFTER trigger runs", () => {
  it("doubles from the base up to the cap, with jitter between half and all of it; a longer Retry-After wins, up to its own cap", () => {
    assertProperty(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.option(fc.integer({ min: 0, max: 2 * DAY_MS })),
        fc.integer({ min: 0, max: DAY_MS }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (baseMs, maxMs, failed, retryAfterMs, retryAfterMaxMs, random) => {
          const policy = { baseMs, maxMs, limit: 100, retryAfterMaxMs };
          const backoff = Math.min(maxMs, baseMs * 2 ** (failed - 1));
          const plain = retryDelay(policy, failed, null, () => random);
          expect(plain).toBeGreaterThanOrEqual(Math.floor(backoff / 2));
          expect(plain).toBeLessThanOrEqual(backoff);
          const wait = retryDelay(policy, failed, retryAfterMs, () => random);
          // Never shorter than the backoff, never longer than the backoff or the Retry-After cap.
          expect(wait).toBeGreaterThanOrEqual(plain);
          expect(wait).toBeLessThanOrEqual(Math.max(plain, retryAfterMaxMs));
          // A Retry-After within its cap and longer than the backoff is the wait.
          if (retryAfterMs !== null && retryAfterMs <= retryAfterMaxMs && retryAfterMs > plain) expect(wait).toBe(retryAfterMs);
        },
      ),
    );
    const policy = { baseMs: 1000, maxMs: 60_000, limit: 5, retryAfterMaxMs: 300_000 };
    expect([1, 2, 3, 4, 7, 20].map((failed) => retryDelay(policy, failed, null, () => 0.999999))).toEqual([
      1000, 2000, 4000, 8000, 60_000, 60_000,
    ]);
    expect(retryDelay(policy, 1, 30_000, () => 0.5)).toBe(30_000);
    expect(retryDelay(policy, 3, 10, () => 0.5)).toBe(3000);
    // "Come back tomorrow" waits TRIGGER_RETRY_AFTER_MAX_MS; with 0, Retry-After is ignored.
    expect(retryDelay(policy, 1, DAY_MS, () => 0.5)).toBe(300_000);
    expect(retryDelay({ ...policy, retryAfterMaxMs: 0 }, 1, DAY_MS, () => 0.5)).toBe(750);
  });

  it("reads Retry-After as seconds or an HTTP date, and ignores what it cannot read", () => {
    const now = Date.parse("2026-12-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Tue, 01 Dec 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Mon, 30 Nov 2026 23:00:00 GMT", now)).toBe(0); // in the past
    expect(parseRetryAfter("86400", now)).toBe(DAY_MS);
    for (const bad of [undefined, "", "soon", "-5", "1.5"]) expect(parseRetryAfter(bad, now)).toBeNull();
  });
});
