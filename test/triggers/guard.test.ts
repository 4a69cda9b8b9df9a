import fc from "fast-check";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { compileStack } from "../../src/triggers/compile/stack.js";
import { runStack } from "../../src/triggers/run/engine.js";
import { assertProperty } from "../helpers/property.js";

/** What an expression gives in a trigger (bounded built-ins, RE2), as JSON; or the error's message. */
async function guarded(expression: string, payload: unknown): Promise<unknown> {
  const input = {
    action: "message",
    command: "message",
    channel: "c",
    commandOptions: null,
    payload,
    client: { id: "a", authenticated: false, extras: null },
  } as const;
  // These cases are about memory and size bounds, not time: a generous limit keeps a loaded machine
  // from turning a bounded build into a timeout.
  const result = await runStack(compileStack([{ log: expression }], { expressionTimeoutMs: 10_000 }), input, { timeoutMs: 10_000 });
  return result.error ? { error: result.error.message } : result.log[0];
}

/** What plain JSONata gives for the same expression and input, as JSON. */
async function plain(expression: string, payload: unknown): Promise<unknown> {
  const value: unknown = await jsonata(expression).evaluate({ payload });
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

const RUNS = { numRuns: 60 };

describe("bounded built-ins give what JSONata's own give", () => {
  it("$pad, with any text, width and pad text", async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.string({ maxLength: 8, unit: "grapheme" }),
        fc.integer({ min: -20, max: 20 }),
        fc.option(fc.string({ maxLength: 4, unit: "grapheme" }), { nil: undefined }),
        async (text, width, char) => {
          const expression = char === undefined ? "$pad(payload.t, payload.w)" : "$pad(payload.t, payload.w, payload.c)";
          const payload = { t: text, w: width, c: char };
          expect(await guarded(expression, payload)).toEqual(await plain(expression, payload));
        },
      ),
      RUNS,
    );
  });

  it("$distinct, keeping the first of values equal by JSONata's deep equality", async () => {
    const value = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom("a", "b"), fc.constant(null), fc.boolean());
    const item = fc.oneof(value, fc.array(value, { maxLength: 2 }), fc.dictionary(fc.constantFrom("x", "y"), value, { maxKeys: 2 }));
    await assertProperty(
      fc.asyncProperty(fc.array(item, { maxLength: 12 }), async (items) => {
        expect(await guarded("$distinct(payload)", items)).toEqual(await plain("$distinct(payload)", items));
      }),
      RUNS,
    );
  });

  it("$sort without a function, of numbers or of strings", async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.oneof(
          fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 20 }),
          fc.array(fc.string({ maxLength: 3 }), { maxLength: 20 }),
        ),
        async (items) => {
          expect(await guarded("$sort(payload)", items)).toEqual(await plain("$sort(payload)", items));
        },
      ),
      RUNS,
    );
  });

  it("$match, $split, $replace and $contains with regular expressions, on RE2", async () => {
    const patterns = ["/a+/", "/(a|b)b*/", "/^\\s+|\\s+$/", "/(a)(b)?/i", "/\\s*,\\s*/", "/[^a ]/"];
    const expressions = (pattern: string) => [
      `$match(payload, ${pattern})`,
      `$split(payload, ${pattern})`,
      `$replace(payload, ${pattern}, '<$1>')`,
      `$contains(payload, ${pattern})`,
      `$split(payload, ${pattern}, 2)`,
    ];
    await assertProperty(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom("a", "b", "A", " ", ",", "é"), maxLength: 16 }),
        fc.constantFrom(...patterns),
        async (text, pattern) => {
          for (const expression of expressions(pattern)) expect(await guarded(expression, text)).toEqual(await plain(expression, text));
        },
      ),
      RUNS,
    );
  });

  it("$zip, and $toMillis with a picture (matched by RE2)", async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(fc.integer(), { maxLength: 5 }), fc.array(fc.string({ maxLength: 2 }), { maxLength: 5 }), async (a, b) => {
        expect(await guarded("$zip(payload.a, payload.b)", { a, b })).toEqual(await plain("$zip(payload.a, payload.b)", { a, b }));
      }),
      RUNS,
    );
    await assertProperty(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.constantFrom("[Y0001]-[M01]-[D01]", "[D1]/[M1]/[Y0001] [H01]:[m01]:[s01]", "[Y][M01][D01][H01][m01][s01]"),
        async (millis, picture) => {
          const expression = `$toMillis($fromMillis(payload.m, payload.p), payload.p)`;
          expect(await guarded(expression, { m: millis, p: picture })).toEqual(await plain(expression, { m: millis, p: picture }));
        },
      ),
      RUNS,
    );
  });
});

describe("built-ins redone to work in slices give what JSONata's own give", () => {
  /** Text with code points of one and two UTF-16 units, whitespace, and what URLs escape. */
  const text = (maxLength = 12) =>
    fc.string({ unit: fc.constantFrom("a", "b", " ", "\t", "\n", "é", "😀", "%", "/", "?", "ß"), maxLength });
  /** A JSON value of a few levels, with numbers that are not whole. */
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      text(4),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie("value"), { maxLength: 3 }),
      fc.dictionary(fc.constantFrom("a", "b", "1", "__proto__"), tie("value"), { maxKeys: 3 }),
    ),
  })).value;

  it("$length and $substring, counting code points", async () => {
    await assertProperty(
      fc.asyncProperty(
        text(),
        fc.integer({ min: -15, max: 15 }),
        fc.option(fc.integer({ min: -3, max: 15 }), { nil: undefined }),
        async (t, start, length) => {
          const expression =
            length === undefined ? "[$length(payload.t), $substring(payload.t, payload.s)]" : "$substring(payload.t, payload.s, payload.l)";
          const payload = { t, s: start, l: length };
          expect(await guarded(expression, payload)).toEqual(await plain(expression, payload));
        },
      ),
      RUNS,
    );
  });

  it("$string, plain and pretty, and the transform operator's copy", async () => {
    await assertProperty(
      fc.asyncProperty(json, async (value) => {
        const expressions = ["$string(payload)", "$string(payload, true)"];
        // The transform operator copies objects and arrays (anything else is JSONata's type error).
        if (typeof value === "object" && value !== null) expressions.push("payload ~> | $ | {} |");
        for (const expression of expressions) expect(await guarded(expression, value)).toEqual(await plain(expression, value));
      }),
      RUNS,
    );
  });

  it("$trim, $replace of text by text, and the URL functions", async () => {
    await assertProperty(
      fc.asyncProperty(
        text(),
        fc.constantFrom("a", " ", "ab", "😀", "$"),
        fc.constantFrom("", "x", "$0", "$$"),
        fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        async (t, pattern, by, limit) => {
          const payload = { t, p: pattern, r: by, l: limit };
          const expressions = [
            "$trim(payload.t)",
            limit === undefined ? "$replace(payload.t, payload.p, payload.r)" : "$replace(payload.t, payload.p, payload.r, payload.l)",
            "$encodeUrlComponent(payload.t)",
            "$encodeUrl(payload.t)",
            "$decodeUrlComponent($encodeUrlComponent(payload.t))",
            "$decodeUrl($encodeUrl(payload.t))",
          ];
          for (const expression of expressions) expect(await guarded(expression, payload)).toEqual(await plain(expression, payload));
        },
      ),
      RUNS,
    );
  });

  it("$spread, $merge, $keys and $reverse", async () => {
    const item = fc.oneof(json, fc.dictionary(fc.constantFrom("a", "b", "2", "10"), json, { maxKeys: 3 }));
    await assertProperty(
      fc.asyncProperty(fc.array(item, { maxLength: 5 }), async (items) => {
        const objects = items.filter((i) => typeof i === "object" && i !== null && !Array.isArray(i));
        for (const expression of ["$spread(payload.items)", "$keys(payload.items)", "$merge(payload.objects)", "$reverse(payload.items)"]) {
          const payload = { items, objects };
          expect(await guarded(expression, payload)).toEqual(await plain(expression, payload));
        }
      }),
      RUNS,
    );
  });

  it("work through inputs longer than a chunk", async () => {
    const long = `${"ab😀 \t".repeat(30_000)}%`;
    for (const expression of [
      "$length($trim(payload.t))",
      "$substring(payload.t, 70000, 5)",
      "$length($replace(payload.t, 'b', 'xyz'))",
      "$length($encodeUrlComponent(payload.t))",
      "$length($decodeUrlComponent($encodeUrlComponent(payload.t)))",
      "$length($string(payload))",
      "$count($keys($merge([1..9000].{ $string($): $ })))",
      "$count($spread([1..3000].{ 'a': $, 'b': [$, { 'c': $ }] }))",
    ]) {
      expect(await guarded(expression, { t: long })).toEqual(await plain(expression, { t: long }));
    }
  });
});

describe("bounds of single built-ins", () => {
  it("refuses an object of more than 10,000 keys, and $merge before building one", async () => {
    expect(await guarded("$count($keys($merge([1..10001].{ $string($): $ })))", null)).toEqual({
      error: "stack[0]: size: $merge's result is over the limit of 10000 keys",
    });
    expect(await guarded("$count($keys($merge([1..10000].{ $string($): $ })))", null)).toBe(10_000);
    const client = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i]));
    expect(await guarded("$count($keys(payload))", client)).toEqual({
      error: "stack[0]: size: an object of 10001 keys is over the limit of 10000",
    });
  });

  it("refuses a wildcard over an object whose arrays it would copy too often", async () => {
    const many = "$merge([1..3000].{ $string($): [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] })";
    expect(await guarded(`$count(${many}.*)`, null)).toEqual({
      error: "stack[0]: size: a wildcard (*) over an object holding many arrays would copy over 2000000 items",
    });
    expect(await guarded("$count($merge([1..400].{ $string($): [1, 2, 3] }).*)", null)).toBe(1200);
  });

  it("refuses an object constructor over @ or # bindings of more than 2,000 tuples", async () => {
    expect(await guarded("[1..2001]#$i{ 'k': $count($i) }", null)).toEqual({
      error: "stack[0]: size: an object constructor over @ or # bindings may group at most 2000 tuples",
    });
    expect(await guarded("[1..2000]#$i{ 'k': $count($i) }", null)).toEqual({ k: 2000 });
  });

  it("refuses picture strings longer than 1,000 characters", async () => {
    for (const name of [
      "$formatNumber(1, $p)",
      "$formatInteger(1, $p)",
      "$fromMillis(0, $p)",
      "$toMillis('1', $p)",
      "$parseInteger('1', $p)",
    ]) {
      expect(await guarded(`( $p := $pad('', 1001, '#'); ${name} )`, null)).toEqual({
        error: expect.stringMatching(/^stack\[0\]: size: \$\w+'s picture of 1001 characters is over the limit of 1000$/),
      });
    }
  });

  it("pads with a long pad text without building it over and over", async () => {
    expect(await guarded("$length($pad('ab', 1000000, $pad('', 1000000, 'xy')))", null)).toBe(1_000_000);
  });

  it("charges each copy the transform operator makes", async () => {
    const input = {
      action: "message",
      command: "message",
      channel: "c",
      commandOptions: null,
      payload: { text: "x".repeat(50_000) },
      client: { id: "a", authenticated: false, extras: null },
    } as const;
    const stack = compileStack([{ log: "$count([1..100].($$ ~> | payload | { 'seen': true } |))" }]);
    const result = await runStack(stack, input, { maxMemoryBytes: 1024 * 1024 });
    expect(result.error?.message).toBe("stack[0]: memory: the trigger built more than its memory budget of 1 MiB");
    expect((await runStack(stack, input, { maxMemoryBytes: 64 * 1024 * 1024 })).log).toEqual([100]);
  });

  it("charges $zip's tuples before building them", async () => {
    const arrays = Array.from({ length: 400 }, () => "$a").join(", ");
    expect(await guarded(`( $a := [1..20000]; $count($zip(${arrays})) )`, null)).toEqual({
      error: expect.stringMatching(/^stack\[0\]: memory: /),
    });
  });
});
