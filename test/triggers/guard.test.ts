import fc from "fast-check";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { runStack } from "../../src/triggers/engine.js";
import { compileStack } from "../../src/triggers/stack.js";

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
  const result = await runStack(compileStack([{ log: expression }]), input, { timeoutMs: 10_000 });
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
    await fc.assert(
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
    await fc.assert(
      fc.asyncProperty(fc.array(item, { maxLength: 12 }), async (items) => {
        expect(await guarded("$distinct(payload)", items)).toEqual(await plain("$distinct(payload)", items));
      }),
      RUNS,
    );
  });

  it("$sort without a function, of numbers or of strings", async () => {
    await fc.assert(
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
    await fc.assert(
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
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer(), { maxLength: 5 }), fc.array(fc.string({ maxLength: 2 }), { maxLength: 5 }), async (a, b) => {
        expect(await guarded("$zip(payload.a, payload.b)", { a, b })).toEqual(await plain("$zip(payload.a, payload.b)", { a, b }));
      }),
      RUNS,
    );
    await fc.assert(
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

describe("bounds of single built-ins", () => {
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
    const arrays = Array.from({ length: 40 }, () => "$a").join(", ");
    expect(await guarded(`( $a := [1..100000]; $count($zip(${arrays})) )`, null)).toEqual({
      error: expect.stringMatching(/^stack\[0\]: memory: /),
    });
  });
});
