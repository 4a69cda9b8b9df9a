import { describe, expect, it } from "vitest";
import { runStack } from "../../src/triggers/engine.js";
import { compileStack } from "../../src/triggers/stack.js";
import { HOSTILE_CASES, hostilePayload, watchEventLoop } from "./hostile-corpus.js";

/** The run time limit here (the default). */
const TIMEOUT_MS = 1000;
/** The guarantee: no run holds the event loop longer than its time limit plus this. */
const GRACE_MS = 100;

describe("the hostile corpus, run by the engine", () => {
  it.each(HOSTILE_CASES.filter((c) => c.expect === "refused: regex").map((c) => [c.name, c] as const))(
    "refuses at save: %s",
    (_name, hostile) => {
      expect(() => compileStack(hostile.stack)).toThrow(/^stack(\[\d+\]\.then)?\[0\]\.value: regex: \/.+\/\w* is not supported/);
    },
  );

  it.each(HOSTILE_CASES.filter((c) => c.expect !== "refused: regex").map((c) => [c.name, c] as const))("%s", async (_name, hostile) => {
    const stack = compileStack(hostile.stack);
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
    const result = await runStack(stack, input, { timeoutMs: TIMEOUT_MS });
    const held = loop.stop();
    if (hostile.expect === "ok") {
      expect(result.error).toBeUndefined();
      expect(["DELIVERED", "MODIFIED"]).toContain(result.outcome);
    } else {
      expect(result.outcome).toBe("FAILED");
      expect(result.error?.code).toBe("TRIGGER_FAILED");
      expect(result.error?.message).toMatch(new RegExp(`^stack(\\[\\d+\\])?: (${hostile.expect}): `));
    }
    expect(held).toBeLessThan(TIMEOUT_MS + GRACE_MS);
  });
});
