import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AppError, ErrorCode } from "../../src/errors.js";
import { compileStack, type StackLimits } from "../../src/triggers/compile/stack.js";
import { type RunOptions, runStack, type TriggerInput } from "../../src/triggers/run/engine.js";
import type { StateAccess } from "../../src/triggers/state/state.js";
import type { WebhookClient, WebhookRequest } from "../../src/triggers/webhook/client.js";
import { eventually } from "../helpers/eventually.js";
import { assertProperty } from "../helpers/property.js";

function input(payload: unknown, commandOptions: unknown = null): TriggerInput {
  return {
    action: "message",
    command: "message",
    channel: "room:1",
    commandOptions,
    payload,
    client: { id: "c1", authenticated: true, extras: null },
  };
}

function run(stack: unknown, payload: unknown = { text: "hi" }, options: RunOptions = {}, limits: Partial<StackLimits> = {}) {
  return runStack(compileStack(stack, limits), input(payload), options);
}

/** Runs until something stops it: only a time limit ends it. */
const ENDLESS = { log: "( $f := function($x) { $f($x) }; $f(1) )" };
const NO_EXPRESSION_TIMEOUT = { expressionTimeoutMs: 60_000, allowHttpSteps: true };

/** A webhook client that records each request with whether its signal was aborted when sent; it answers, or hangs until aborted. */
function webhooks(answer?: { status: number; headers: Record<string, string>; body: unknown }) {
  const requests: { request: WebhookRequest; abortedWhenSent: boolean }[] = [];
  const client: WebhookClient = {
    send: (request) => {
      requests.push({ request, abortedWhenSent: request.signal?.aborted ?? false });
      if (answer) return Promise.resolve(answer);
      return new Promise((_, reject) => request.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
    },
  };
  return { client, requests };
}

/** A state store in memory, recording each operation; `delay` makes it answer later, `fail` makes it fail. */
function memoryState(behaviour: { delayMs?: number; fail?: () => unknown; hang?: boolean; busyMs?: number } = {}) {
  const values = new Map<string, unknown>();
  const calls: unknown[][] = [];
  const answer = <T>(value: () => T): Promise<T> => {
    if (behaviour.busyMs !== undefined) {
      const until = Date.now() + behaviour.busyMs;
      while (Date.now() < until) {
        // The store holds the event loop, as a synchronous driver would.
      }
    }
    if (behaviour.hang) return new Promise<T>(() => {});
    if (behaviour.fail) return Promise.reject(behaviour.fail());
    if (behaviour.delayMs !== undefined) return new Promise<T>((resolve) => setTimeout(() => resolve(value()), behaviour.delayMs));
    return Promise.resolve(value());
  };
  const state: StateAccess = {
    get: (key) => {
      calls.push(["get", key]);
      return answer(() => values.get(key) ?? null);
    },
    put: (key, value, ttl) => {
      calls.push(["put", key, value, ttl]);
      return answer(() => void values.set(key, value));
    },
    incr: (key, by, ttl) => {
      calls.push(["incr", key, by, ttl]);
      return answer(() => {
        const next = ((values.get(key) as number | undefined) ?? 0) + by;
        values.set(key, next);
        return next;
      });
    },
    delete: (key) => {
      calls.push(["delete", key]);
      return answer(() => void values.delete(key));
    },
  };
  return { state, calls, values };
}

describe("what a run reports", () => {
  it("has no error key unless it failed or was rejected, and takes no longer than the call", async () => {
    const before = performance.now();
    const result = await run([{ log: "payload.text" }], { text: "hi" }, { trace: true });
    const elapsed = performance.now() - before;
    expect(Object.keys(result).sort()).toEqual(["commandOptions", "durationMs", "log", "outcome", "payload", "trace"]);
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(result.durationMs).toBeLessThanOrEqual(elapsed);
    expect(result.trace![0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(result.trace![0]!.durationMs).toBeLessThanOrEqual(result.durationMs);
    const dropped = await run([{ drop: true }]);
    expect(Object.keys(dropped).sort()).toEqual(["commandOptions", "durationMs", "log", "outcome", "payload"]);
  });

  it("writes an array element at an index of several digits", async () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const result = await run(
      [
        { set: "payload.items.10", value: "'x'" },
        { set: "payload.items.3", value: "'y'" },
      ],
      { items },
    );
    expect(result.payload).toEqual({ items: [0, 1, 2, "y", 4, 5, 6, 7, 8, 9, "x"] });
  });

  it("tells MODIFIED from DELIVERED, and checks nesting, for payloads too large to compare at once", async () => {
    const large = { keys: Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`k${i}`, i])) };
    expect((await run([{ set: "payload.keys.k599", value: "599" }], large)).outcome).toBe("DELIVERED");
    expect((await run([{ set: "payload.keys.k599", value: "600" }], large)).outcome).toBe("MODIFIED");
    expect((await runStack(compileStack([{ set: "commandOptions.keys.k0", value: "1" }]), input(null, large))).outcome).toBe("MODIFIED");

    let deep: unknown = 1;
    for (let i = 0; i < 60; i++) deep = { d: deep };
    const deepAndLarge = { deep, filler: Array.from({ length: 600 }, (_, i) => i) };
    const tooDeep = { code: "TRIGGER_FAILED", message: "stack: size: a value nests deeper than 64 levels" };
    const payload = await run([{ set: "payload.a.b.c.d.e", value: "payload.deep" }], deepAndLarge);
    expect(payload).toMatchObject({ outcome: "FAILED", error: tooDeep, payload: deepAndLarge });
    const options = await runStack(
      compileStack([{ set: "commandOptions.a.b.c.d.e", value: "payload.deep" }]),
      input(deepAndLarge, { filler: deepAndLarge.filler }),
    );
    expect(options).toMatchObject({ outcome: "FAILED", error: tooDeep });
  });

  it("hands back plain JSON copies, never the input's own objects, and -0 as 0, whether or not JSONata evaluates", async () => {
    const payload = JSON.parse('{"nested": {"a": [1]}, "n": -0, "m": {"z": -0}}') as Record<string, unknown>;
    const result = await run(
      [
        { set: "payload.copy", value: "payload.nested" },
        { set: "payload.copied", value: "(payload.nested)" },
        { log: "payload.nested" },
        { log: "payload.n" },
        { log: "(payload.n)" },
        { log: "payload.m" },
      ],
      payload,
    );
    const out = result.payload as Record<string, unknown>;
    expect(out.copy).toEqual(payload.nested);
    expect(out.copy).not.toBe(payload.nested);
    expect(out.copied).not.toBe(payload.nested);
    expect(result.log[0]).not.toBe(payload.nested);
    expect(Object.is(result.log[1], 0)).toBe(true);
    expect(Object.is(result.log[2], 0)).toBe(true);
    expect(Object.is((result.log[3] as { z: number }).z, 0)).toBe(true);
  });

  it("gives the same values for an expression whether it is evaluated without JSONata or by it", async () => {
    const names = ["a", "b", "n"];
    const json = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(JSON.stringify(value)) as unknown);
    const payload = fc.oneof(json, fc.dictionary(fc.constantFrom(...names), fc.oneof(json, fc.constant(-0)), { maxKeys: 3 }));
    const path = fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 3 }).map((steps) => ["payload", ...steps].join("."));
    /** Equal as values, -0 told from 0. */
    const same = (a: unknown, b: unknown): boolean =>
      typeof a === "object" && a !== null && typeof b === "object" && b !== null
        ? Object.keys(a).length === Object.keys(b).length &&
          Object.entries(a).every(([key, value]) => Object.hasOwn(b, key) && same(value, (b as Record<string, unknown>)[key]))
        : Object.is(a, b);
    await assertProperty(
      fc.asyncProperty(payload, path, async (value, source) => {
        const planned = compileStack([{ log: source }]);
        const byJsonata = compileStack([{ log: `(${source})` }]);
        const [a, b] = [await runStack(planned, input(value)), await runStack(byJsonata, input(value))];
        expect(a.outcome).toBe(b.outcome);
        expect(same(a.log, b.log)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe("failures, by their cause", () => {
  it("calls a run past its time limit TRIGGER_FAILED, not an outage", async () => {
    const result = await run([ENDLESS], {}, { timeoutMs: 30 }, NO_EXPRESSION_TIMEOUT);
    expect(result.error).toEqual({ code: "TRIGGER_FAILED", message: "stack[0]: timeout: the trigger ran out of time (limit 30 ms)" });
  });

  it("calls a state store that cannot be reached an outage (SERVICE_UNAVAILABLE), nested or not, and any other error TRIGGER_FAILED", async () => {
    const unreachable = memoryState({ fail: () => new AppError(ErrorCode.ServiceUnavailable, "the state store is unreachable") });
    const flat = await run([{ get: "'k'", as: "v" }], {}, { state: unreachable.state });
    expect(flat.error).toEqual({ code: "SERVICE_UNAVAILABLE", message: "stack[0]: the state store is unreachable (SERVICE_UNAVAILABLE)" });
    const nested = await run([{ if: "true", then: [{ get: "'k'", as: "v" }] }], {}, { state: unreachable.state });
    expect(nested.error).toEqual({
      code: "SERVICE_UNAVAILABLE",
      message: "stack[0].then[0]: the state store is unreachable (SERVICE_UNAVAILABLE)",
    });
    const refused = memoryState({ fail: () => new AppError(ErrorCode.Forbidden, "no") });
    expect((await run([{ get: "'k'", as: "v" }], {}, { state: refused.state })).error).toEqual({
      code: "TRIGGER_FAILED",
      message: "stack[0]: no (FORBIDDEN)",
    });
  });

  it("names the bound a JavaScript limit stands for, and none for other errors", async () => {
    const failing = async (error: unknown) =>
      (await run([{ get: "'k'", as: "v" }], {}, { state: memoryState({ fail: () => error }).state })).error?.message;
    expect(await failing(new RangeError("Maximum call stack size exceeded"))).toBe("stack[0]: memory: Maximum call stack size exceeded");
    expect(await failing(new RangeError("Invalid string length"))).toBe("stack[0]: size: Invalid string length");
    expect(await failing(undefined)).toBe("stack[0]: undefined");
    expect(await failing(null)).toBe("stack[0]: null");
    expect(await failing(Object.assign(new Error("odd"), { code: ["D1012"] }))).toBe("stack[0]: odd");
    expect(await failing(Object.assign(new Error("slow"), { code: "D1012" }))).toBe("stack[0]: timeout: slow (D1012)");
    // Codes that are names of an object's own properties stand for no bound.
    expect(await failing(Object.assign(new Error("proto"), { code: "constructor" }))).toBe("stack[0]: proto (constructor)");
    expect(await failing(Object.assign(new Error("proto"), { code: "toString" }))).toBe("stack[0]: proto (toString)");
  });
});

describe("state steps", () => {
  it("reach the run's store for get, put, incr and delete", async () => {
    const { state, calls } = memoryState();
    const result = await run(
      [
        { put: "'k'", value: "payload.text", ttl: "60" },
        { get: "'k'", as: "v" },
        { incr: "'n'", by: "2", as: "n" },
        { delete: "'k'" },
        { get: "'k'", as: "gone" },
        { log: "[$v, $n, $gone]" },
      ],
      { text: "hi" },
      { state },
    );
    expect(result.log).toEqual([["hi", 2, null]]);
    expect(calls).toEqual([
      ["put", "k", "hi", 60],
      ["get", "k"],
      ["incr", "n", 2, undefined],
      ["delete", "k"],
      ["get", "k"],
    ]);
  });

  it("fail in a run without a store", async () => {
    expect((await run([{ get: "'k'", as: "v" }])).error).toEqual({
      code: "TRIGGER_FAILED",
      message: "stack[0]: state steps are not available in this run",
    });
  });

  it("counts a run that timed out waiting for its store as an outage", async () => {
    const { state } = memoryState({ hang: true });
    const result = await run([{ log: "1" }, { get: "'k'", as: "v" }], {}, { state, timeoutMs: 300 });
    expect(result.error).toEqual({
      code: "SERVICE_UNAVAILABLE",
      message: "stack[1]: timeout: the state store did not answer in time (limit 300 ms)",
    });
  });

  it("counts the waits of many slow answers together", async () => {
    const { state } = memoryState({ delayMs: 40 });
    const result = await run(
      Array.from({ length: 40 }, () => ({ get: "'k'", as: "v" })),
      {},
      { state, timeoutMs: 400 },
    );
    expect(result.error).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
    expect(result.error?.message).toMatch(/^stack\[\d+\]: timeout: the state store did not answer in time \(limit 400 ms\)$/);
  });

  it("does not call a short wait an outage: the store must have held the run half its limit, and at least 250 ms", async () => {
    const hanging = memoryState({ hang: true });
    expect((await run([{ get: "'k'", as: "v" }], {}, { state: hanging.state, timeoutMs: 200 })).error).toEqual({
      code: "TRIGGER_FAILED",
      message: "stack[0]: timeout: the trigger ran out of time (limit 200 ms)",
    });
    const quick = memoryState({ delayMs: 20 });
    const thenBusy = await run([{ get: "'k'", as: "v" }, ENDLESS], {}, { state: quick.state, timeoutMs: 600 }, NO_EXPRESSION_TIMEOUT);
    expect(thenBusy.error).toEqual({ code: "TRIGGER_FAILED", message: "stack[1]: timeout: the trigger ran out of time (limit 600 ms)" });
  });

  it("does not call a wait that began late in the run an outage", async () => {
    const late: WebhookClient = {
      send: () => new Promise((resolve) => setTimeout(() => resolve({ status: 200, headers: {}, body: null }), 700)),
    };
    const { state } = memoryState({ hang: true });
    const result = await run(
      [
        { http: { url: "'https://example.com/'" }, as: "r" },
        { get: "'k'", as: "v" },
      ],
      {},
      { state, webhooks: late, timeoutMs: 1000 },
      NO_EXPRESSION_TIMEOUT,
    );
    expect(result.error).toEqual({ code: "TRIGGER_FAILED", message: "stack[1]: timeout: the trigger ran out of time (limit 1000 ms)" });
  });
});

describe("nothing happens after a run is over", () => {
  it("stops after a step that ended past the time limit, before the timer could fire", async () => {
    const { state } = memoryState({ busyMs: 60 });
    const { client, requests } = webhooks({ status: 200, headers: {}, body: null });
    const result = await run(
      [{ get: "'k'", as: "v" }, { log: "'after'" }, { http: { url: "'https://example.com/'" }, as: "r" }],
      {},
      { state, webhooks: client, timeoutMs: 20 },
      NO_EXPRESSION_TIMEOUT,
    );
    expect(result).toMatchObject({
      outcome: "FAILED",
      log: [],
      error: { code: "TRIGGER_FAILED", message: "stack[0]: timeout: the trigger ran out of time (limit 20 ms)" },
    });
    expect(requests).toEqual([]);
  });

  it("stops evaluating at the time limit: a request whose body was still being built is never sent", async () => {
    const body = "$count([1..3000].($ * 2))";
    const request = { http: { url: "'https://example.com/'", body }, as: "r" };
    const timedOut = webhooks({ status: 200, headers: {}, body: null });
    const control = webhooks({ status: 200, headers: {}, body: null });
    const [result] = await Promise.all([
      run([request], {}, { webhooks: timedOut.client, timeoutMs: 5 }, NO_EXPRESSION_TIMEOUT),
      run([request, request], {}, { webhooks: control.client, timeoutMs: 60_000 }, NO_EXPRESSION_TIMEOUT),
    ]);
    expect(result.error?.message).toBe("stack[0]: timeout: the trigger ran out of time (limit 5 ms)");
    // Twice the same work, started at the same time without the time limit, is done by now.
    await eventually("both requests of the run without a time limit", () => control.requests.length === 2);
    expect(timedOut.requests).toEqual([]);
  });

  it("gives each request a live signal, and aborts every one once the run is over, saying why", async () => {
    const { client, requests } = webhooks({ status: 200, headers: {}, body: null });
    const result = await run(
      [
        { http: { url: "'https://example.com/1'" }, as: "a" },
        { http: { url: "'https://example.com/2'" }, as: "b" },
      ],
      {},
      { webhooks: client },
      NO_EXPRESSION_TIMEOUT,
    );
    expect(result.outcome).toBe("DELIVERED");
    expect(requests.map(({ abortedWhenSent }) => abortedWhenSent)).toEqual([false, false]);
    for (const { request } of requests) {
      expect(request.signal?.aborted).toBe(true);
      expect(request.signal).toBeDefined();
      expect((request.signal!.reason as Error).message).toBe("the trigger run is over");
    }
  });
});

describe("the shared deadline timer, on a fake clock", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Fake timers and clock, an hour behind the real one: a run's deadline comes before that of any real run's timer still set. */
  function fakeClock(): number {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    vi.setSystemTime(Date.now() - 3_600_000);
    return Date.now();
  }

  /** A run that waits on a request until the run is over; its result, and whether it is out yet. */
  function waiting(timeoutMs: number) {
    const { client } = webhooks();
    const ended: { at?: number } = {};
    const result = run(
      [{ http: { url: "'https://example.com/'" }, as: "r" }],
      {},
      { webhooks: client, timeoutMs },
      NO_EXPRESSION_TIMEOUT,
    ).then((done) => {
      ended.at = Date.now();
      return done;
    });
    return { result, ended };
  }

  it("stops a run exactly at its limit, each of several at its own, and leaves no timer set", async () => {
    const start = fakeClock();
    const long = waiting(300);
    const short = waiting(100);
    await vi.advanceTimersToNextTimerAsync();
    expect(Date.now()).toBe(start + 100);
    expect(short.ended.at).toBe(start + 100);
    expect(long.ended.at).toBeUndefined();
    await vi.advanceTimersToNextTimerAsync();
    expect(long.ended.at).toBe(start + 300);
    expect((await short.result).error?.message).toBe("stack[0]: timeout: the trigger ran out of time (limit 100 ms)");
    expect((await long.result).error?.message).toBe("stack[0]: timeout: the trigger ran out of time (limit 300 ms)");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops a run at its limit when a later run with a longer one starts", async () => {
    const start = fakeClock();
    const short = waiting(100);
    const long = waiting(300);
    await vi.advanceTimersByTimeAsync(100);
    expect(short.ended.at).toBe(start + 100);
    expect(long.ended.at).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(long.ended.at).toBe(start + 300);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("runs no step once the timer stopped the run, though the step under way ends within the limit's last millisecond", async () => {
    fakeClock();
    let answer: (value: unknown) => void = () => {};
    const state: StateAccess = {
      get: () => new Promise((resolve) => (answer = resolve)),
      put: async () => {},
      incr: async () => 0,
      delete: async () => {},
    };
    const { client, requests } = webhooks({ status: 200, headers: {}, body: null });
    const result = run(
      [
        { get: "'k'", as: "v" },
        { http: { url: "'https://example.com/'" }, as: "r" },
      ],
      {},
      { state, webhooks: client, timeoutMs: 100 },
      NO_EXPRESSION_TIMEOUT,
    );
    await vi.advanceTimersByTimeAsync(100);
    answer("late");
    expect((await result).error?.message).toMatch(/^stack\[0\]: timeout: /);
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(requests).toEqual([]);
  });
});

describe("a run's time limit, to the millisecond", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("lets a run use all of its time: a step that ends exactly at the limit is in time", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    vi.setSystemTime(Date.now() - 3_600_000);
    const start = Date.now();
    const state: StateAccess = {
      get: async () => {
        vi.setSystemTime(start + 100);
        return "v";
      },
      put: async () => {},
      incr: async () => 0,
      delete: async () => {},
    };
    const result = await run([{ get: "'k'", as: "v" }, { log: "$v" }], {}, { state, timeoutMs: 100 });
    expect(result).toMatchObject({ outcome: "DELIVERED", log: ["v"] });
    // The timer set for the run goes off with nothing to stop.
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("a finished run", () => {
  it("is not kept until its time limit would have passed: its input can be collected", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    let payload: object | undefined = { text: "x".repeat(100) };
    const collected = new WeakRef(payload);
    const result = await runStack(compileStack([{ set: "payload.n", value: "1" }]), input(payload), { timeoutMs: 3_600_000 });
    expect(result.outcome).toBe("MODIFIED");
    payload = undefined;
    await eventually(
      "the run's input to be collected",
      async () => {
        await new Promise((resolve) => setImmediate(resolve));
        gc();
        return collected.deref() === undefined;
      },
      { timeoutMs: 5000 },
    );
  });
});
