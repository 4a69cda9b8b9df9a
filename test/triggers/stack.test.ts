import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { compileStack, DEFAULT_STACK_LIMITS, type StackLimits, stackProblems } from "../../src/triggers/compile/stack.js";
import { assertProperty } from "../helpers/property.js";

/** The error compileStack throws for a stack; fails the test when it compiles. */
function refusal(stack: unknown, limits?: Partial<StackLimits>): AppError {
  try {
    compileStack(stack, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error(`compiled: ${JSON.stringify(stack)?.slice(0, 200)}`);
}

/** Asserts a refusal with BAD_USER_INPUT, `details.path` and a message starting with the path. */
function expectRefused(stack: unknown, path: string, message: string | RegExp, limits?: Partial<StackLimits>): void {
  const error = refusal(stack, limits);
  expect(error.code).toBe("BAD_USER_INPUT");
  expect(error.details).toEqual({ path });
  expect(error.message.startsWith(`${path}: `)).toBe(true);
  expect(error.message).toMatch(message);
}

/** `depth` if steps nested in one another around a log step. */
function nestedIfs(depth: number): unknown[] {
  let steps: unknown[] = [{ log: "1" }];
  for (let i = 0; i < depth; i++) steps = [{ if: "true", then: steps }];
  return steps;
}

describe("compileStack", () => {
  it("compiles every step kind, nested, with each step's path and kind", () => {
    const compiled = compileStack(
      [
        { var: "n", value: "1" },
        { set: "payload.a.0.b", value: "$n" },
        { if: "true", then: [{ log: "1" }, { drop: true }], else: [{ reject: "'no'", code: "NO" }, { return: "2" }] },
        { http: { url: "'https://example.com/'" }, as: "r" },
        { reject: "'no'" },
      ],
      { allowHttpSteps: true },
    );
    expect(compiled.steps.map((step) => [step.path, step.kind])).toEqual([
      ["stack[0]", "var"],
      ["stack[1]", "set"],
      ["stack[2]", "if"],
      ["stack[3]", "http"],
      ["stack[4]", "reject"],
    ]);
    expect(compileStack([]).steps).toEqual([]);
  });

  it("exports its default limits", () => {
    expect(DEFAULT_STACK_LIMITS).toEqual({
      maxSteps: 100,
      maxDepth: 10,
      maxExpressionLength: 4096,
      maxStackBytes: 65536,
      expressionTimeoutMs: 1000,
      maxEvaluationDepth: 500,
      maxSequenceLength: 20_000,
      maxStringLength: 1_000_000,
      maxObjectKeys: 10_000,
      allowHttpSteps: false,
    });
  });

  it("names the field's path, however deep, e.g. stack[2].then[0].value", () => {
    expectRefused(
      [{ log: "1" }, { log: "2" }, { if: "true", then: [{ set: "payload.a", value: "1 +" }] }],
      "stack[2].then[0].value",
      /^stack\[2\]\.then\[0\]\.value: expression does not compile: .+/,
    );
    expectRefused(
      [{ if: "true", then: [], else: [{ log: "1" }, { if: "false", then: [{ nope: 1 }] }] }],
      "stack[0].else[1].then[0]",
      /unknown step kind/,
    );
    expectRefused([{ if: "(", then: [] }], "stack[0].if", /expression does not compile/);
  });

  it.each<[string, unknown]>([
    ["a string", "[]"],
    ["an object", { steps: [] }],
    ["null", null],
    ["nothing", undefined],
  ])("refuses a stack that is %s", (_, stack) => {
    expectRefused(stack, "stack", "must be an array of steps");
  });

  it.each([[1], [null], ["log"], [[{ log: "1" }]]])("refuses the step %j", (step) => {
    expectRefused([step], "stack[0]", "a step must be an object");
  });

  it("refuses unknown step kinds, several kinds in one step, and unknown fields", () => {
    expectRefused(
      [{ nope: 1 }],
      "stack[0]",
      /unknown step kind \(keys: nope\); expected one of var, set, return, if, drop, reject, log, http/,
    );
    expectRefused([{}], "stack[0]", /unknown step kind \(keys: none\)/);
    expectRefused([{ nope: 1, other: 2 }], "stack[0]", /unknown step kind \(keys: nope, other\); expected one of /);
    expectRefused([{ toString: "1" }], "stack[0]", /unknown step kind/);
    expectRefused([{ log: "1", drop: true }], "stack[0]", "a step has exactly one kind, found log and drop");
    expectRefused([{ log: "1", extra: 1 }], "stack[0].extra", "unknown field for a log step");
    expectRefused([{ var: "x", value: "1", code: "X" }], "stack[0].code", "unknown field for a var step");
    expectRefused(JSON.parse('[{"log": "1", "__proto__": {"drop": true}}]'), "stack[0].__proto__", "unknown field");
  });

  it.each<[unknown, string, string]>([
    [{ var: "x" }, "stack[0].value", "a var step needs value"],
    [{ set: "payload.x" }, "stack[0].value", "a set step needs value"],
    [{ if: "true" }, "stack[0].then", "a if step needs then"],
  ])("refuses the step %j, which misses a field", (step, path, message) => {
    expectRefused([step], path, message);
  });

  it.each<[unknown, string, string]>([
    [{ log: 42 }, "stack[0].log", "must be a JSONata expression"],
    [{ log: "" }, "stack[0].log", "must be a JSONata expression"],
    [{ log: "  " }, "stack[0].log", "must be a JSONata expression"],
    [{ return: null }, "stack[0].return", "must be a JSONata expression"],
    [{ var: "x", value: true }, "stack[0].value", "must be a JSONata expression"],
    [{ set: "payload.x", value: ["1"] }, "stack[0].value", "must be a JSONata expression"],
    [{ reject: 1 }, "stack[0].reject", "must be a JSONata expression"],
    [{ if: false, then: [] }, "stack[0].if", "must be a JSONata expression"],
    [{ if: "true", then: {} }, "stack[0].then", "must be an array of steps"],
    [{ if: "true", then: [], else: null }, "stack[0].else", "must be an array of steps"],
    [{ drop: "yes" }, "stack[0].drop", "must be true"],
    [{ drop: false }, "stack[0].drop", "must be true"],
    [{ set: 5, value: "1" }, "stack[0].set", "must be a path"],
    [{ reject: "'x'", code: 42 }, "stack[0].code", "must be an error code"],
  ])("refuses the step %j, which has a field of the wrong type", (step, path, message) => {
    expectRefused([step], path, message);
  });

  it.each(["(", "1 +", "payload.", "$f(", "'unterminated", "{ 'a': }", "/unterminated"])(
    "refuses the expression %j, which does not compile",
    (expression) => {
      expectRefused([{ log: expression }], "stack[0].log", /^stack\[0\]\.log: expression does not compile: .+ \(S0\d{3}/);
    },
  );

  it.each([1, "1x", "a-b", "", "$x", "response", "eval"])("refuses the variable name %j", (name) => {
    expectRefused([{ var: name, value: "1" }], "stack[0].var", "must be a variable name");
  });

  it("accepts identifiers as variable names", () => {
    expect(() =>
      compileStack([
        { var: "_a1", value: "1" },
        { var: "Response", value: "2" },
      ]),
    ).not.toThrow();
  });

  it.each([
    ["other.x", "must start with payload or commandOptions"],
    ["Payload.x", "must start with payload or commandOptions"],
    ["", "must start with payload or commandOptions"],
    ["payload..x", "is not a valid path segment"],
    ["payload.", "is not a valid path segment"],
    ["payload.a-b", '"a-b" is not a valid path segment'],
    ["payload.1a", '"1a" is not a valid path segment'],
    ["payload.__proto__.x", '"__proto__" may not appear in a path'],
    ["payload.constructor", '"constructor" may not appear in a path'],
    ["commandOptions.a.prototype", '"prototype" may not appear in a path'],
  ])("refuses the set path %j", (target, message) => {
    expectRefused([{ set: target, value: "1" }], "stack[0].set", message);
  });

  it("accepts set paths of names and indexes under payload or commandOptions", () => {
    for (const target of ["payload", "commandOptions", "payload.a.b_c.0.d", "commandOptions.to"]) {
      expect(() => compileStack([{ set: target, value: "1" }])).not.toThrow();
    }
  });

  it.each(["lower", "1ABC", "_ABC", "WITH-DASH", "", "A".repeat(65)])("refuses the reject code %j", (code) => {
    expectRefused([{ reject: "'x'", code }], "stack[0].code", "must be an error code");
  });

  it("accepts reject codes of capitals, digits and _, up to 64 characters", () => {
    expect(() =>
      compileStack([
        { reject: "'x'", code: "A" },
        { reject: "'x'", code: `B${"_9".repeat(31)}Z` },
      ]),
    ).not.toThrow();
  });

  it("refuses more steps than the limit, nested ones counted", () => {
    expect(() => compileStack(Array.from({ length: 100 }, () => ({ log: "1" })))).not.toThrow();
    expectRefused(
      Array.from({ length: 101 }, () => ({ log: "1" })),
      "stack[100]",
      "a stack may have at most 100 steps",
    );
    const nested = [...Array.from({ length: 98 }, () => ({ log: "1" })), { if: "true", then: [{ log: "1" }, { log: "2" }] }];
    expectRefused(nested, "stack[98].then[1]", "at most 100 steps");
    expectRefused([{ log: "1" }, { log: "2" }, { log: "3" }], "stack[2]", "at most 2 steps", { maxSteps: 2 });
  });

  it("refuses if steps nested deeper than the limit", () => {
    expect(() => compileStack(nestedIfs(10))).not.toThrow();
    const error = refusal(nestedIfs(11));
    expect(error.message).toMatch(/^stack\[0\](\.then\[0\]){10}\.then: if steps may nest at most 10 deep$/);
    expect(() => compileStack(nestedIfs(3), { maxDepth: 2 })).toThrow("nest at most 2 deep");
  });

  it("refuses expressions longer than the limit", () => {
    const longest = `${"1+".repeat(2047)}1`.padEnd(4096, " ");
    expect(() => compileStack([{ log: longest }])).not.toThrow();
    expectRefused([{ log: `${longest} ` }], "stack[0].log", "an expression may have at most 4096 characters");
    expectRefused([{ log: "1 + 1" }], "stack[0].log", "at most 4 characters", { maxExpressionLength: 4 });
  });

  it("refuses stacks larger than the limit as JSON", () => {
    const big = Array.from({ length: 20 }, () => ({ log: `'${"x".repeat(3500)}'` }));
    expectRefused(big, "stack", "a stack may be at most 65536 bytes as JSON");
    expect(() => compileStack(big, { maxStackBytes: 100_000 })).not.toThrow();
    expectRefused([{ log: "1" }], "stack", "at most 10 bytes", { maxStackBytes: 10 });
  });

  it.each([
    "$match(payload.text, /(a+)\\1/)",
    "$contains(payload.text, /x(?=y)/i)",
    "payload.items[$contains(name, /(?<!a)b/)]",
    "( $f := function($s) { $replace($s, /(\\w)\\1/, '') }; $f(payload.text) )",
  ])("refuses the regular expression in %s, which cannot run in linear time, at save", (expression) => {
    expectRefused(
      [{ if: "true", then: [{ set: "payload.x", value: expression }] }],
      "stack[0].then[0].value",
      /^stack\[0\]\.then\[0\]\.value: regex: \/.+\/\w* is not supported \(.+\)/,
    );
  });

  it("accepts ordinary regular expressions, and ones that would backtrack badly on a backtracking engine", () => {
    expect(() => compileStack([{ log: "$match(payload.text, /^[a-z]+\\d*$/i)" }, { log: "$split(payload.text, /,\\s*/)" }])).not.toThrow();
    expect(() => compileStack([{ log: "$match(payload.text, /(a+)+$/)" }, { log: "$contains(payload.text, /(a|aa)+$/m)" }])).not.toThrow();
  });

  describe("http steps", () => {
    const allowed = { allowHttpSteps: true };

    it("are refused unless the server allows them", () => {
      expectRefused([{ http: { url: "'https://example.com/'" }, as: "r" }], "stack[0].http", /WEBHOOK_SECRET/);
    });

    it.each<[unknown, string, string]>([
      [{ http: { url: "'x'" } }, "stack[0].as", "a http step needs as"],
      [{ http: { url: "'x'" }, as: "response" }, "stack[0].as", "must be a variable name"],
      [{ http: "'x'", as: "r" }, "stack[0].http", "must be an object"],
      [{ http: {}, as: "r" }, "stack[0].http.url", "must be a JSONata expression"],
      [{ http: { url: "'x'", verb: "GET" }, as: "r" }, "stack[0].http.verb", "unknown field for an http step"],
      [{ http: { url: "'x'", method: "TRACE" }, as: "r" }, "stack[0].http.method", "must be GET, POST, PUT, PATCH or DELETE"],
      [{ http: { url: "'x'", timeoutMs: 10 ** 9 }, as: "r" }, "stack[0].http.timeoutMs", "must be a whole number of milliseconds"],
      [{ http: { url: "'x'", headers: [] }, as: "r" }, "stack[0].http.headers", "must be an object of header expressions"],
      [
        { http: { url: "'x'", headers: { "webhook-signature": "'forged'" } }, as: "r" },
        "stack[0].http.headers.webhook-signature",
        "is not a header a trigger may set",
      ],
      [{ http: { url: "'x'", headers: { "x-a": "(" } }, as: "r" }, "stack[0].http.headers.x-a", "expression does not compile"],
      [{ http: { url: "'x'", method: "GET", body: "payload" }, as: "r" }, "stack[0].http.body", "a GET request has no body"],
      [{ http: { url: "$match('aaa', /(a)\\1/)" }, as: "r" }, "stack[0].http.url", "regex: /(a)\\1/g is not supported"],
    ])("refuses %j", (step, path, message) => {
      expectRefused([step], path, message, allowed);
    });
  });
});

describe("stackProblems", () => {
  it("lists each step's first problem, nested ones too, and goes on after a step that fails", () => {
    const stack = [
      { log: "1" },
      { set: "payload.a", value: "(((" },
      { if: "true", then: [{ var: "1bad", value: "1" }, { log: "" }] },
      { nope: 1 },
    ];
    expect(stackProblems(stack).map((problem) => problem.details.path)).toEqual([
      "stack[1].value",
      "stack[2].then[0].var",
      "stack[2].then[1].log",
      "stack[3]",
    ]);
    expect(stackProblems([{ log: "1" }])).toEqual([]);
    expect(stackProblems("not a list").map((problem) => problem.message)).toEqual(["stack: must be an array of steps"]);
    // The step limit ends the list: the steps past it are not each reported.
    const tooMany = Array.from({ length: 5 }, () => ({ log: "(" }));
    expect(stackProblems(tooMany, { maxSteps: 2 }).map((problem) => problem.details.path)).toEqual([
      "stack[0].log",
      "stack[1].log",
      "stack[2]",
    ]);
  });

  it("starts with the problem compileStack refuses the stack for, and is empty exactly when it compiles", () => {
    const expression = fc.constantFrom("payload.text", "(((", "", "$uppercase(payload.text)", "'a' &");
    const step: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      step: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.record({ log: expression }),
        fc.record({ set: fc.constantFrom("payload.a", "other.a"), value: expression }),
        fc.record({ var: fc.constantFrom("v", "1bad"), value: expression }),
        fc.record({ if: expression, then: fc.array(tie("step"), { maxLength: 3 }) }),
        fc.record({ unknown: expression }),
        fc.constant("not a step"),
      ),
    })).step;
    assertProperty(
      fc.property(fc.array(step, { maxLength: 6 }), fc.integer({ min: 1, max: 8 }), (stack, maxSteps) => {
        const problems = stackProblems(stack, { maxSteps });
        let thrown: unknown;
        try {
          compileStack(stack, { maxSteps });
        } catch (error) {
          thrown = error;
        }
        if (thrown === undefined) expect(problems).toEqual([]);
        else expect(problems[0]).toEqual(thrown);
      }),
      { numRuns: 300 },
    );
  });
});
