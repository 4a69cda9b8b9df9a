import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkDepth, equalJson, jsonPrefix, plainJson, TEXT_CHUNK, writeJson } from "../../src/triggers/guard/values.js";
import { MAX_JSON_DEPTH } from "../../src/validation.js";
import { assertProperty } from "../helpers/property.js";

const RUNS = { numRuns: 200 };

/** JSON values, with what JSON leaves out or changes: functions, undefined, -0, numbers that are not finite. */
const value = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.integer(),
    fc.double(),
    fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY),
    fc.string({ maxLength: 6 }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.constant(() => 1),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom("a", "b", "1", "__proto__", "é"), tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** A value nested `depth` levels (arrays and objects in turn). */
function nested(depth: number): unknown {
  let node: unknown = 1;
  for (let i = 0; i < depth; i++) node = i % 2 === 0 ? [node] : { a: node };
  return node;
}

describe("values worked through in slices", () => {
  it("plainJson copies a value as JSON.parse(JSON.stringify(value)) does", async () => {
    await assertProperty(
      fc.asyncProperty(value, async (v) => {
        const text = JSON.stringify(v);
        const copy = await plainJson(v, undefined);
        expect(copy).toStrictEqual(text === undefined ? undefined : JSON.parse(text));
        expect(JSON.stringify(copy)).toBe(text);
      }),
      RUNS,
    );
  });

  it("plainJson refuses a value nested deeper than a client's message may be, and checkDepth as nestsDeeperThan", async () => {
    await expect(plainJson(nested(MAX_JSON_DEPTH), undefined)).resolves.toBeDefined();
    await expect(plainJson(nested(MAX_JSON_DEPTH + 1), undefined)).rejects.toThrow(`a value nests deeper than ${MAX_JSON_DEPTH} levels`);
    await expect(plainJson(nested(10_000), undefined, Number.POSITIVE_INFINITY)).resolves.toBeDefined();
    expect(checkDepth(nested(MAX_JSON_DEPTH), undefined)).toBeUndefined();
    expect(() => checkDepth(nested(MAX_JSON_DEPTH + 1), undefined)).toThrow(`a value nests deeper than ${MAX_JSON_DEPTH} levels`);
    // A large value is checked in slices.
    const wide = Array.from({ length: 5000 }, () => [[1]]);
    await expect(checkDepth(wide, undefined)).resolves.toBeUndefined();
    await expect(checkDepth([...wide, nested(MAX_JSON_DEPTH)], undefined)).rejects.toThrow(
      `a value nests deeper than ${MAX_JSON_DEPTH} levels`,
    );
  });

  it("equalJson says whether two values' JSON is the same, objects' keys in any order", async () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    await assertProperty(
      fc.asyncProperty(json, json, async (a, b) => {
        const sorted = (v: unknown): unknown =>
          Array.isArray(v)
            ? v.map(sorted)
            : typeof v === "object" && v !== null
              ? Object.fromEntries(
                  Object.entries(v)
                    .sort(([x], [y]) => (x < y ? -1 : 1))
                    .map(([k, w]) => [k, sorted(w)]),
                )
              : v;
        const same = JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
        expect(await equalJson(a, b, undefined)).toBe(same);
        expect(await equalJson(a, structuredClone(a), undefined)).toBe(true);
        // Large values too (compared in slices).
        const many = (v: unknown) => Array.from({ length: 2000 }, () => v);
        expect(await equalJson(many(a), many(b), undefined)).toBe(same);
      }),
      RUNS,
    );
  });

  it("writes JSON text as JSON.stringify does, plain or indented, and stops past a length", async () => {
    await assertProperty(
      fc.asyncProperty(value, fc.integer({ min: 0, max: 40 }), async (v, max) => {
        const text = JSON.stringify(v);
        expect((await writeJson(v, { maxLength: Number.POSITIVE_INFINITY }, undefined)).text()).toBe(text);
        expect((await writeJson(v, { maxLength: Number.POSITIVE_INFINITY, indent: true }, undefined)).text()).toBe(
          JSON.stringify(v, null, 2),
        );
        const prefix = jsonPrefix(v, max);
        expect(prefix.whole).toBe((text ?? "").length <= max);
        expect((text ?? "").startsWith(prefix.text)).toBe(true);
        if (prefix.whole) expect(prefix.text).toBe(text ?? "");
      }),
      RUNS,
    );
  });

  it("writes a string longer than a chunk a chunk at a time, a surrogate pair never cut in two", async () => {
    for (const filler of ["a", "😀", "\u0001", "\ud800"]) {
      const long = `${"x".repeat(TEXT_CHUNK - 1)}${filler.repeat(TEXT_CHUNK + 3)}"`;
      const written = await writeJson({ long, short: "y" }, { maxLength: Number.POSITIVE_INFINITY }, undefined);
      expect(written.text()).toBe(JSON.stringify({ long, short: "y" }));
      expect(jsonPrefix(long, 10).text.length).toBeLessThan(TEXT_CHUNK * 7);
    }
  });
});
