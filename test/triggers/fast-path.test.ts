import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { runStack, type TriggerInput } from "../../src/triggers/engine.js";
import { DEFER, planExpression, simpleBoolean } from "../../src/triggers/fast-path.js";
import { guardExpression, RUN_GUARD_BINDING, RunGuard } from "../../src/triggers/guard.js";
import { compileStack, DEFAULT_STACK_LIMITS } from "../../src/triggers/stack.js";

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
    await fc.assert(
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
    await fc.assert(
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
    await fc.assert(
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
