import fc from "fast-check";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { LinearRegex } from "../../src/triggers/compile/regex.js";
import {
  codePointLength,
  GuardFailure,
  type GuardLimits,
  guardExpression,
  MAX_GROUPED_TUPLES,
  MAX_PICTURE_LENGTH,
  MAX_WILDCARD_WORK,
  RUN_GUARD_BINDING,
  RunGuard,
} from "../../src/triggers/guard/guard.js";
import { assertProperty } from "../helpers/property.js";

const DEFAULTS: GuardLimits = { maxStringLength: 1_000_000, maxSequenceLength: 20_000, maxObjectKeys: 10_000 };
/** Small limits, so every bound is reached with small values. */
const SMALL: GuardLimits = { maxStringLength: 20, maxSequenceLength: 5, maxObjectKeys: 3 };

function newGuard(budget = 1e12): RunGuard {
  return new RunGuard(
    budget,
    () => false,
    () => new Error("over"),
  );
}

/**
 * Evaluates an expression guarded as a trigger's are (JSONata's guardrails, RE2), with `bindings`
 * as variables (variable lookups are neither checked nor charged): its value as JSON and the bytes
 * charged to the run, or the error (a GuardFailure's reason and message, or JSONata's code and message).
 */
async function guarded(source: string, bindings: Record<string, unknown> = {}, limits = DEFAULTS, input: unknown = {}) {
  const expression = jsonata(source, {
    timeout: 10_000,
    stack: 500,
    // Well past the guard's own limit, so that it is the guard's check that is met.
    sequence: 100_000,
    RegexEngine: LinearRegex as unknown as RegExpConstructor,
  });
  guardExpression(expression, limits);
  const guard = newGuard();
  try {
    const value = await expression.evaluate(input, { ...bindings, [RUN_GUARD_BINDING]: guard });
    return { value: value === undefined ? undefined : JSON.parse(JSON.stringify(value)), charged: guard.charged };
  } catch (error) {
    if (error instanceof GuardFailure) return { error: `${error.reason}: ${error.message}` };
    const { code, message } = error as { code?: string; message?: string };
    return { error: `${code}: ${message}` };
  }
}

describe("RunGuard", () => {
  it("charges up to its budget and fails past it, naming the budget in MiB when whole", () => {
    const guard = newGuard(1024 * 1024);
    guard.charge(1024 * 1024 - 1);
    guard.charge(1);
    expect(guard.charged).toBe(1024 * 1024);
    expect(() => guard.charge(1)).toThrow(new GuardFailure("memory", "the trigger built more than its memory budget of 1 MiB"));
    try {
      newGuard(3 * 1024 * 1024).charge(3 * 1024 * 1024 + 1);
    } catch (error) {
      expect(error).toBeInstanceOf(GuardFailure);
      expect((error as GuardFailure).reason).toBe("memory");
      expect((error as GuardFailure).message).toBe("the trigger built more than its memory budget of 3 MiB");
    }
    expect(() => newGuard(1000).charge(1001)).toThrow("the trigger built more than its memory budget of 1000 bytes");
    expect(() => newGuard(1536 * 1024).charge(2e6)).toThrow("the trigger built more than its memory budget of 1572864 bytes");
  });

  it("charges each array or object once, measuring it the first time only, without a key anyone sees", () => {
    const guard = newGuard();
    const value = { a: 1 };
    const measured: object[] = [];
    const measure = (object: object) => {
      measured.push(object);
      return 100;
    };
    expect(guard.chargeOnce(value, measure)).toBe(true);
    expect(guard.chargeOnce(value, measure)).toBe(false);
    expect(guard.chargeOnce(value, 50)).toBe(false);
    expect(measured).toEqual([value]);
    expect(guard.charged).toBe(100);
    expect(Object.keys(value)).toEqual(["a"]);
    expect(JSON.stringify(value)).toBe('{"a":1}');
    // Another run charges it again.
    const other = newGuard();
    expect(other.chargeOnce(value, 7)).toBe(true);
    expect(other.charged).toBe(7);
  });

  it("charges a frozen value, or an input, once as well", () => {
    const guard = newGuard();
    const frozen = Object.freeze([1, 2]);
    expect(guard.chargeOnce(frozen, 10)).toBe(true);
    expect(guard.chargeOnce(frozen, 10)).toBe(false);
    const input = { text: "x" };
    expect(guard.chargeInputOnce(input, 20)).toBe(true);
    expect(guard.chargeInputOnce(input, 20)).toBe(false);
    expect(guard.charged).toBe(30);
    expect(Object.getOwnPropertySymbols(input)).toEqual([]);
  });

  it("fails a charge past the budget even when made once", () => {
    const guard = newGuard(10);
    expect(guard.chargeOnce({}, 10)).toBe(true);
    expect(() => guard.chargeOnce({}, 1)).toThrow("memory budget of 10 bytes");
    expect(() => newGuard(10).chargeInputOnce({}, 11)).toThrow("memory budget of 10 bytes");
  });
});

describe("codePointLength", () => {
  it("counts code points, a lone surrogate as one", () => {
    const unit = fc.constantFrom("a", "é", "😀", "\uD83D", "\uDE00", "\uDBFF", "\uDC00", "\uD7FF", "\uE000", "\uD800", "\uDFFF");
    assertProperty(
      fc.property(fc.string({ unit, maxLength: 12 }), (text) => {
        expect(codePointLength(text)).toBe([...text].length);
      }),
      { numRuns: 300 },
    );
  });
});

describe("the size of every value an expression makes", () => {
  it("is checked: strings, arrays and objects past their limits fail, at them pass", async () => {
    expect(await guarded("$a & 'x'", { a: "x".repeat(19) }, SMALL)).toMatchObject({ value: "x".repeat(20) });
    expect(await guarded("$a & 'xx'", { a: "x".repeat(19) }, SMALL)).toEqual({
      error: "size: a string of 21 characters is over the limit of 20",
    });
    expect(await guarded("[1, 2, 3, 4, 5]", {}, SMALL)).toMatchObject({ value: [1, 2, 3, 4, 5] });
    expect(await guarded("[1, 2, 3, 4, 5, 6]", {}, SMALL)).toEqual({ error: "size: an array of 6 items is over the limit of 5" });
    expect(await guarded("{ 'a': 1, 'b': 2, 'c': 3 }", {}, SMALL)).toMatchObject({ value: { a: 1, b: 2, c: 3 } });
    expect(await guarded("{ 'a': 1, 'b': 2, 'c': 3, 'd': 4 }", {}, SMALL)).toEqual({
      error: "size: an object of 4 keys is over the limit of 3",
    });
    expect(await guarded("[{ 'a': 1, 'b': 2, 'c': 3, 'd': 4 }]", {}, SMALL)).toEqual({
      error: "size: an object of 4 keys is over the limit of 3",
    });
  });

  it("is not checked for a value only looked up (a variable), however large", async () => {
    expect(await guarded("$a", { a: [1, 2, 3, 4, 5, 6, 7] }, SMALL)).toEqual({ value: [1, 2, 3, 4, 5, 6, 7], charged: 0 });
    expect(await guarded("$a", { a: { a: 1, b: 2, c: 3, d: 4 } }, SMALL)).toEqual({ value: { a: 1, b: 2, c: 3, d: 4 }, charged: 0 });
  });
});

describe("what a run is charged", () => {
  it("two bytes a character for a string an operator or function makes, nothing for one looked up or written", async () => {
    await assertProperty(
      fc.asyncProperty(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), async (a, b) => {
        expect(await guarded("$a & $b", { a, b })).toEqual({ value: a + b, charged: 2 * (a + b).length });
        expect(await guarded("$a ~> $uppercase()", { a })).toEqual({ value: a.toUpperCase(), charged: 2 * a.length });
        expect(await guarded("$a", { a })).toEqual({ value: a, charged: 0 });
      }),
      { numRuns: 50 },
    );
    expect(await guarded("'literal'")).toEqual({ value: "literal", charged: 0 });
    expect(await guarded("$uppercase($a)", { a: "abc" })).toEqual({ value: "ABC", charged: 6 });
    // A string handed on by a condition was made (or looked up) before.
    expect(await guarded("$b ? $a : 'x'", { a: "abc", b: true })).toEqual({ value: "abc", charged: 0 });
  });

  it("64 bytes an object or array, 32 a key and 8 an item, each object in a new array once", async () => {
    await assertProperty(
      fc.asyncProperty(fc.integer({ min: 1, max: 8 }), async (n) => {
        const items = Array.from({ length: n }, (_, i) => i);
        expect(await guarded(`[${items.join(", ")}]`)).toEqual({ value: items, charged: 64 + 8 * n });
        const keys = items.map((i) => `'k${i}': ${i}`).join(", ");
        expect(await guarded(`{ ${keys} }`)).toMatchObject({ charged: 64 + 32 * n });
      }),
      { numRuns: 8 },
    );
    // The array (64 + 2 * 8) and its two objects (64 + 32 each).
    expect(await guarded("[{ 'a': 1 }, { 'b': 2 }]")).toEqual({ value: [{ a: 1 }, { b: 2 }], charged: 80 + 2 * 96 });
    // A function is not charged.
    expect(await guarded("$count([function($x) { $x }])")).toEqual({ value: 1, charged: 72 });
    expect(await guarded("$count([$uppercase])")).toEqual({ value: 1, charged: 72 });
  });

  it("the objects a built-in puts in a new array with it, each once, and no function", async () => {
    // The array (64 + 2 * 8) and the two objects $spread made (64 + 32 each).
    expect(await guarded("$spread($a)", { a: { a: 1, b: 2 } })).toEqual({ value: [{ a: 1 }, { b: 2 }], charged: 80 + 2 * 96 });
    // One object twice in an array is charged once.
    expect(await guarded("[$a, $a]", { a: { k: 1 } })).toEqual({ value: [{ k: 1 }, { k: 1 }], charged: 80 + 96 });
    // Strings in an array are not objects.
    expect(await guarded("$keys($a)", { a: { k: 1, j: 2 } })).toEqual({ value: ["k", "j"], charged: 80 });
    expect(await guarded("($f := function($x) { $x }; 1)")).toEqual({ value: 1, charged: 0 });
    expect(await guarded("($f := $uppercase; 1)")).toEqual({ value: 1, charged: 0 });
  });

  it("$split: the parts, and the text twice when it is split", async () => {
    expect(await guarded("$split($a, ',')", { a: "a,b,c" })).toEqual({ value: ["a", "b", "c"], charged: 64 + 3 * 8 + 2 * 5 });
    expect(await guarded("$split($a, /,/)", { a: "a,b,c" })).toEqual({ value: ["a", "b", "c"], charged: 64 + 3 * 8 + 2 * 5 });
    expect(await guarded("$split($a, ',')", { a: "abc" })).toEqual({ value: ["abc"], charged: 64 + 8 });
    expect(await guarded("$split($a, ',')", {})).toEqual({ value: undefined, charged: 0 });
  });

  it("$zip: each tuple before they are built", async () => {
    const two = await guarded("$zip($a, $b)", { a: [1, 2, 3], b: [4, 5] });
    expect(two).toEqual({
      value: [
        [1, 4],
        [2, 5],
      ],
      charged: 2 * (64 + 2 * 8) + (64 + 2 * 8),
    });
    const three = await guarded("$zip($a, $b, $c)", { a: [1, 2, 3], b: [4, 5], c: [7, 8, 9] });
    expect(three).toEqual({
      value: [
        [1, 4, 7],
        [2, 5, 8],
      ],
      charged: 2 * (64 + 3 * 8) + (64 + 2 * 8),
    });
    expect(await guarded("$zip($a, 1)", { a: [1, 2] })).toMatchObject({ value: [[1, 1]] });
  });

  it("$clone: its JSON twice", async () => {
    const { charged } = (await guarded("$clone($a)", { a: { k: "abc" } })) as { charged: number };
    const { charged: longer } = (await guarded("$clone($a)", { a: { k: "abcdefghij" } })) as { charged: number };
    expect(longer - charged).toBe(2 * 7);
  });

  it("$match: each match, its text twice, and the array", async () => {
    const one = (await guarded("$match($a, /b+/)", { a: "abb" })) as { charged: number; value: unknown };
    const two = (await guarded("$match($a, /b+/)", { a: "abbbb" })) as { charged: number };
    expect(one.value).toEqual({ match: "bb", index: 1, groups: [] });
    expect(two.charged - one.charged).toBe(2 * 2);
  });
});

describe("bounded built-ins", () => {
  it("refuse results over the limits, and give them at the limits", async () => {
    const cases: [string, Record<string, unknown>, unknown][] = [
      ["$pad('a', 20)", {}, { value: `a${" ".repeat(19)}` }],
      ["$pad('a', 21)", {}, { error: "size: $pad's result of 21 characters is over the limit of 20" }],
      ["$pad('a', -21)", {}, { error: "size: $pad's result of 21 characters is over the limit of 20" }],
      ["$pad('a', 20.9, 'xy')", {}, { value: `a${"xy".repeat(9)}x` }],
      // 20 code points, but 39 UTF-16 units.
      ["$pad('a', 20, '😀')", {}, { error: "size: $pad's result of 39 characters is over the limit of 20" }],
      ["$pad('a', -20, '😀')", {}, { error: "size: $pad's result of 39 characters is over the limit of 20" }],
      ["$pad('a', 10, '😀')", {}, { value: `a${"😀".repeat(9)}` }],
      ["$pad($a, 3)", {}, { value: undefined }],
      ["$join($a, '--')", { a: [] }, { value: "" }],
      ["$join($a)", {}, { value: undefined }],
      ["$clone($a)", {}, { value: undefined }],
      ["$length($a)", {}, { value: undefined }],
      ["$substring($a, 1)", {}, { value: undefined }],
      ["$trim($a)", {}, { value: undefined }],
      ["$encodeUrl($a)", {}, { value: undefined }],
      ["$join($a, '-')", { a: ["aaaa", "bbbb", "cccc", "ddd"] }, { value: "aaaa-bbbb-cccc-ddd" }],
      [
        "$join($a, '--')",
        { a: ["aaaa", "bbbb", "cccc", "ddd"] },
        { error: "size: $join's result of 21 characters is over the limit of 20" },
      ],
      ["$join($a)", { a: ["0123456789", "0123456789"] }, { value: "01234567890123456789" }],
      ["$join($a)", { a: ["0123456789", "0123456789", "x"] }, { error: "size: $join's result of 21 characters is over the limit of 20" }],
      ["$split($a, ',')", { a: "a,b,c,d,e" }, { value: ["a", "b", "c", "d", "e"] }],
      ["$split($a, ',')", { a: "a,b,c,d,e,f" }, { error: "size: $split's result of 6 items is over the limit of 5" }],
      ["$split($a, /,/)", { a: "a,b,c,d,e,f" }, { error: "size: $split's result of 6 items is over the limit of 5" }],
      ["$split($a, ',', 3)", { a: "a,b,c,d,e,f,g" }, { value: ["a", "b", "c"] }],
      ["$match($a, /a/)", { a: "aaaaaa" }, { error: "size: $match's result of 6 items is over the limit of 5" }],
      ["$count($match($a, /a/, 2))", { a: "aaaaaa" }, { value: 2 }],
      ["$replace($a, 'a', '0123')", { a: "aaaaa" }, { value: "01230123012301230123" }],
      ["$replace($a, 'a', '0123')", { a: "aaaaaa" }, { error: "size: $replace's result of 24 characters is over the limit of 20" }],
      ["$replace($a, 'a', '0123', 2)", { a: "aaaaaa" }, { value: "01230123aaaa" }],
      [
        "$replace($a, 'a', 'b', -1)",
        { a: "aaa" },
        { error: "D3011: Fourth argument of replace function must evaluate to a positive number" },
      ],
      ["$replace($a, /a/, 'b')", { a: "aaa" }, { value: "bbb" }],
      [
        "$zip($a, $b)",
        { a: [1, 2, 3, 4, 5, 6], b: [1, 2, 3, 4, 5, 6] },
        { error: "size: $zip's result of 6 items is over the limit of 5" },
      ],
      ["$string($a)", { a: { a: "x".repeat(12) } }, { value: `{"a":"${"x".repeat(12)}"}` }],
      ["$string($a)", { a: { a: "x".repeat(13) } }, { error: "size: $string's result is over the limit of 20 characters" }],
      ["$clone($a)", { a: { a: "x".repeat(13) } }, { error: "size: the JSON of a value to transform is over the limit of 20 characters" }],
    ];
    for (const [source, bindings, expected] of cases) {
      expect({ source, result: await guarded(source, bindings, SMALL) }).toEqual({ source, result: expect.objectContaining(expected) });
    }
  });

  it("$string: a string as it is, a function as nothing, no infinite number", async () => {
    expect(await guarded("$string($a)", { a: "x" })).toMatchObject({ value: "x" });
    expect(await guarded("$string(function($x) { $x })")).toMatchObject({ value: "" });
    expect(await guarded("$string($a)", {})).toMatchObject({ value: undefined });
    expect(await guarded("$string(1/0)")).toEqual({ error: "D3001: Attempting to invoke string function on Infinity or NaN" });
    expect(await guarded("$string($a)", { a: [1, { b: 2 }] })).toMatchObject({ value: '[1,{"b":2}]' });
    expect(await guarded("$string($a, true)", { a: { b: 2 } })).toMatchObject({ value: '{\n  "b": 2\n}' });
    expect(await guarded("$string($a, false)", { a: { b: 2 } })).toMatchObject({ value: '{"b":2}' });
    expect(await guarded("$string(items.v)", {}, DEFAULTS, { items: [{ v: 1 }, { v: 2 }] })).toMatchObject({ value: "[1,2]" });
    expect(await guarded("$string(items.v)", {}, DEFAULTS, { items: [{ v: { x: 1 } }] })).toMatchObject({ value: '{"x":1}' });
  });

  it("give what JSONata's own give for the cases they hand to it", async () => {
    const sources: [string, unknown][] = [
      ["$sort($a)", [1, "a"]],
      ["$sort($a)", [0, -0, 1]],
      ["$sort($a)", ["b", 1]],
      ["$sort($a)", [3]],
      ["$sort($a, function($x, $y) { $x < $y })", [1, 3, 2]],
      ["$sort($a)", [{ a: 1 }, { a: 0 }]],
      ["$distinct(items.v)", [{ v: 1 }, { v: 1 }]],
      ["$distinct(items.v)", [{ v: 1 }, { v: 2 }, { v: 1 }]],
      ["$distinct($a)", [[1], [1], { a: 1 }, { a: 1 }, "1", 1]],
      ["$distinct($a)", 5],
      ["$reverse($a)", [1]],
      ["$reverse($a)", [1, 2, 3]],
      ["$toMillis('2020-01-01T10:00:00Z')", null],
      ["$length($a)", "a😀b"],
      ["$substring($a, 1)", "a😀bc"],
      ["$substring($a, -3)", "a😀bc"],
      ["$substring($a, -9, 2)", "a😀bc"],
      ["$substring($a, 1, 0)", "a😀bc"],
      ["$substring($a, 1, -1)", "a😀bc"],
      ["$substring($a, -2, 5)", "a😀bc"],
      ["$substring($a, 1, 2)", "abc"],
      ["$pad($a, 5)", "a😀"],
      ["$pad($a, -5, '😀x')", "ab"],
      ["$pad($a, 5, '')", "ab"],
      ["$pad($a, 2)", "abc"],
      ["$distinct($a)", [{ a: 1, b: 2 }, { b: 2, a: 1 }, { a: 1 }]],
      ["$substring($a, 5)", "a😀bc"],
      ["$substring($a, 3, 9)", "a😀bc"],
      ["$substring($a, 1, 2)", "a\uD83D\uDE00\uDBFF\uDC00b"],
      ["$length($a)", "\uD800\uDFFF\uDFFF\uD800"],
      ["$replace($a, '', 'x')", "abc"],
      ["$replace($a, 'b', function($m) { $uppercase($m.match) })", "abcb"],
      ["$replace($a, /b/, '[$0]', 1)", "abcb"],
      ["$replace($a, 'b', 'x', 1)", "abcb"],
      ["$replace($a, 'b', 'x', 0)", "abcb"],
      ["$split($a, '', 2)", "abc"],
      ["$match($a, /b/, 1)", "abcb"],
    ];
    for (const [source, a] of sources) {
      const bindings = { a };
      const input = { items: a };
      let expected: unknown;
      try {
        const value = await jsonata(source).evaluate(input, bindings);
        expected = { value: value === undefined ? undefined : JSON.parse(JSON.stringify(value)) };
      } catch (error) {
        const { code, message } = error as { code?: string; message?: string };
        expected = { error: `${code}: ${message}` };
      }
      expect({ source, a, result: await guarded(source, bindings, DEFAULTS, input) }).toEqual({
        source,
        a,
        result: expect.objectContaining(expected as object),
      });
    }
  });

  it("refuse pictures longer than the limit, and take ones at it", async () => {
    const at = "#".repeat(MAX_PICTURE_LENGTH);
    expect(await guarded("$formatNumber(1, $p)", { p: at })).toMatchObject({ value: "1" });
    expect(await guarded("$formatNumber(1, $p)", { p: `${at}#` })).toEqual({
      error: "size: $formatNumber's picture of 1001 characters is over the limit of 1000",
    });
    expect(await guarded("$toMillis('2020', $p)", { p: `${at}#` })).toEqual({
      error: "size: $toMillis's picture of 1001 characters is over the limit of 1000",
    });
    expect(await guarded("$toMillis('2020', '[Y0001]')")).toMatchObject({ value: 1577836800000 });
  });
});

describe("evaluation steps whose work grows faster than their input", () => {
  /** An object of `keys` keys each holding an array of `items` numbers. */
  const arrays = (keys: number, items: number) =>
    Object.fromEntries(Array.from({ length: keys }, (_, k) => [`k${k}`, Array.from({ length: items }, (_, i) => i)]));

  it("a wildcard copies the values gathered so far at each array: past 2,000,000 items it fails before", async () => {
    // Over k keys of 10 items, the copies are 10 + 20 + ... + 10k = 5k(k + 1): 1,993,960 for 631, 2,000,280 for 632.
    const failure = { error: `size: a wildcard (*) over an object holding many arrays would copy over ${MAX_WILDCARD_WORK} items` };
    expect(await guarded("$count($a.*)", { a: arrays(631, 10) })).toMatchObject({ value: 6310 });
    expect(await guarded("$count($a.*)", { a: arrays(632, 10) })).toEqual(failure);
    // The wildcard over the input (JSONata wraps it in an array of one).
    expect(await guarded("$count(*)", {}, DEFAULTS, arrays(631, 10))).toMatchObject({ value: 6310 });
    expect(await guarded("$count(*)", {}, DEFAULTS, arrays(632, 10))).toEqual(failure);
    // Nested arrays are counted flattened: 631 keys of [[5 items], [5 items]].
    const nested = Object.fromEntries(
      Array.from({ length: 632 }, (_, k) => [
        `k${k}`,
        [
          [1, 2, 3, 4, 5],
          [6, 7, 8, 9, 10],
        ],
      ]),
    );
    expect(await guarded("$count($a.*)", { a: nested })).toEqual(failure);
    // A value that is not an array is one item gathered, copied at each later array: 10 before 631
    // arrays add 10 * 631 = 6310 copies, 9 add 5679.
    const values = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`v${i}`, i]));
    expect(await guarded("$count($a.*)", { a: { ...arrays(631, 10), ...values(10) } })).toMatchObject({ value: 6320 });
    expect(await guarded("$count($a.*)", { a: { ...values(9), ...arrays(631, 10) } })).toMatchObject({ value: 6319 });
    expect(await guarded("$count($a.*)", { a: { ...values(10), ...arrays(631, 10) } })).toEqual(failure);
  });

  it("a wildcard over anything but an object is left to JSONata", async () => {
    expect(await guarded("$a.*", { a: "text" })).toMatchObject({ value: undefined });
    expect(await guarded("$a.*", { a: [1, 2] })).toMatchObject({ value: undefined });
    expect(await guarded("$a.*", { a: null })).toMatchObject({ value: undefined });
    expect(await guarded("$a.*", { a: {} })).toMatchObject({ value: undefined });
  });

  it("an object constructor over @ or # bindings groups at most 2,000 tuples per key expression and evaluation", async () => {
    const failure = { error: `size: an object constructor over @ or # bindings may group at most ${MAX_GROUPED_TUPLES} tuples` };
    expect(await guarded("[1..2000]#$i{ 'k': $count($i) }")).toMatchObject({ value: { k: 2000 } });
    expect(await guarded("[1..2001]#$i{ 'k': $count($i) }")).toEqual(failure);
    // Two key expressions count apart.
    expect(await guarded("[1..1500]#$i{ 'a': $count($i), 'b': $count($i) }")).toMatchObject({ value: { a: 1500, b: 1500 } });
    // Two evaluations count apart.
    expect(await guarded("[[1..1500]#$i{ 'a': $count($i) }, [1..1500]#$i{ 'a': $count($i) }]")).toMatchObject({
      value: [{ a: 1500 }, { a: 1500 }],
    });
    // Without @ or #, nothing is counted.
    expect(await guarded("[1..3000]{ 'k': $count($) }")).toMatchObject({ value: { k: 3000 } });
  });

  it("JSONata's guardrails fail an evaluation with their codes: too deep, then too long", async () => {
    expect(await guarded("( $f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(1000) )")).toEqual({
      error: "D1011: Stack overflow. Check for non-terminating recursive function.  Consider rewriting as tail-recursive",
    });
    const expression = jsonata("( $f := function($n) { $n = 0 ? 0 : $f($n - 1) }; $f(100000000) )", { timeout: 50, stack: 500 });
    guardExpression(expression, DEFAULTS);
    const started = Date.now();
    await expect(expression.evaluate({}, { [RUN_GUARD_BINDING]: newGuard() })).rejects.toMatchObject({ code: "D1012" });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe("built-ins that work in slices", () => {
  /** What an evaluation gives within `ms` milliseconds, or "pending". */
  async function within(ms: number, source: string, bindings: Record<string, unknown>, isOver: () => boolean): Promise<unknown> {
    const expression = jsonata(source, { timeout: 60_000, stack: 500, RegexEngine: LinearRegex as unknown as RegExpConstructor });
    guardExpression(expression, DEFAULTS);
    const guard = new RunGuard(1e12, isOver, () => new Error("over"));
    // A fresh time slice, so the built-in itself is the first to find it over.
    await new Promise((resolve) => setImmediate(resolve));
    const pending = expression.evaluate({}, { ...bindings, [RUN_GUARD_BINDING]: guard });
    const timer = new Promise((resolve) => setTimeout(() => resolve("pending"), ms));
    return Promise.race([pending, timer]);
  }

  const text = "a".repeat(20_000);

  const numbers = Array.from({ length: 20_000 }, (_, i) => i);

  it.each<[string, Record<string, unknown>, (value: unknown) => void]>([
    ["$match($a, /a/)", { a: text }, (value) => expect(value).toHaveLength(20_000)],
    ["$split($a, /a/)", { a: text.slice(1) }, (value) => expect(value).toHaveLength(20_000)],
    ["$replace($a, /a/, 'b')", { a: text }, (value) => expect(value).toBe("b".repeat(20_000))],
  ])("%s gives its result while the run is on, and stops once it is over", async (source, bindings, check) => {
    check(await within(60_000, source, bindings, () => false));
    // Long enough for the built-in to finish, were it to go on.
    expect(await within(2000, source, bindings, () => true)).toBe("pending");
  });

  // $zip checks the run only once its time slice (5 ms) is over, and a fast Node zips 20,000 tuples
  // within one slice, so whether it stops on its own is left to the slices suite, not timed here.
  it("$zip($a, $a, $a, $a, $a, $a, $a, $a) gives its result while the run is on", async () => {
    expect(await within(60_000, "$zip($a, $a, $a, $a, $a, $a, $a, $a)", { a: numbers }, () => false)).toHaveLength(20_000);
  });
});
