import fc from "fast-check";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import {
  type CompiledStep,
  compileStack,
  describeError,
  type StackLimits,
  type StepContext,
  stackProblems,
} from "../../src/triggers/compile/stack.js";
import { type RunOptions, runStack, type TriggerInput } from "../../src/triggers/run/engine.js";
import type { StateAccess } from "../../src/triggers/state/state.js";
import type { WebhookClient, WebhookRequest } from "../../src/triggers/webhook/client.js";
import { assertProperty } from "../helpers/property.js";

function input(payload: unknown): TriggerInput {
  return {
    action: "message",
    command: "message",
    channel: "room:1",
    commandOptions: null,
    payload,
    client: { id: "c1", authenticated: true, extras: null },
  };
}

function run(stack: unknown, payload: unknown = {}, options: RunOptions = {}, limits: Partial<StackLimits> = {}) {
  return runStack(compileStack(stack, limits), input(payload), options);
}

/** The message compileStack refuses a stack with; fails the test when it compiles. */
function refusal(stack: unknown, limits?: Partial<StackLimits>): string {
  try {
    compileStack(stack, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).message;
  }
  throw new Error(`compiled: ${JSON.stringify(stack)}`);
}

/** An in-memory state that records every call made to it. */
function fakeState(initial: Record<string, unknown> = {}) {
  const values = new Map(Object.entries(initial));
  const calls: unknown[][] = [];
  const state: StateAccess = {
    get: async (key) => {
      calls.push(["get", key]);
      return values.get(key) ?? null;
    },
    put: async (key, value, ttl) => {
      calls.push(["put", key, value, ttl]);
      values.set(key, value);
    },
    incr: async (key, by, ttl) => {
      calls.push(["incr", key, by, ttl]);
      const next = ((values.get(key) as number | undefined) ?? 0) + by;
      values.set(key, next);
      return next;
    },
    delete: async (key) => {
      calls.push(["delete", key]);
      values.delete(key);
    },
  };
  return { state, calls, values };
}

/** The path, kind and result of each step run (with `trace`). */
function traced(result: Awaited<ReturnType<typeof run>>) {
  return result.trace?.map(({ path, step, result }) => ({ path, step, result }));
}

describe("state steps", () => {
  it("get reads the key and binds the value; put, incr and delete write it, each traced with what it did", async () => {
    const { state, calls, values } = fakeState({ seen: 4 });
    const result = await run(
      [
        { get: "'seen'", as: "seen" },
        { put: "'last' & 'Text'", value: "payload.text" },
        { put: "'kept'", value: "{ 'n': $seen }", ttl: "60" },
        { put: "'none'", value: "payload.missing", ttl: "null" },
        { incr: "'seen'" },
        { incr: "'count'", by: "-3", ttl: "1.5", as: "count" },
        { delete: "'gone'" },
        { set: "payload.seen", value: "$seen" },
        { set: "payload.count", value: "$count" },
      ],
      { text: "hi" },
      { state, trace: true },
    );
    expect(result.error).toBeUndefined();
    expect(result.payload).toEqual({ text: "hi", seen: 4, count: -3 });
    expect(calls).toEqual([
      ["get", "seen"],
      ["put", "lastText", "hi", undefined],
      ["put", "kept", { n: 4 }, 60],
      ["put", "none", null, undefined],
      ["incr", "seen", 1, undefined],
      ["incr", "count", -3, 1.5],
      ["delete", "gone"],
    ]);
    expect(Object.fromEntries(values)).toEqual({ seen: 5, lastText: "hi", kept: { n: 4 }, none: null, count: -3 });
    expect(traced(result)?.slice(0, 7)).toEqual([
      { path: "stack[0]", step: "get", result: 4 },
      { path: "stack[1]", step: "put", result: { put: "lastText", value: "hi", ttl: null } },
      { path: "stack[2]", step: "put", result: { put: "kept", value: { n: 4 }, ttl: 60 } },
      { path: "stack[3]", step: "put", result: { put: "none", value: null, ttl: null } },
      { path: "stack[4]", step: "incr", result: { incr: "seen", value: 5, ttl: null } },
      { path: "stack[5]", step: "incr", result: { incr: "count", value: -3, ttl: 1.5 } },
      { path: "stack[6]", step: "delete", result: { delete: "gone" } },
    ]);
  });

  it("incr binds nothing without as", async () => {
    const { state } = fakeState({ n: 1 });
    const result = await run(
      [
        { var: "n", value: "'before'" },
        { incr: "'n'" },
        { set: "payload.n", value: "$n" },
        // Under no name at all.
        { set: "payload.u", value: "$undefined" },
      ],
      {},
      { state },
    );
    expect(result.payload).toEqual({ n: "before", u: null });
  });

  it('refuse fields of other types whose text would pass (true, ["CODE"])', () => {
    expect(refusal([{ var: true, value: "1" }])).toMatch(/^stack\[0\]\.var: must be a variable name/);
    expect(refusal([{ get: "'k'", as: ["v"] }])).toMatch(/^stack\[0\]\.as: must be a variable name/);
    expect(refusal([{ reject: "'x'", code: ["NO"] }])).toMatch(/^stack\[0\]\.code: must be an error code/);
  });

  it.each<[unknown, string]>([
    [{ get: "'k'" }, "stack[0].as: a get step needs as"],
    [{ put: "'k'" }, "stack[0].value: a put step needs value"],
    [{ get: "'k'", as: "1x" }, "stack[0].as: must be a variable name"],
    [{ incr: "'k'", as: "eval" }, "stack[0].as: must be a variable name"],
    [{ get: "'k'", as: "v", ttl: "1" }, "stack[0].ttl: unknown field for a get step"],
    [{ delete: "'k'", as: "v" }, "stack[0].as: unknown field for a delete step"],
    [{ put: "'k'", value: "1", by: "1" }, "stack[0].by: unknown field for a put step"],
    [{ incr: "'k'", value: "1" }, "stack[0].value: unknown field for a incr step"],
    [{ put: "'k'", value: "1", ttl: "" }, "stack[0].ttl: must be a JSONata expression"],
    [{ incr: "'k'", by: 1 }, "stack[0].by: must be a JSONata expression"],
    [{ incr: "'k'", ttl: "(" }, "stack[0].ttl: expression does not compile"],
    [{ delete: "" }, "stack[0].delete: must be a JSONata expression"],
    [{ get: 1, as: "v" }, "stack[0].get: must be a JSONata expression"],
  ])("refuses the state step %j", (step, message) => {
    expect(refusal([step]).startsWith(message)).toBe(true);
  });

  it("fail without state, naming the step", async () => {
    for (const step of [{ get: "'k'", as: "v" }, { put: "'k'", value: "1" }, { incr: "'k'" }, { delete: "'k'" }]) {
      const result = await run([{ log: "1" }, step]);
      expect(result.outcome).toBe("FAILED");
      expect(result.error).toEqual({ code: "TRIGGER_FAILED", message: "stack[1]: state steps are not available in this run" });
    }
  });

  it("take keys of 1 to 200 characters, and say what else they got", async () => {
    const { state, calls } = fakeState();
    const longest = "k".repeat(200);
    expect((await run([{ get: "payload.k", as: "v" }], { k: longest }, { state })).error).toBeUndefined();
    expect((await run([{ delete: "payload.k" }], { k: "x" }, { state })).error).toBeUndefined();
    expect(calls).toEqual([
      ["get", longest],
      ["delete", "x"],
    ]);
    const prefix = "stack[0]: the key must evaluate to a string of 1 to 200 characters, got";
    const cases: [unknown, string][] = [
      [`${longest}k`, `${JSON.stringify(`${longest}k`).slice(0, 60)}...`],
      ["", '""'],
      [42, "42"],
      [null, "null"],
      [undefined, "nothing"],
      [["a", "b"], '["a","b"]'],
      [{ a: "x".repeat(52) }, `{"a":"${"x".repeat(52)}"}`],
      [{ a: "x".repeat(53) }, `{"a":"${"x".repeat(53)}"...`],
    ];
    for (const [key, described] of cases) {
      for (const step of [
        { get: "payload.k", as: "v" },
        { put: "payload.k", value: "1" },
        { incr: "payload.k" },
        { delete: "payload.k" },
      ]) {
        const result = await run([step], { k: key }, { state });
        expect(result.error?.message).toBe(`${prefix} ${described}`);
      }
    }
    expect(calls).toHaveLength(2);
  });

  it("take a ttl above 0 and at most a year, or null for none", async () => {
    const { state, calls } = fakeState();
    for (const ttl of ["0.001", "31536000", "null", "payload.missing"]) {
      expect((await run([{ put: "'k'", value: "1", ttl }], {}, { state })).error).toBeUndefined();
      expect((await run([{ incr: "'k'", ttl }], {}, { state })).error).toBeUndefined();
    }
    expect(calls.map((call) => call.at(-1))).toEqual([0.001, 0.001, 31536000, 31536000, undefined, undefined, undefined, undefined]);
    for (const [ttl, described] of [
      ["0", "0"],
      ["-1", "-1"],
      ["31536001", "31536001"],
      ["'60'", '"60"'],
      ["true", "true"],
      ["[60]", "[60]"],
    ]) {
      for (const step of [
        { put: "'k'", value: "1", ttl },
        { incr: "'k'", ttl },
      ]) {
        const result = await run([step], {}, { state });
        expect(result.error?.message).toBe(
          `stack[0]: ttl must evaluate to a number of seconds above 0 and at most 31536000, got ${described}`,
        );
      }
    }
    expect(calls).toHaveLength(8);
  });

  it("incr takes a whole number to add, 1 when not given", async () => {
    const { state, calls } = fakeState();
    await run([{ incr: "'a'", by: "9007199254740991" }, { incr: "'b'", by: "0" }, { incr: "'c'" }], {}, { state });
    expect(calls).toEqual([
      ["incr", "a", 9007199254740991, undefined],
      ["incr", "b", 0, undefined],
      ["incr", "c", 1, undefined],
    ]);
    for (const [by, described] of [
      ["1.5", "1.5"],
      ["9007199254740992", "9007199254740992"],
      ["'1'", '"1"'],
      ["payload.missing", "nothing"],
      ["null", "null"],
    ]) {
      const result = await run([{ incr: "'k'", by }], {}, { state });
      expect(result.error?.message).toBe(`stack[0]: by must evaluate to a whole number, got ${described}`);
    }
    expect(calls).toHaveLength(3);
  });

  it("write nothing once the run is over", async () => {
    const { state, calls } = fakeState();
    const steps = compileStack([{ get: "'k'", as: "v" }, { put: "'k'", value: "1" }, { incr: "'k'" }, { delete: "'k'" }]).steps;
    const context = stepContext({ state, over: true });
    for (const step of steps) await expect(step.run(context)).rejects.toThrow(/^the trigger run is over$/);
    expect(calls).toEqual([]);
  });
});

/** A step context outside the engine: expressions evaluated plainly, bindings and writes recorded. */
function stepContext(overrides: Partial<StepContext> = {}) {
  const bound: Record<string, unknown> = {};
  const context: StepContext = {
    evaluate: async (expression) => {
      const value = await expression.expression.evaluate({}, bound);
      return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
    },
    bind: (name, value) => {
      bound[name] = value;
    },
    set: () => {},
    log: () => {},
    run: async (steps: readonly CompiledStep[]) => {
      for (const step of steps) {
        const { stop } = await step.run(context);
        if (stop) return stop;
      }
      return undefined;
    },
    deadline: Date.now() + 1000,
    over: false,
    signal: new AbortController().signal,
    webhooks: undefined,
    state: undefined,
    ...overrides,
  };
  return context;
}

describe("if steps", () => {
  it("take the then branch exactly when the condition is true by JSONata's $boolean", async () => {
    const value = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.integer({ min: -2, max: 2 }),
        fc.constantFrom(0.5, -0, "", "a", " ", true, false, null),
        fc.array(tie("value"), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom("a", "b"), tie("value"), { maxKeys: 2 }),
      ),
    })).value;
    const check = jsonata("$boolean(v)");
    await assertProperty(
      fc.asyncProperty(fc.option(value, { nil: undefined }), async (v) => {
        const result = await run(
          [{ if: "payload.v", then: [{ set: "payload.branch", value: "'then'" }], else: [{ set: "payload.branch", value: "'else'" }] }],
          { v },
          { trace: true },
        );
        const expected = (await check.evaluate({ v })) === true;
        expect(result.payload).toEqual({ v, branch: expected ? "then" : "else" });
        expect(result.trace?.at(-1)).toMatchObject({ path: "stack[0]", step: "if", result: expected });
      }),
      { numRuns: 150 },
    );
  });
});

describe("what a step gives", () => {
  it("return, drop and reject end the stack, each saying how; if gives its condition and the stop of the branch it ran", async () => {
    const context = stepContext();
    const results = [];
    for (const step of compileStack([
      { return: "1 + 1" },
      { drop: true },
      { reject: "'no'", code: "NOPE" },
      { if: "false", then: [{ drop: true }] },
      { if: "true", then: [{ log: "1" }, { return: "3" }, { drop: true }] },
      { if: "false", then: [{ drop: true }], else: [{ reject: "{ 'a': 1 }" }] },
      { log: "'x'" },
    ]).steps) {
      results.push(await step.run(context));
    }
    expect(results).toEqual([
      { result: 2, stop: { kind: "return" } },
      { stop: { kind: "drop" } },
      { result: "no", stop: { kind: "reject", code: "NOPE", message: "no" } },
      { result: false, stop: undefined },
      { result: true, stop: { kind: "return" } },
      { result: false, stop: { kind: "reject", code: "TRIGGER_REJECTED", message: '{"a":1}' } },
      { result: "x" },
    ]);
  });

  it("an if step whose condition is false and has no else runs nothing, and the stack goes on", async () => {
    expect(await run([{ if: "false", then: [{ log: "'then'" }] }, { log: "'after'" }])).toMatchObject({
      outcome: "DELIVERED",
      log: ["after"],
    });
  });
});

describe("reject steps", () => {
  it("take the message as text: a string as it is, anything else as JSON, nothing as null", async () => {
    for (const [expression, message] of [
      ["'no way'", "no way"],
      ["{ 'why': [1, 'x'] }", '{"why":[1,"x"]}'],
      ["payload.missing", "null"],
      ["42", "42"],
    ]) {
      const result = await run([{ reject: expression }, { log: "'after'" }]);
      expect(result).toMatchObject({ outcome: "REJECTED", error: { code: "TRIGGER_REJECTED", message }, log: [] });
    }
    expect((await run([{ reject: "'x'", code: "SLOW_DOWN" }])).error).toEqual({ code: "SLOW_DOWN", message: "x" });
  });
});

describe("http steps", () => {
  const allowed = { allowHttpSteps: true };
  function fakeWebhooks() {
    const requests: WebhookRequest[] = [];
    const client: WebhookClient = {
      send: async (request) => {
        requests.push(request);
        return { status: 201, headers: { "x-r": "1" }, body: "ok" };
      },
    };
    return { client, requests };
  }

  it("POST by default, with no body unless given, and header values as text or JSON, none for null", async () => {
    const { client, requests } = fakeWebhooks();
    const result = await run(
      [
        {
          http: {
            url: "'https://example.com/a'",
            headers: { "x-obj": "{ 'a': 1 }", "x-null": "null", "x-none": "payload.missing", "x-text": "'t'" },
          },
          as: "r",
        },
        { set: "payload.r", value: "$r" },
      ],
      {},
      { webhooks: client, timeoutMs: 1000 },
      allowed,
    );
    expect(result.payload).toEqual({ r: { status: 201, headers: { "x-r": "1" }, body: "ok" } });
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request).toMatchObject({ url: "https://example.com/a", method: "POST", headers: { "x-obj": '{"a":1}', "x-text": "t" } });
    expect(Object.keys(request!.headers!)).toEqual(["x-obj", "x-text"]);
    expect(request!.body).toBeUndefined();
    // The run's remaining time, when the step sets none.
    expect(request!.timeoutMs).toBeGreaterThan(800);
    expect(request!.timeoutMs).toBeLessThanOrEqual(1000);
  });

  it("sends a body with every method but GET, and takes the smaller of its timeout and the run's remaining time", async () => {
    const { client, requests } = fakeWebhooks();
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const result = await run(
        [{ http: { url: "'https://example.com/'", method, body: "payload", timeoutMs: 30_000 }, as: "r" }],
        { a: 1 },
        { webhooks: client, timeoutMs: 1000 },
        allowed,
      );
      expect(result.error).toBeUndefined();
    }
    await run([{ http: { url: "'https://example.com/'", method: "GET", timeoutMs: 1 }, as: "r" }], {}, { webhooks: client }, allowed);
    expect(requests.map((request) => [request.method, request.body])).toEqual([
      ["POST", { a: 1 }],
      ["PUT", { a: 1 }],
      ["PATCH", { a: 1 }],
      ["DELETE", { a: 1 }],
      ["GET", undefined],
    ]);
    for (const request of requests.slice(0, 4)) {
      expect(request.timeoutMs).toBeGreaterThan(800);
      expect(request.timeoutMs).toBeLessThanOrEqual(1000);
    }
    expect(requests[4]!.timeoutMs).toBe(1);
  });

  it("gives a request at least 1 ms, even past the run's deadline", async () => {
    const { client, requests } = fakeWebhooks();
    const [step] = compileStack([{ http: { url: "'https://example.com/'" }, as: "r" }], allowed).steps;
    await step!.run(stepContext({ webhooks: client, deadline: Date.now() - 5000 }));
    expect(requests[0]!.timeoutMs).toBe(1);
  });

  it.each<[unknown, string]>([
    [{ http: [], as: "r" }, "stack[0].http: must be an object with url, method, headers, body, timeoutMs"],
    [{ http: null, as: "r" }, "stack[0].http: must be an object with url, method, headers, body, timeoutMs"],
    [{ http: { url: "'x'", method: 1 }, as: "r" }, "stack[0].http.method: must be GET, POST, PUT, PATCH or DELETE"],
    [{ http: { url: "'x'", method: "post" }, as: "r" }, "stack[0].http.method: must be GET, POST, PUT, PATCH or DELETE"],
    [{ http: { url: "'x'", timeoutMs: 0 }, as: "r" }, "stack[0].http.timeoutMs: must be a whole number of milliseconds, 1..30000"],
    [{ http: { url: "'x'", timeoutMs: 30_001 }, as: "r" }, "stack[0].http.timeoutMs: must be a whole number of milliseconds, 1..30000"],
    [{ http: { url: "'x'", timeoutMs: 1.5 }, as: "r" }, "stack[0].http.timeoutMs: must be a whole number of milliseconds, 1..30000"],
    [{ http: { url: "'x'", timeoutMs: "100" }, as: "r" }, "stack[0].http.timeoutMs: must be a whole number of milliseconds, 1..30000"],
    [{ http: { url: "'x'", headers: null }, as: "r" }, "stack[0].http.headers: must be an object of header expressions"],
    [{ http: { url: "'x'", headers: "x" }, as: "r" }, "stack[0].http.headers: must be an object of header expressions"],
    [{ http: { url: "'x'", method: "GET", body: "1" }, as: "r" }, "stack[0].http.body: a GET request has no body"],
    [{ http: { url: "'x'", body: "(" }, as: "r" }, "stack[0].http.body: expression does not compile"],
    [{ http: { url: "'x'" }, as: "r", extra: 1 }, "stack[0].extra: unknown field for a http step"],
  ])("refuses %j", (step, message) => {
    expect(refusal([step], allowed).startsWith(message)).toBe(true);
  });

  it("accepts timeouts of 1 and 30000 ms, and every method", () => {
    for (const http of [
      { url: "'x'", timeoutMs: 1 },
      { url: "'x'", timeoutMs: 30_000 },
      ...["GET", "POST", "PUT", "PATCH", "DELETE"].map((method) => ({ url: "'x'", method })),
    ]) {
      expect(compileStack([{ http, as: "r" }], allowed).steps).toHaveLength(1);
    }
  });
});

describe("fields", () => {
  it("are a step's own: one its prototype carries is not there", async () => {
    const withInherited = (inherited: object, own: object) => Object.assign(Object.create(inherited) as object, own);
    expect(refusal([withInherited({ value: "1" }, { var: "x" })])).toBe("stack[0].value: a var step needs value");
    const stack = [
      withInherited({ code: "INHERITED" }, { if: "false", then: [] }),
      withInherited({ else: [{ log: "'else'" }] }, { if: "false", then: [] }),
      withInherited({ code: "INHERITED" }, { reject: "'no'" }),
    ];
    expect(await runStack(compileStack(stack), input({}))).toMatchObject({
      outcome: "REJECTED",
      log: [],
      error: { code: "TRIGGER_REJECTED", message: "no" },
    });
  });
});

describe("stackProblems", () => {
  it("lists only the stack's problems: any other error is thrown", () => {
    /** A stack whose one step's field throws once read `reads` times (it is read to check the stack's JSON first). */
    const throwing = (reads: number) => {
      let read = 0;
      return [
        {
          get log() {
            if (++read > reads) throw new Error("boom");
            return "1";
          },
        },
      ];
    };
    expect(() => compileStack(throwing(0))).toThrow(/^boom$/);
    expect(() => stackProblems(throwing(0))).toThrow(/^boom$/);
    // Past the checks of the stack as a whole, when the step compiles.
    expect(() => compileStack(throwing(2))).toThrow(/^boom$/);
    expect(() => stackProblems(throwing(2))).toThrow(/^boom$/);
    expect(stackProblems(throwing(3))).toEqual([]);
  });
});

describe("regular expressions", () => {
  it("match in linear time when the stack runs, where a backtracking engine would take seconds", async () => {
    // Natively, /(a+)+$/ tries every split of the a's before failing at the b: seconds for 26 of them.
    const started = Date.now();
    const result = await run([{ log: "$contains(payload.t, /(a+)+$/)" }], { t: `${"a".repeat(26)}b` }, { timeoutMs: 500 });
    expect(result).toMatchObject({ outcome: "DELIVERED", log: [false] });
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe("describeError", () => {
  it("describes JSONata's errors with their code and position, and anything else by its message or as text", () => {
    expect(describeError({ message: "Bad", code: "T1006", position: 19 })).toBe("Bad (T1006 at position 19)");
    expect(describeError({ message: "Bad", code: "T1006", position: 0 })).toBe("Bad (T1006 at position 0)");
    expect(describeError({ message: "Bad", code: "T1006" })).toBe("Bad (T1006)");
    expect(describeError({ message: "Bad", code: "T1006", position: "19" })).toBe("Bad (T1006)");
    expect(describeError({ message: "Bad", code: 7, position: 1 })).toBe("Bad");
    expect(describeError(new Error("boom"))).toBe("boom");
    expect(describeError("text")).toBe("text");
    expect(describeError(null)).toBe("null");
    expect(describeError(undefined)).toBe("undefined");
    expect(describeError(3)).toBe("3");
  });

  it("is what a compile error says after the path", () => {
    expect(refusal([{ log: "1 +" }])).toBe("stack[0].log: expression does not compile: Unexpected end of expression (S0207 at position 3)");
    expect(refusal([{ log: "$f(" }])).toBe(
      'stack[0].log: expression does not compile: Expected ")" before end of expression (S0203 at position 3)',
    );
  });
});

describe("the stack as a whole", () => {
  it("must be plain JSON, nest at most 64 levels, and count its size in UTF-8 bytes", () => {
    expect(refusal([{ log: "1" }, 1n])).toBe("stack: must be plain JSON");
    let deep: unknown[] = [];
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(refusal(deep)).toBe("stack: nests deeper than 64 levels");
    // '[{"log":"\'é\'"}]' is 15 characters and 16 bytes.
    const stack = [{ log: "'é'" }];
    expect(JSON.stringify(stack)).toHaveLength(15);
    expect(compileStack(stack, { maxStackBytes: 16 }).steps).toHaveLength(1);
    expect(refusal(stack, { maxStackBytes: 15 })).toBe("stack: a stack may be at most 15 bytes as JSON");
  });
});
