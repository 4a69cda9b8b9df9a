import fc from "fast-check";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { FastHistogram } from "../../src/observability/fast-histogram.js";
import { assertProperty } from "../helpers/property.js";

const BOUNDS = [0.001, 0.01, 0.1, 1];

describe("FastHistogram", () => {
  it("exposes cumulative buckets, +Inf, sum and count that a Prometheus parser reads back", async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { maxLength: 200 }), async (values) => {
        const registry = new Registry();
        const histogram = new FastHistogram("h_seconds", "test", BOUNDS, registry);
        for (const value of values) histogram.observe(value);
        const [family] = parsePrometheusTextFormat(await registry.metrics());
        expect(family).toMatchObject({ name: "h_seconds", type: "HISTOGRAM" });
        const sample = family!.metrics[0]!;
        for (const bound of BOUNDS) expect(Number(sample.buckets![String(bound)])).toBe(values.filter((value) => value <= bound).length);
        expect(Number(sample.buckets!["+Inf"])).toBe(values.length);
        expect(Number(sample.count)).toBe(values.length);
        expect(Number(sample.sum)).toBeCloseTo(
          values.reduce((sum, value) => sum + value, 0),
          6,
        );
      }),
      { numRuns: 100 },
    );
  });
});
