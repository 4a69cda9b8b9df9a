import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileStack, type StackLimits } from "../../src/triggers/compile/stack.js";
import { type RunOptions, runStack, type StackRunResult, type TriggerInput } from "../../src/triggers/run/engine.js";
import type { WebhookClient, WebhookRequest } from "../../src/triggers/webhook/client.js";
import { assertProperty } from "../helpers/property.js";

function input(payload: unknown, commandOptions: unknown = null): TriggerInput {
  return {
    action: "message",
    command: "message",
    channel: "room:1",
    commandOptions,
    payload,
    client: { id: "c1", authenticated: true, extras: { role: "admin" } },
  };
}

function run(stack: unknown, payload: unknown = { text: "hi" }, options: RunOptions = {}, limits: Partial<StackLimits> = {}) {
  return runStack(compileStack(stack, limits), input(payload), options);
}

/** Freezes a value and everything in it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** A slow but finite expression (a few milliseconds). */
const SLOW = "$count([1..1000].($ * 2))";

describe("runStack", () => {
  it("delivers the input unchanged when the stack changes nothing", async () => {
    const result = await run([{ log: "payload.text" }, { set: "payload.text", value: "payload.text" }]);
    expect(result).toEqual({
      outcome: "DELIVERED",
      payload: { text: "hi" },
      commandOptions: null,
      log: ["hi"],
      durationMs: expect.any(Number),
    });
    expect((await run([])).outcome).toBe("DELIVERED");
  });

  it("evaluates against the whole trigger input", async () => {
    const stack = compileStack([
      { log: "[action, command, channel, commandOptions.to, payload.text, client.id, client.authenticated, client.extras.role]" },
    ]);
    const result = await runStack(stack, input({ text: "hi" }, { to: "bob" }));
    expect(result.log).toEqual([["message", "message", "room:1", "bob", "hi", "c1", true, "admin"]]);
  });

  it("binds var steps as $name, shows earlier sets through $response, and reports MODIFIED", async () => {
    const result = await run([
      { var: "greeting", value: "'hello ' & client.id" },
      { set: "payload.greeting", value: "$greeting" },
      { set: "payload.copy", value: "$response.payload.greeting" },
      { set: "commandOptions.seen", value: "$exists($response.payload.copy)" },
    ]);
    expect(result).toMatchObject({
      outcome: "MODIFIED",
      payload: { text: "hi", greeting: "hello c1", copy: "hello c1" },
      commandOptions: { seen: true },
    });
  });

  it("reports MODIFIED when only commandOptions change", async () => {
    const result = await runStack(compileStack([{ set: "commandOptions.to", value: "'bob'" }]), input({ text: "hi" }, { to: "alice" }));
    expect(result).toMatchObject({ outcome: "MODIFIED", payload: { text: "hi" }, commandOptions: { to: "bob" } });
  });

  describe("set", () => {
    it("creates plain objects through missing or non-object intermediates", async () => {
      const result = await run([
        { set: "payload.a.b.c", value: "1" },
        { set: "payload.text.inner", value: "2" },
        { set: "commandOptions.x.y", value: "3" },
      ]);
      expect(result.payload).toEqual({ text: { inner: 2 }, a: { b: { c: 1 } } });
      expect(result.commandOptions).toEqual({ x: { y: 3 } });
      expect(Object.getPrototypeOf((result.payload as { a: object }).a)).toBe(Object.prototype);
    });

    it("replaces the whole payload, or a non-object payload, and writes nothing as null", async () => {
      expect((await run([{ set: "payload", value: "{ 'n': 1 }" }])).payload).toEqual({ n: 1 });
      expect((await run([{ set: "payload.n", value: "1" }], "a string")).payload).toEqual({ n: 1 });
      expect((await run([{ set: "payload.gone", value: "payload.missing" }])).payload).toEqual({ text: "hi", gone: null });
      expect((await run([{ set: "payload", value: "payload.missing" }])).payload).toBeNull();
    });

    it("sets array items by index, appending at the end, and fails past it or on a name", async () => {
      const items = { items: [{ n: 1 }, { n: 2 }] };
      const set = await run(
        [
          { set: "payload.items.1.n", value: "20" },
          { set: "payload.items.2", value: "3" },
        ],
        items,
      );
      expect(set.payload).toEqual({ items: [{ n: 1 }, { n: 20 }, 3] });
      const pastTheEnd = await run([{ set: "payload.items.5", value: "1" }], items);
      expect(pastTheEnd).toMatchObject({
        outcome: "FAILED",
        error: { code: "TRIGGER_FAILED", message: 'stack[0]: cannot set "5" in an array of length 2' },
      });
      expect((await run([{ set: "payload.items.name", value: "1" }], items)).error?.message).toBe(
        'stack[0]: cannot set "name" in an array of length 2',
      );
      expect((await run([{ set: "payload.items.length", value: "1" }], items)).outcome).toBe("FAILED");
    });
  });

  it("ends the stack on return, replacing the payload", async () => {
    const result = await run([{ return: "{ 'wrapped': payload }" }, { set: "payload.never", value: "1" }, { log: "'never'" }]);
    expect(result).toMatchObject({ outcome: "MODIFIED", payload: { wrapped: { text: "hi" } }, log: [] });
    expect((await run([{ return: "payload" }])).outcome).toBe("DELIVERED");
    expect((await run([{ return: "payload.missing" }])).payload).toBeNull();
  });

  it.each<[unknown, boolean]>([
    [true, true],
    [false, false],
    ["x", true],
    ["", false],
    [1, true],
    [0, false],
    [null, false],
    [{ a: 1 }, true],
    [{}, false],
    [[0], false],
    [[0, 1], true],
    [[], false],
  ])("takes then or else by JSONata truthiness: %j is %s", async (value, expected) => {
    const stack = [
      { if: "payload.value", then: [{ set: "payload.branch", value: "'then'" }], else: [{ set: "payload.branch", value: "'else'" }] },
    ];
    const result = await run(stack, { value }, { trace: true });
    expect(result.payload).toMatchObject({ branch: expected ? "then" : "else" });
    expect(result.trace?.at(-1)).toMatchObject({ path: "stack[0]", step: "if", result: expected });
  });

  it("treats a condition that yields nothing as false, and runs nothing without else", async () => {
    expect((await run([{ if: "payload.missing", then: [{ log: "'then'" }] }])).log).toEqual([]);
  });

  it("runs nested steps, whose stops end the whole stack", async () => {
    const stack = [
      { var: "kind", value: "payload.kind" },
      {
        if: "$kind = 'a'",
        then: [{ log: "'a'" }],
        else: [{ if: "$kind = 'b'", then: [{ log: "'b'" }, { return: "'returned'" }], else: [{ drop: true }] }, { log: "'after'" }],
      },
      { log: "'end'" },
    ];
    expect(await run(stack, { kind: "a" })).toMatchObject({ outcome: "DELIVERED", log: ["a", "end"] });
    expect(await run(stack, { kind: "b" })).toMatchObject({ outcome: "MODIFIED", payload: "returned", log: ["b"] });
    expect(await run(stack, { kind: "c" })).toMatchObject({ outcome: "DROPPED", log: [] });
  });

  it("drops: nothing after the drop runs", async () => {
    const result = await run([{ set: "payload.x", value: "1" }, { drop: true }, { log: "'never'" }]);
    expect(result).toMatchObject({ outcome: "DROPPED", log: [] });
    expect(result.error).toBeUndefined();
  });

  it("rejects with the given code or TRIGGER_REJECTED, and the value as the message", async () => {
    expect(await run([{ reject: "'no: ' & payload.text", code: "NOPE" }, { log: "'never'" }])).toMatchObject({
      outcome: "REJECTED",
      error: { code: "NOPE", message: "no: hi" },
      log: [],
    });
    expect(await run([{ reject: "'no'" }])).toMatchObject({ outcome: "REJECTED", error: { code: "TRIGGER_REJECTED", message: "no" } });
    expect((await run([{ reject: "{ 'why': 1 }" }])).error?.message).toBe('{"why":1}');
    expect((await run([{ reject: "payload.missing" }])).error?.message).toBe("null");
  });

  it("logs values in order, nothing as null", async () => {
    const result = await run([{ log: "payload" }, { log: "payload.missing" }, { log: "[1, 2]" }, { log: "'done'" }]);
    expect(result.log).toEqual([{ text: "hi" }, null, [1, 2], "done"]);
  });

  it("traces each step when asked: path, kind, duration and result, or the error", async () => {
    const result = await run(
      [
        { var: "n", value: "2" },
        { if: "$n > 1", then: [{ log: "'big'" }] },
        { set: "payload.x", value: "$n * 2" },
        { log: "$nope()" },
        { log: "'never'" },
      ],
      { text: "hi" },
      { trace: true },
    );
    expect(result.trace?.map(({ path, step, result, error }) => ({ path, step, result, error }))).toEqual([
      { path: "stack[0]", step: "var", result: 2, error: undefined },
      { path: "stack[1].then[0]", step: "log", result: "big", error: undefined },
      { path: "stack[1]", step: "if", result: true, error: undefined },
      { path: "stack[2]", step: "set", result: 4, error: undefined },
      {
        path: "stack[3]",
        step: "log",
        result: undefined,
        error: expect.stringMatching(/^stack\[3\]: Attempted to invoke a non-function \(T1006/),
      },
    ]);
    for (const entry of result.trace!) expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    expect((await run([{ log: "1" }])).trace).toBeUndefined();
  });

  it("records a failing nested step and the if steps around it", async () => {
    const result = await run([{ if: "true", then: [{ if: "true", then: [{ log: "$nope()" }] }] }], {}, { trace: true });
    expect(result.trace?.map((entry) => [entry.path, entry.error])).toEqual([
      ["stack[0].then[0].then[0]", result.error?.message],
      ["stack[0].then[0]", result.error?.message],
      ["stack[0]", result.error?.message],
    ]);
  });

  it("fails on evaluation errors, naming the step, and returns the input unchanged", async () => {
    const result = await run([
      { set: "payload.x", value: "1" },
      { if: "true", then: [{ set: "payload.y", value: "$undefinedFunction()" }] },
    ]);
    expect(result).toMatchObject({ outcome: "FAILED", payload: { text: "hi" }, commandOptions: null, log: [] });
    expect(result.error).toEqual({
      code: "TRIGGER_FAILED",
      message: "stack[1].then[0]: Attempted to invoke a non-function (T1006 at position 19)",
    });
    expect((await run([{ log: "1 + 'a'" }])).error?.message).toMatch(/^stack\[0\]: .*\(T200\d/);
    expect((await run([{ log: "$number('x') + $string(1/0)" }])).outcome).toBe("FAILED");
  });

  it("keeps what was logged before a failure", async () => {
    expect((await run([{ log: "'before'" }, { log: "$nope()" }])).log).toEqual(["before"]);
  });

  it("returns plain JSON: sequences become arrays and functions disappear", async () => {
    const result = await run(
      [
        { set: "payload.names", value: "payload.items.name" },
        { set: "payload.fn", value: "function($x) { $x }" },
        { set: "payload.builtin", value: "$uppercase" },
        { set: "payload.mixed", value: "{ 'f': function() { 1 }, 'list': [1, $uppercase, 3], 'n': 1 }" },
        { log: "$lowercase" },
      ],
      { items: [{ name: "a" }, { name: "b" }] },
    );
    expect(result.payload).toEqual({
      items: [{ name: "a" }, { name: "b" }],
      names: ["a", "b"],
      fn: null,
      builtin: null,
      mixed: { list: [1, null, 3], n: 1 },
    });
    expect(Object.keys((result.payload as { names: unknown[] }).names)).toEqual(["0", "1"]);
    expect(result.log).toEqual([null]);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it("lets a var hold a function for later steps", async () => {
    const result = await run(
      [
        { var: "twice", value: "function($x) { $x * 2 }" },
        { set: "payload.n", value: "$twice(21)" },
      ],
      {},
      { trace: true },
    );
    expect(result.payload).toEqual({ n: 42 });
    expect(result.trace?.[0]).toMatchObject({ step: "var", result: undefined });
  });

  it("disables $eval, so expressions cannot be built at run time", async () => {
    const result = await run([{ log: "$eval('1 + 1')" }]);
    expect(result).toMatchObject({ outcome: "FAILED", error: { message: "stack[0]: $eval is disabled in triggers" } });
    expect((await run([{ log: "$eval('$match(\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\", /(a+)+$/)')" }])).outcome).toBe("FAILED");
  });

  it("never changes its input, even through a $clone that returns its argument", async () => {
    const event = deepFreeze(input({ list: [1, 2], nested: { a: 1 } }, { to: "x" }));
    const before = structuredClone(event);
    const result = await runStack(
      compileStack([
        { set: "payload.nested.a", value: "2" },
        { set: "payload.list.2", value: "3" },
        { set: "commandOptions.to", value: "'y'" },
        { log: "( $clone := function($x) { $x }; $ ~> | payload.nested | { 'mutated': true } | ).payload.nested" },
      ]),
      event,
    );
    expect(result).toMatchObject({ outcome: "MODIFIED", payload: { list: [1, 2, 3], nested: { a: 2 } }, commandOptions: { to: "y" } });
    expect(event).toEqual(before);
  });

  it("lets no __proto__ or constructor key change a prototype", async () => {
    const hostile: unknown = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "a": {}}');
    const result = await run(
      [
        { set: "payload.copy", value: "payload" },
        { set: "payload.merged", value: "$merge([{}, payload])" },
        { set: "payload.built", value: "{ '__proto__': { 'polluted': true }, 'constructor': { 'prototype': { 'polluted': true } } }" },
        { set: "payload.transformed", value: "{} ~> | $ | { '__proto__': { 'polluted': true } } |" },
        { log: "( $clone := function($x) { $x }; $response ~> | payload.a | { '__proto__': { 'polluted': true } } | ).payload.a" },
        { set: "payload.deep.constructor_", value: "payload.__proto__" },
        { var: "o", value: "$merge([{}, { '__proto__': { 'polluted': true } }])" },
        { set: "commandOptions", value: "$o" },
      ],
      hostile,
    );
    expect(result.outcome).toBe("MODIFIED");
    const plain: Record<string, unknown> = {};
    expect(plain.polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain("polluted");
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    const payload = result.payload as Record<string, Record<string, unknown>>;
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
    expect(Object.hasOwn(payload, "__proto__")).toBe(true);
    expect(payload.copy!.polluted).toBeUndefined();
    expect(payload.deep).toEqual({ constructor_: { polluted: true } });
  });
});

describe("guardrails", () => {
  it("fails fast on deep recursion (JSONata's evaluation depth limit)", async () => {
    const result = await run([{ log: "( $f := function($x) { 1 + $f($x) }; $f(1) )" }]);
    expect(result.outcome).toBe("FAILED");
    expect(result.error?.message).toMatch(/^stack\[0\]: memory: Stack overflow.*\(D1011/);
  });

  it("fails endless tail recursion, which does not deepen the stack, at the first time limit", async () => {
    const expression = "( $f := function($x) { $f($x) }; $f(1) )";
    const byExpression = await run([{ log: expression }], {}, {}, { expressionTimeoutMs: 100 });
    expect(byExpression.error?.message).toMatch(/^stack\[0\]: timeout: Evaluation timeout after 100 milliseconds.*\(D1012/);
    const byRun = await run([{ log: expression }], {}, { timeoutMs: 100 });
    expect(byRun.error?.message).toBe("stack[0]: timeout: the trigger ran out of time (limit 100 ms)");
    expect((await run([{ log: expression }])).outcome).toBe("FAILED");
  });

  it("refuses huge sequences without allocating them", async () => {
    expect((await run([{ log: "[1..100000000]" }])).error?.message).toMatch(/^stack\[0\]: size: .*\(D2014/);
    expect((await run([{ log: "$count([1..1000000])" }])).error?.message).toMatch(/^stack\[0\]: size: .*\(D2015/);
    expect((await run([{ log: "$count([1..10])" }], {}, {}, { maxSequenceLength: 10 })).log).toEqual([10]);
    expect((await run([{ log: "$count([1..11])" }], {}, {}, { maxSequenceLength: 10 })).outcome).toBe("FAILED");
  });

  it("fails a stack whose steps together run past the run's time limit, and runs no further step", async () => {
    const result = await run(
      Array.from({ length: 100 }, () => ({ log: SLOW })),
      {},
      { timeoutMs: 20, trace: true },
    );
    expect(result.outcome).toBe("FAILED");
    expect(result.error?.message).toMatch(/^stack\[\d+\]: timeout: the trigger ran out of time \(limit 20 ms\)$/);
    expect(result.trace!.length).toBeLessThan(100);
  });
});

describe("http steps", () => {
  /** A webhook client that records requests and answers with `answer`, or hangs until aborted. */
  function fakeWebhooks(answer?: { status: number; headers: Record<string, string>; body: unknown }) {
    const requests: WebhookRequest[] = [];
    const client: WebhookClient = {
      send: (request) => {
        requests.push(request);
        if (answer) return Promise.resolve(answer);
        return new Promise((_, reject) => request.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
      },
    };
    return { client, requests };
  }
  const limits = { allowHttpSteps: true };

  it("sends the request its expressions describe and binds the answer", async () => {
    const { client, requests } = fakeWebhooks({ status: 200, headers: { "content-type": "application/json" }, body: { allowed: true } });
    const result = await run(
      [
        {
          http: {
            url: "'https://example.com/check'",
            method: "PUT",
            headers: { "x-channel": "channel", "x-n": "1", "x-none": "payload.missing" },
            body: "{ 'text': payload.text }",
            timeoutMs: 500,
          },
          as: "verdict",
        },
        { set: "payload.allowed", value: "$verdict.body.allowed" },
      ],
      { text: "hi" },
      { webhooks: client, trace: true },
      limits,
    );
    expect(result).toMatchObject({ outcome: "MODIFIED", payload: { text: "hi", allowed: true } });
    expect(result.trace?.[0]?.result).toEqual({ status: 200, headers: { "content-type": "application/json" }, body: { allowed: true } });
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      url: "https://example.com/check",
      method: "PUT",
      headers: { "x-channel": "room:1", "x-n": "1" },
      body: { text: "hi" },
    });
    expect(requests[0]!.timeoutMs).toBeLessThanOrEqual(500);
    expect(requests[0]!.signal?.aborted).toBe(true);
  });

  it("fails without a webhook client, or when the url is not a string", async () => {
    const stack = [{ http: { url: "'https://example.com/'" }, as: "r" }];
    expect((await run(stack, {}, {}, limits)).error?.message).toBe("stack[0]: http steps are not enabled on this server");
    const { client } = fakeWebhooks({ status: 200, headers: {}, body: "" });
    expect((await run([{ http: { url: "42" }, as: "r" }], {}, { webhooks: client }, limits)).error?.message).toBe(
      "stack[0]: http.url must evaluate to a string",
    );
  });

  it("gives a request at most the run's remaining time, and aborts it when the run times out", async () => {
    const { client, requests } = fakeWebhooks();
    const result = await run(
      [{ log: "1" }, { http: { url: "'https://example.com/'" }, as: "r" }],
      {},
      { webhooks: client, timeoutMs: 100 },
      limits,
    );
    expect(result.error?.message).toBe("stack[1]: timeout: the trigger ran out of time (limit 100 ms)");
    expect(requests[0]!.timeoutMs).toBeLessThanOrEqual(100);
    expect(requests[0]!.signal?.aborted).toBe(true);
  });
});

describe("properties", () => {
  it("an empty stack delivers any JSON payload unchanged, without copying it; a set step never throws", async () => {
    const empty = compileStack([]);
    const set = compileStack([{ set: "payload.meta.seen", value: "$exists(payload)" }]);
    await assertProperty(
      fc.asyncProperty(fc.jsonValue(), async (payload) => {
        const same = await runStack(empty, input(payload));
        expect(same.outcome).toBe("DELIVERED");
        expect(same.payload).toBe(payload ?? null);
        let changed: Promise<StackRunResult> | undefined;
        expect(() => (changed = runStack(set, input(payload)))).not.toThrow();
        const result = await changed!;
        if (Array.isArray(payload)) expect(result.outcome).toBe("FAILED");
        else expect(result).toMatchObject({ payload: { meta: { seen: true } } });
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe("outcomes and paths, exactly", () => {
  /** JSON with object keys sorted: equal for two values exactly when they are equal as JSON. */
  const canonical = (value: unknown): string =>
    JSON.stringify(value, (_, inner: unknown) =>
      typeof inner === "object" && inner !== null && !Array.isArray(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : inner,
    );
  /** A JSON object, and another that is equal to it, or differs by one key removed, added or changed. */
  const pair = fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }).chain((original) => {
    const keys = Object.keys(original);
    return fc.tuple(
      fc.constant(original),
      fc.oneof(
        fc.constant(structuredClone(original)),
        fc.constant(Object.fromEntries(Object.entries(original).reverse())),
        keys.length === 0 ? fc.constant({ added: 1 }) : fc.constantFrom(...keys).map((key) => ({ ...original, [key]: undefined })),
        fc.tuple(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })).map(([key, value]) => ({ ...original, [key]: value })),
      ),
    );
  });

  it("is MODIFIED exactly when the payload differs from the input's as JSON (a key removed, added or changed), else DELIVERED", async () => {
    // The payload becomes the input's commandOptions, which stay as they are.
    const replace = compileStack([{ set: "payload", value: "commandOptions" }]);
    await fc.assert(
      fc.asyncProperty(pair, async ([before, after]) => {
        // As parsed from a request: plain objects, and undefined keys are removed keys.
        const [payload, next] = [before, after].map((value) => JSON.parse(JSON.stringify(value)) as unknown);
        const result = await runStack(replace, input(payload, next));
        expect(result.error).toBeUndefined();
        expect(canonical(result.payload)).toBe(canonical(next));
        expect(result.outcome).toBe(canonical(payload) === canonical(next) ? "DELIVERED" : "MODIFIED");
      }),
      { numRuns: 300 },
    );
  });

  it("is MODIFIED when only commandOptions change", async () => {
    expect((await run([{ set: "commandOptions.to", value: "'bob'" }], { text: "hi" })).outcome).toBe("MODIFIED");
    expect(
      (await runStack(compileStack([{ set: "commandOptions.to", value: "'bob'" }]), input({ text: "hi" }, { to: "bob" }))).outcome,
    ).toBe("DELIVERED");
  });

  it("writes an array element only at an index up to its length, written as a plain decimal", async () => {
    const at = async (segment: string) => {
      const result = await run([{ set: `payload.items.${segment}`, value: "'x'" }], { items: ["a", "b"] });
      return result.error ? result.error.message : result.payload;
    };
    expect(await at("0")).toEqual({ items: ["x", "b"] });
    expect(await at("2")).toEqual({ items: ["a", "b", "x"] });
    for (const segment of ["3", "01", "007", "a1", "x"]) {
      expect(await at(segment)).toBe(`stack[0]: cannot set "${segment}" in an array of length 2`);
    }
  });
});

describe("the shared deadline timer", () => {
  /** Runs until something stops it: only a time limit ends it. */
  const ENDLESS = [{ log: "( $f := function($x) { $f($x) }; $f(1) )" }];
  const limits = { expressionTimeoutMs: 5000 };

  for (const order of ["the longer limit first", "the shorter limit first"] as const) {
    it(`stops each of two runs under way at once at its own limit (${order})`, async () => {
      const limitsMs = order === "the longer limit first" ? [300, 40] : [40, 300];
      const results = await Promise.all(limitsMs.map((timeoutMs) => run(ENDLESS, {}, { timeoutMs }, limits)));
      expect(results.map((result) => result.error?.message)).toEqual(
        limitsMs.map((timeoutMs) => `stack[0]: timeout: the trigger ran out of time (limit ${timeoutMs} ms)`),
      );
    });
  }
});
