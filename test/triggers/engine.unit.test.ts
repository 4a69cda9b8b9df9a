import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runStack, type TriggerInput } from "../../src/triggers/engine.js";
import { compileStack } from "../../src/triggers/stack.js";

const input = (payload: unknown, commandOptions: unknown = null): TriggerInput => ({
  action: "message",
  command: "message",
  channel: "room:1",
  commandOptions,
  payload,
  client: { id: "c1", authenticated: true, extras: { role: "admin" } },
});

const run = (stack: unknown, payload: unknown = { text: "hi" }, options: { timeoutMs?: number; trace?: boolean } = {}) =>
  runStack(compileStack(stack), input(payload), { timeoutMs: options.timeoutMs ?? 1000, trace: options.trace });

describe("compileStack", () => {
  it.each([
    [[{ nope: 1 }], "stack[0]: unknown step"],
    [[{ log: "1", drop: true }], "stack[0]: a step has exactly one kind"],
    [[{ log: "1", extra: 1 }], "stack[0].extra: unknown field"],
    [[{ var: "x" }], "stack[0].value: a var step needs value"],
    [[{ var: "1x", value: "1" }], "stack[0].var: must be a variable name"],
    [[{ var: "response", value: "1" }], "stack[0].var: must be a variable name"],
    [[{ set: "other.x", value: "1" }], "stack[0].set: must start with payload or commandOptions"],
    [[{ set: "payload.__proto__.x", value: "1" }], 'stack[0].set: "__proto__" may not appear'],
    [[{ set: "payload.constructor", value: "1" }], 'stack[0].set: "constructor" may not appear'],
    [[{ drop: "yes" }], "stack[0].drop: must be true"],
    [[{ reject: "'x'", code: "lower" }], "stack[0].code: must be an error code"],
    [[{ log: "" }], "stack[0].log: must be a JSONata expression"],
    [[{ log: 42 }], "stack[0].log: must be a JSONata expression"],
    [[{ if: "true" }], "stack[0].then: a if step needs then"],
    [[{ if: "true", then: {} }], "stack[0].then: must be an array"],
    [[{ log: "1" }, { if: "true", then: [{ log: "(" }] }], "stack[1].then[0].log: expression does not compile"],
    [[{ log: "$match(payload, /(a+)+$/)" }], "stack[0].log: regular expression /(a+)+$/g can take exponential time"],
    [{ steps: [] }, "stack: must be an array of steps"],
  ])("refuses %j with its path", (stack, message) => {
    expect(() => compileStack(stack)).toThrow(message);
    try {
      compileStack(stack);
    } catch (error) {
      expect(error).toMatchObject({ code: "BAD_USER_INPUT" });
    }
  });

  it("refuses oversized stacks: too many steps, too deep, too long an expression, too many bytes", () => {
    expect(() => compileStack(Array.from({ length: 101 }, () => ({ log: "1" })))).toThrow(/at most 100 steps/);
    let nested: unknown[] = [{ log: "1" }];
    for (let i = 0; i < 11; i++) nested = [{ if: "true", then: nested }];
    expect(() => compileStack(nested)).toThrow(/nest at most 10 deep/);
    expect(() => compileStack([{ log: "1+".repeat(2100) + "1" }])).toThrow(/at most 4096 characters/);
    expect(() => compileStack([{ log: `'${"x".repeat(70_000)}'` }], { maxExpressionLength: 100_000 })).toThrow(/at most 65536 bytes/);
  });
});

describe("runStack", () => {
  it("delivers the input unchanged by default and reports DELIVERED", async () => {
    const result = await run([{ log: "payload.text" }]);
    expect(result).toMatchObject({ outcome: "DELIVERED", payload: { text: "hi" }, commandOptions: null, log: ["hi"] });
  });

  it("binds var steps, sees earlier sets through $response, and reports MODIFIED", async () => {
    const result = await run([
      { var: "greeting", value: "'hello ' & client.id" },
      { set: "payload.greeting", value: "$greeting" },
      { set: "payload.copy", value: "$response.payload.greeting" },
      { set: "commandOptions.seen", value: "true" },
      { set: "payload.deep.er.path", value: "1" },
    ]);
    expect(result.outcome).toBe("MODIFIED");
    expect(result.payload).toEqual({ text: "hi", greeting: "hello c1", copy: "hello c1", deep: { er: { path: 1 } } });
    expect(result.commandOptions).toEqual({ seen: true });
  });

  it("ends the stack on return, replacing the payload", async () => {
    const result = await run([{ return: "{ 'wrapped': payload }" }, { set: "payload.never", value: "1" }]);
    expect(result).toMatchObject({ outcome: "MODIFIED", payload: { wrapped: { text: "hi" } } });
  });

  it("branches on if/then/else with JSONata truthiness", async () => {
    const stack = [{ if: "payload.items", then: [{ set: "payload.branch", value: "'then'" }], else: [{ set: "payload.branch", value: "'else'" }] }];
    expect((await run(stack, { items: [1] })).payload).toMatchObject({ branch: "then" });
    expect((await run(stack, { items: [] })).payload).toMatchObject({ branch: "else" });
    expect((await run(stack, {})).payload).toMatchObject({ branch: "else" });
  });

  it("drops and rejects, with or without a code", async () => {
    expect((await run([{ drop: true }, { log: "'never'" }])).outcome).toBe("DROPPED");
    expect(await run([{ reject: "'no: ' & payload.text", code: "NOPE" }])).toMatchObject({ outcome: "REJECTED", error: { code: "NOPE", message: "no: hi" } });
    expect(await run([{ reject: "'no'" }])).toMatchObject({ outcome: "REJECTED", error: { code: "TRIGGER_REJECTED", message: "no" } });
  });

  it("fails with the step path on evaluation errors and returns the input unchanged", async () => {
    const result = await run([{ set: "payload.x", value: "1" }, { set: "payload.y", value: "$undefinedFunction()" }]);
    expect(result.outcome).toBe("FAILED");
    expect(result.error?.code).toBe("TRIGGER_FAILED");
    expect(result.error?.message).toMatch(/^stack\[1\]:/);
    expect(result.payload).toEqual({ text: "hi" });
  });

  it("traces each step with its path, kind, result or error", async () => {
    const result = await run([{ var: "n", value: "2" }, { if: "$n > 1", then: [{ log: "'big'" }] }, { set: "payload.x", value: "$n * 2" }], { text: "hi" }, { trace: true });
    expect(result.trace?.map((t) => [t.path, t.step, t.result])).toEqual([
      ["stack[0]", "var", 2],
      ["stack[1].then[0]", "log", "big"],
      ["stack[1]", "if", true],
      ["stack[2]", "set", 4],
    ]);
    const failed = await run([{ log: "$nope()" }], {}, { trace: true });
    expect(failed.trace?.[0]).toMatchObject({ path: "stack[0]", step: "log" });
    expect(failed.trace?.[0]?.error).toMatch(/stack\[0\]/);
  });

  it("never changes its input", async () => {
    const payload = { list: [1, 2], nested: { a: 1 } };
    const event = input(payload, { to: "x" });
    const frozen = JSON.stringify(event);
    await runStack(compileStack([{ set: "payload.nested.a", value: "2" }, { set: "commandOptions.to", value: "'y'" }]), event, { timeoutMs: 1000 });
    expect(JSON.stringify(event)).toBe(frozen);
  });
});

describe("guardrails", () => {
  it("stops infinite recursion and endless tail-call loops at the expression time limit", async () => {
    for (const expression of ["( $f := function($x) { $f($x + 1) }; $f(0) )", "( $f := function($x) { $f($x) }; $f(0) )"]) {
      const result = await runStack(compileStack([{ log: expression }], { expressionTimeoutMs: 200 }), input({}), { timeoutMs: 1000 });
      expect(result.outcome).toBe("FAILED");
      expect(result.error?.message).toMatch(/^stack\[0\]: Evaluation timeout after 200 milliseconds/);
    }
  });

  it("stops a stack whose steps together outrun the run's time limit", async () => {
    const slow = "( $f := function($n) { $n > 0 ? $f($n - 1) : 0 }; $f(300) )";
    const result = await run(Array.from({ length: 100 }, () => ({ log: slow })), {}, { timeoutMs: 20 });
    expect(result.outcome).toBe("FAILED");
    expect(result.error?.message).toMatch(/ran out of time/);
  });

  it("fails, rather than misbehaves, when a variable holds a function that refers to itself", async () => {
    const result = await run([{ var: "f", value: "function($x) { $f($x) }" }, { log: "$f(0)" }]);
    expect(result.outcome).toBe("FAILED");
  });

  it("refuses huge sequences without allocating them", async () => {
    expect((await run([{ log: "[1..100000000]" }])).outcome).toBe("FAILED");
    expect((await run([{ log: "$count([1..1000000])" }])).outcome).toBe("FAILED");
  });

  it("disables $eval, so expressions cannot be built at run time", async () => {
    const result = await run([{ log: "$eval('1 + 1')" }]);
    expect(result).toMatchObject({ outcome: "FAILED" });
    expect(result.error?.message).toMatch(/\$eval is disabled/);
  });

  it("lets no __proto__ or constructor trick change any prototype", async () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}');
    const result = await run(
      [
        { set: "payload.copy", value: "payload" },
        { set: "payload.merged", value: "$merge([{}, payload])" },
        { var: "o", value: "$merge([{}, {'__proto__': {'polluted': true}}])" },
        { set: "payload.o", value: "$o" },
      ],
      hostile,
    );
    expect(result.outcome).not.toBe("FAILED");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("properties", () => {
  it("an empty stack delivers any JSON payload unchanged; a set step never throws", async () => {
    const set = compileStack([{ set: "payload.added", value: "payload" }]);
    const empty = compileStack([]);
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (payload) => {
        const same = await runStack(empty, input(payload), { timeoutMs: 1000 });
        expect(same.outcome).toBe("DELIVERED");
        expect(same.payload).toEqual(JSON.parse(JSON.stringify(payload)));
        const changed = await runStack(set, input(payload), { timeoutMs: 1000 });
        expect(["MODIFIED", "DELIVERED", "FAILED"]).toContain(changed.outcome);
      }),
      { numRuns: 200 },
    );
  });
});
