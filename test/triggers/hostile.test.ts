import { describe, expect, it } from "vitest";
import { compileStack } from "../../src/triggers/compile/stack.js";
import { runStack } from "../../src/triggers/run/engine.js";
import { MAX_HOLD_MS, watchEventLoop } from "../helpers/event-loop.js";
import { HEAVY_CASES, HOSTILE_CASES, type HostileCase, hostilePayload } from "./hostile-corpus.js";

/** The run time limit here (the default). */
const TIMEOUT_MS = 1000;
/** The guarantee: no run holds the event loop longer than its time limit plus this. */
const GRACE_MS = 100;
/** The time limit for the heavy corpus, whose cases all finish (or hit their bound) well within it. */
const HEAVY_TIMEOUT_MS = 30_000;

describe("the hostile corpus, run by the engine", () => {
  it.each(HOSTILE_CASES.filter((c) => c.expect === "refused: regex").map((c) => [c.name, c] as const))(
    "refuses at save: %s",
    (_name, hostile) => {
      expect(() => compileStack(hostile.stack)).toThrow(/^stack(\[\d+\]\.then)?\[0\]\.value: regex: \/.+\/\w* is not supported/);
    },
  );

  it.each(HOSTILE_CASES.filter((c) => c.expect !== "refused: regex").map((c) => [c.name, c] as const))("%s", async (_name, hostile) => {
    const held = await expectRun(hostile, TIMEOUT_MS);
    expect(held.wallMs).toBeLessThan(TIMEOUT_MS + GRACE_MS);
    expect(held.cpuMs).toBeLessThan(MAX_HOLD_MS);
  });
});

describe("the heavy corpus, run by the engine", () => {
  it.each(HEAVY_CASES.map((c) => [c.name, c] as const))("%s", async (_name, heavy) => {
    // A time limit these cases finish well within, however loaded the machine: what is bounded here is each stretch.
    const held = await expectRun(heavy, HEAVY_TIMEOUT_MS);
    expect(held.cpuMs).toBeLessThan(MAX_HOLD_MS);
  });
});

/** Runs a case's stack on its payload, checks how it ends, and tells how long it held the event loop at most. */
async function expectRun(hostile: HostileCase, timeoutMs: number) {
  const stack = compileStack(hostile.stack, { expressionTimeoutMs: timeoutMs });
  const payload = await hostilePayload(hostile);
  const input = {
    action: "message",
    command: "message",
    channel: "c",
    commandOptions: null,
    payload,
    client: { id: "anon", authenticated: false, extras: null },
  } as const;
  const loop = watchEventLoop();
  const result = await runStack(stack, input, { timeoutMs });
  const held = loop.stop();
  if (hostile.expect === "ok") {
    expect(result.error).toBeUndefined();
    expect(["DELIVERED", "MODIFIED"]).toContain(result.outcome);
  } else {
    expect(result.outcome).toBe("FAILED");
    expect(result.error?.code).toBe("TRIGGER_FAILED");
    expect(result.error?.message).toMatch(new RegExp(`^stack(\\[\\d+\\])?: (${hostile.expect}): `));
  }
  return held;
}
