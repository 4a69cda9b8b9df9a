import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { DEFER, planExpression, simpleBoolean } from "../../src/triggers/compile/fast-path.js";
import { compileStack, DEFAULT_STACK_LIMITS } from "../../src/triggers/compile/stack.js";
import { guardExpression, RUN_GUARD_BINDING, RunGuard } from "../../src/triggers/guard/guard.js";
import { runStack, type TriggerInput } from "../../src/triggers/run/engine.js";
import { assertProperty } from "../helpers/property.js";

const NAMES = ["a", "b", "text", "length", "constructor", "__proto__", "x y"];
const FUNCTIONS = ["length", "uppercase", "lowercase", "trim", "string", "boolean"];

/** Strings that tell the built-ins apart: case, whitespace runs, surrogate pairs, lone surrogates, ß. */
const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ maxLength: 6, unit: "grapheme" }),
  fc.constantFrom("", " ", "  a \t\n b  ", "ß", "straße", "😀x", "\uD800", "İ", "ǅ"),
);

/** JSON values with keys an expression names; objects made with own `__proto__` keys as JSON.parse makes them. */
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    text,
    fc.double(),
    fc.constantFrom(0, -0, 1, 42),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...NAMES), tie("value"), { maxKeys: 4 }).map((o) => JSON.parse(JSON.stringify(o)) as unknown),
  ),
})).value;

/** Expression sources: simple ones (planned) and a few that are not (deferred or not planned). */
const expression: fc.Arbitrary<string> = fc.letrec((tie) => ({
  expr: fc.oneof(
    { depthSize: "small" },
    fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 3 }).map((names) => names.map((n) => `\`${n}\``).join(".")),
    fc
      .tuple(fc.constantFrom("v", "w", "length", "unbound", "", "$"), fc.array(fc.constantFrom(...NAMES), { maxLength: 2 }))
      .map(([variable, names]) => [`$${variable}`, ...names.map((n) => `\`${n}\``)].join(".")),
    fc.tuple(fc.constantFrom(...FUNCTIONS), tie("expr")).map(([name, argument]) => `$${name}(${argument})`),
    fc.constantFrom("'lit'", '"a\\"b"', "42", "-1.5", "true", "false", "null", "payload.a[0]", "payload.a[]", "payload.*", "$uppercase()"),
  ),
})).expr;

const scope = fc.record({
  input: fc.record({ payload: json, a: json, text: json }),
  v: json,
  w: json,
  shadow: fc.boolean(),
});

/** The guard a run would have, with a budget that the property runs into now and then. */
function guard(maxMemoryBytes: number): RunGuard {
  return new RunGuard(
    maxMemoryBytes,
    () => false,
    () => new Error("over"),
  );
}

function same(a: unknown, b: unknown): boolean {
  return typeof a === "object" && a !== null ? isDeepStrictEqual(a, b) : Object.is(a, b);
}

describe("simple expressions evaluated without JSONata", () => {
  it("give what guarded JSONata gives, charge the run's memory budget alike, and defer whenever JSONata fails", async () => {
    let planned = 0;
    await assertProperty(
      fc.asyncProperty(
        expression,
        scope,
        fc.constantFrom(4, 1000),
        fc.constantFrom(150, 1_000_000),
        async (source, { input, v, w, shadow }, maxStringLength, maxMemoryBytes) => {
          const limits = { ...DEFAULT_STACK_LIMITS, maxStringLength };
          const compiled = jsonata(source, { stack: limits.maxEvaluationDepth, sequence: limits.maxSequenceLength });
          guardExpression(compiled, limits);
          const plan = planExpression(compiled.ast(), maxStringLength);
          if (!plan) return;
          const bindings: Record<string, unknown> = { v, w, ...(shadow ? { length: "shadowed" } : {}) };
          const jsonataGuard = guard(maxMemoryBytes);
          let expected: { value: unknown } | { error: unknown };
          try {
            expected = { value: await compiled.evaluate(input, { ...bindings, [RUN_GUARD_BINDING]: jsonataGuard }) };
          } catch (error) {
            expected = { error };
          }
          const planGuard = guard(maxMemoryBytes);
          const value = plan({ input, bindings, guard: planGuard });
          if (value === DEFER) {
            expect(planGuard.charged).toBe(0);
            return;
          }
          planned++;
          expect(expected).toHaveProperty("value");
          expect(same(value, (expected as { value: unknown }).value)).toBe(true);
          expect(planGuard.charged).toBe(jsonataGuard.charged);
        },
      ),
      { numRuns: 1500 },
    );
    // The property says something only if many expressions were answered without JSONata.
    expect(planned).toBeGreaterThan(300);
  });

  it("are planned for literals, variables, paths and one-argument string built-ins only", () => {
    const plannable = (source: string) => planExpression(jsonata(source).ast(), 1000) !== undefined;
    for (const source of ["payload.text", "$n", "$n.a.b", "$length(payload.text)", "$uppercase($trim(x))", "'a'", "1", "null"]) {
      expect(plannable(source), source).toBe(true);
    }
    for (const source of ["payload.a[0]", "payload[x]", "$", "$$.a", "a & b", "$length()", "$pad(a, 3)", "$string(a)", "a.b{}"]) {
      expect(plannable(source), source).toBe(false);
    }
  });

  it("take JSONata's $boolean for nothing, null, booleans, strings and numbers, and defer for the rest", async () => {
    const boolean = jsonata("$boolean($value)");
    await assertProperty(
      fc.asyncProperty(json, async (value) => {
        const simple = simpleBoolean(value);
        let expected: boolean | typeof DEFER;
        try {
          expected = (await boolean.evaluate(undefined, { value })) === true;
        } catch {
          expected = DEFER; // an infinite number
        }
        if (typeof value === "object" && value !== null) expect(simple).toBe(DEFER);
        else expect(simple).toBe(expected);
      }),
      { numRuns: 500 },
    );
    expect(simpleBoolean(undefined)).toBe(false);
  });
});

describe("the response, copied on write", () => {
  const input = (payload: unknown): TriggerInput => ({
    action: "message",
    command: "message",
    channel: "c",
    commandOptions: null,
    payload,
    client: { id: "x", authenticated: false, extras: null },
  });
  const deepFreeze = <T>(value: T): T => {
    if (typeof value === "object" && value !== null) {
      for (const inner of Object.values(value)) deepFreeze(inner);
      Object.freeze(value);
    }
    return value;
  };

  it("sets paths as a deep copy would, leaves the (frozen) input alone, and says MODIFIED exactly when the JSON differs", async () => {
    const path = fc.array(fc.constantFrom("a", "b", "0", "1"), { minLength: 1, maxLength: 3 });
    const writable = (node: unknown, segment: string) =>
      !Array.isArray(node) || (/^(0|[1-9]\d*)$/.test(segment) && Number(segment) <= node.length);
    const plain = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;
    await assertProperty(
      fc.asyncProperty(json, fc.array(fc.tuple(path, json), { maxLength: 4 }), async (payload, sets) => {
        const values = Object.fromEntries(sets.map(([, value], i) => [`v${i}`, value]));
        const event = deepFreeze({ ...input(plain(payload)), client: { id: "x", authenticated: false, extras: plain(values) } });
        const stack = sets.map(([target], i) => ({ set: ["payload", ...target].join("."), value: `client.extras.v${i}` }));
        const result = await runStack(compileStack(stack), event as TriggerInput);

        // The model: a deep copy of the response, written in place as the stack says.
        const model = { payload: plain(event.payload) } as Record<string, unknown>;
        for (const [target, value] of sets) {
          let node = model;
          const segments = ["payload", ...target];
          for (const segment of segments.slice(0, -1)) {
            const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
            if (typeof next !== "object" || next === null) {
              if (!writable(node, segment)) return void expect(result.outcome).toBe("FAILED");
              node[segment] = {};
            }
            node = node[segment] as Record<string, unknown>;
          }
          if (!writable(node, segments.at(-1)!)) return void expect(result.outcome).toBe("FAILED");
          node[segments.at(-1)!] = plain(value);
        }
        expect(JSON.stringify(result.payload)).toBe(JSON.stringify(model.payload));
        expect(result.outcome).toBe(isDeepStrictEqual(plain(model.payload), plain(event.payload)) ? "DELIVERED" : "MODIFIED");
      }),
      { numRuns: 400 },
    );
  });
});

describe("simple expressions over plain objects: answered whenever JSONata answers", () => {
  /** Short strings (within the smaller size limit below), finite numbers, booleans, null. */
  const leaf = fc.oneof(
    fc.string({ maxLength: 8 }),
    text,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
  );
  /** Nested plain objects, no arrays: every path an expression names walks objects only. */
  const tree: fc.Arbitrary<Record<string, unknown>> = fc
    .letrec((tie) => ({
      node: fc.dictionary(fc.constantFrom(...NAMES), fc.oneof({ depthSize: "small" }, leaf, tie("node")), { maxKeys: 4 }),
    }))
    .node.map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>);

  /** A path through `root` by `choices`: a key it has, or one it lacks; it ends at a value that is not an object. */
  function walk(root: Record<string, unknown>, choices: number[]): string[] {
    const names: string[] = [];
    let node: unknown = root;
    for (const choice of choices) {
      if (typeof node !== "object" || node === null) break;
      const keys = Object.keys(node);
      const name = choice < keys.length ? keys[choice]! : "missing";
      names.push(name);
      node = Object.hasOwn(node, name) ? (node as Record<string, unknown>)[name] : undefined;
    }
    return names;
  }
  const quoted = (names: string[]) => names.map((n) => `\`${n}\``);

  const cases = fc
    .record({
      payload: tree,
      v: tree,
      w: leaf,
      choices: fc.array(fc.nat({ max: 4 }), { maxLength: 4 }),
      form: fc.constantFrom("input", "variable", "leaf", "literal"),
      literal: fc.constantFrom("'lit'", '"a\\"b"', "''", "42", "-1.5", "0", "true", "false", "null"),
      functions: fc.array(fc.constantFrom("length", "uppercase", "lowercase", "trim"), { maxLength: 2 }),
      maxStringLength: fc.constantFrom(8, 1000),
      precharged: fc.nat({ max: 1000 }),
    })
    .map((c) => {
      let source: string;
      if (c.form === "input") source = ["payload", ...quoted(walk(c.payload, c.choices))].join(".");
      else if (c.form === "variable") source = ["$v", ...quoted(walk(c.v, c.choices))].join(".");
      else source = c.form === "leaf" ? "$w" : c.literal;
      for (const name of c.functions) source = `$${name}(${source})`;
      return { ...c, source };
    });

  async function byJsonata(
    source: string,
    input: unknown,
    bindings: Record<string, unknown>,
    jsonataGuard: RunGuard,
    maxStringLength: number,
  ) {
    const limits = { ...DEFAULT_STACK_LIMITS, maxStringLength };
    const compiled = jsonata(source, { stack: limits.maxEvaluationDepth, sequence: limits.maxSequenceLength });
    guardExpression(compiled, limits);
    try {
      return { value: (await compiled.evaluate(input, { ...bindings, [RUN_GUARD_BINDING]: jsonataGuard })) as unknown };
    } catch (error) {
      return { error };
    }
  }

  it("gives JSONata's value and charge, twice over in one run (an object a path gives is charged once), and spends a budget to the byte", async () => {
    await assertProperty(
      fc.asyncProperty(cases, async ({ payload, v, w, source, maxStringLength, precharged }) => {
        const input = { payload };
        const bindings = { v, w };
        const plan = planExpression(jsonata(source).ast(), maxStringLength);
        expect(plan, source).toBeDefined();
        const jsonataGuard = guard(1_000_000);
        const first = await byJsonata(source, input, bindings, jsonataGuard, maxStringLength);
        const once = jsonataGuard.charged;
        const second = await byJsonata(source, input, bindings, jsonataGuard, maxStringLength);
        const planGuard = guard(1_000_000);
        const answers = [plan!({ input, bindings, guard: planGuard }), plan!({ input, bindings, guard: planGuard })];
        if ("error" in first) {
          // JSONata's type error (a built-in given a number, an object...) or a size limit: left to JSONata.
          expect(answers).toEqual([DEFER, DEFER]);
          expect(planGuard.charged).toBe(0);
          return;
        }
        expect(second).toEqual(first);
        for (const answer of answers) expect(same(answer, first.value), source).toBe(true);
        expect(planGuard.charged).toBe(jsonataGuard.charged);

        // With a budget of exactly what it needs on top of what the run spent already, it answers; a byte less, JSONata's memory error is left to JSONata.
        const exact = guard(precharged + once);
        exact.charged = precharged;
        expect(same(plan!({ input, bindings, guard: exact }), first.value)).toBe(true);
        expect(exact.charged).toBe(precharged + once);
        if (once > 0) {
          const short = guard(precharged + once - 1);
          short.charged = precharged;
          expect(plan!({ input, bindings, guard: short })).toBe(DEFER);
          expect(short.charged).toBe(precharged);
        }
      }),
      { numRuns: 600 },
    );
  });

  it("answers for strings up to the size limit and long texts but those $trim walks in chunks", () => {
    const answer = (source: string, value: unknown, maxStringLength: number) =>
      planExpression(jsonata(source).ast(), maxStringLength)!({ input: {}, bindings: { v: value }, guard: guard(1e9) });
    expect(answer("$v", "abcd", 4)).toBe("abcd");
    expect(answer("$v", "abcde", 4)).toBe(DEFER);
    expect(answer("$uppercase($v)", "ab", 2)).toBe("AB");
    expect(answer("$uppercase($v)", "ß", 1)).toBe(DEFER);
    expect(answer("$uppercase($v)", "ß", 2)).toBe("SS");
    const long = `  ${"a".repeat(70_000)}  `;
    expect(answer("$uppercase($v)", long, 1e6)).toBe(long.toUpperCase());
    expect(answer("$length($v)", long, 1e6)).toBe(long.length);
    expect(answer("$trim($v)", long, 1e6)).toBe(DEFER);
    expect(answer("$trim($v)", `  ${"a".repeat(65_530)}  `, 1e6)).toBe("a".repeat(65_530));
    expect(answer("$v", Number.POSITIVE_INFINITY, 1e6)).toBe(DEFER);
    expect(answer("$v", Number.NaN, 1e6)).toBe(DEFER);
    expect(answer("$v", () => 1, 1e6)).toBe(DEFER);
    expect(answer("$v", [1], 1e6)).toBe(DEFER);
    expect(answer("$v", new Date(0), 1e6)).toBe(DEFER);
    expect(answer("$v", Object.create(null), 1e6)).toEqual({});
    expect(answer("$v", { _jsonata_lambda: true }, 1e6)).toBe(DEFER);
    expect(answer("$v", { _jsonata_function: true }, 1e6)).toBe(DEFER);
    expect(answer("$v.a", { a: [1] }, 1e6)).toBe(DEFER);
    // JSONata gives nothing for these: so may a plan, or it leaves them to JSONata.
    for (const a of [1, null, "x", true]) expect([undefined, DEFER]).toContain(answer("$v.a.b", { a }, 1e6));
    expect(answer("$v.a", undefined, 1e6)).toBeUndefined();
    expect(answer("$uppercase($v)", undefined, 1e6)).toBeUndefined();
    expect(answer("$uppercase($v)", 1, 1e6)).toBe(DEFER);
  });

  it("does not plan $$, $ or anything with a predicate, a stage or a flag", () => {
    const plannable = (source: string) => planExpression(jsonata(source).ast(), 1000) !== undefined;
    for (const source of [
      "$$",
      "$",
      "$.a",
      "a[0].b",
      "a.b[0]",
      "$v[0]",
      "$v.a[0]",
      "a#$i",
      "a@$x",
      "$length(a[0])",
      "$length($$)",
      "$x($y)",
      "$v()",
      "a.$length(b)",
    ]) {
      expect(plannable(source), source).toBe(false);
    }
    for (const source of ["`x y`", "a.`__proto__`", "$v.`constructor`", "$lowercase('A')", '$trim("a")', "$length(1.5)", "true", "false"]) {
      expect(plannable(source), source).toBe(true);
    }
  });

  it("plans no literal or variable node whose value is not of its kind (an AST not made by JSONata's parser)", () => {
    const scope = { input: {}, bindings: { "1": "bound" } as Record<string, unknown>, guard: guard(1e9) };
    for (const node of [
      { type: "string", value: 42 },
      { type: "string", value: true },
      { type: "number", value: "42" },
      { type: "number", value: null },
      { type: "number", value: Number.POSITIVE_INFINITY },
      { type: "value", value: "x" },
      { type: "value", value: 1 },
      { type: "variable", value: 1 },
    ]) {
      expect(planExpression(node, 1000), JSON.stringify(node)).toBeUndefined();
    }
    expect(planExpression({ type: "string", value: "s" }, 1000)!(scope)).toBe("s");
    expect(planExpression({ type: "number", value: 4 }, 1000)!(scope)).toBe(4);
    expect(planExpression({ type: "value", value: null }, 1000)!(scope)).toBeNull();
    expect(planExpression({ type: "variable", value: "1" }, 1000)!(scope)).toBe("bound");
  });
});
