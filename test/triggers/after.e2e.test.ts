import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL, wsSubscribe } from "../helpers/graphql.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = `whsec_${Buffer.from("an-after-trigger-secret-0123456").toString("base64")}`;
const RUNS = `query ($id: ID!, $outcome: TriggerOutcome) {
  trigger(id: $id) { timing runs(last: 100, outcome: $outcome) { id outcome attempts nextAttemptAt error input output } }
}`;

type Run = { id: string; outcome: string; attempts: number; nextAttemptAt: string | null; error: string | null; input: any; output: any };

let receiver: Receiver;
let server: TestServer;
/** Answers per path: a list of statuses used in turn (the last one repeats). */
const scripts = new Map<string, { status: number; headers?: Record<string, string>; delayMs?: number }[]>();
const seen = new Map<string, number>();

beforeAll(async () => {
  receiver = await startReceiver((request) => {
    const script = scripts.get(request.path) ?? [{ status: 200 }];
    const n = seen.get(request.path) ?? 0;
    seen.set(request.path, n + 1);
    return script[Math.min(n, script.length - 1)]!;
  });
  server = await startServer({
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
    TRIGGER_RETRY_BASE_MS: "20",
    TRIGGER_RETRY_MAX_MS: "100",
    TRIGGER_RETRY_LIMIT: "3",
    TRIGGER_RETRY_AFTER_MAX_MS: "1500",
  });
});

async function runsOf(id: string, outcome?: string): Promise<Run[]> {
  const body = await admin(server.httpUrl, RUNS, { id, outcome });
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.trigger.runs;
}

function archive(path: string, extra: Record<string, unknown> = {}) {
  return createTrigger(server.httpUrl, {
    timing: "AFTER",
    stack: [{ http: { url: `'${receiver.origin}${path}'`, body: "{ 'channel': channel, 'payload': payload }" }, as: "r" }],
    ...extra,
  });
}

const send = (channel: string, payload: unknown, options?: unknown) =>
  httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload, options }).then((r) => r.body);

const requestsTo = (path: string) => receiver.requests.filter((request) => request.path === path);

describe("AFTER triggers", () => {
  it("retries a failing receiver with the same webhook-id until it succeeds: DELIVERED with attempts 3", async () => {
    scripts.set("/flaky", [{ status: 500 }, { status: 502 }, { status: 200 }]);
    const trigger = await archive("/flaky", { channel: "flaky" });
    expect(trigger).toMatchObject({ id: expect.any(String) });
    const sent = await send("flaky", { text: "hello" });
    expect(sent.data!.sendMessage).toMatchObject({ delivered: true, event: { payload: { text: "hello" } } });

    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    const [run] = await runsOf(trigger.id);
    expect(run).toMatchObject({ outcome: "DELIVERED", attempts: 3, nextAttemptAt: null, error: null });
    const requests = requestsTo("/flaky");
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((request) => request.webhookId))).toEqual(new Set([`msg_${run!.id}`]));
    for (const request of requests) {
      expect(() => new Webhook(SECRET).verify(request.body, request.headers as Record<string, string>)).not.toThrow();
      expect(JSON.parse(request.body)).toEqual({ channel: "flaky", payload: { text: "hello" } });
    }
  });

  it("fails at once on a 4xx answer (no retry), and retryTriggerRun queues the FAILED run again", async () => {
    scripts.set("/gone", [{ status: 404 }, { status: 201 }]);
    const trigger = await archive("/gone", { channel: "gone" });
    await send("gone", { n: 1 });
    await eventually("FAILED", async () => (await runsOf(trigger.id))[0]?.outcome === "FAILED", { timeoutMs: 20_000 });
    const [failed] = await runsOf(trigger.id, "FAILED");
    expect(failed).toMatchObject({ attempts: 1, nextAttemptAt: null, error: expect.stringContaining("404") });
    expect(requestsTo("/gone")).toHaveLength(1);

    const retried = await admin(server.httpUrl, `mutation ($id: ID!) { retryTriggerRun(id: $id) { id outcome attempts } }`, {
      id: failed!.id,
    });
    expect(retried.data!.retryTriggerRun).toMatchObject({ id: failed!.id, outcome: "PENDING", attempts: 0 });
    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    expect((await runsOf(trigger.id))[0]).toMatchObject({ id: failed!.id, attempts: 1, error: null });
    expect(requestsTo("/gone").map((request) => request.webhookId)).toEqual([`msg_${failed!.id}`, `msg_${failed!.id}`]);

    // Only a FAILED run can be retried; an unknown one is NOT_FOUND.
    const again = await admin(server.httpUrl, `mutation ($id: ID!) { retryTriggerRun(id: $id) { id } }`, { id: failed!.id });
    expect(again.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const unknown = await admin(server.httpUrl, `mutation { retryTriggerRun(id: "nope") { id } }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("gives up after TRIGGER_RETRY_LIMIT attempts: FAILED with attempts 3", async () => {
    scripts.set("/down", [{ status: 503 }]);
    const trigger = await archive("/down", { channel: "down" });
    await send("down", {});
    await eventually("FAILED", async () => (await runsOf(trigger.id))[0]?.outcome === "FAILED", { timeoutMs: 20_000 });
    expect((await runsOf(trigger.id))[0]).toMatchObject({ attempts: 3, error: expect.stringContaining("503") });
    expect(requestsTo("/down")).toHaveLength(3);
  });

  it("retries a run that ran out of time (TRIGGER_TIMEOUT_MS) waiting for a slow receiver", async () => {
    scripts.set("/slow", [{ status: 200, delayMs: 2500 }, { status: 200 }]);
    const trigger = await archive("/slow", { channel: "slow" });
    await send("slow", {});
    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    expect((await runsOf(trigger.id))[0]).toMatchObject({ attempts: 2, error: null });
    const [first, second] = requestsTo("/slow");
    expect(second!.webhookId).toBe(first!.webhookId);
  });

  it("waits as long as a Retry-After answer asks when that is longer than the backoff", async () => {
    scripts.set("/busy", [{ status: 429, headers: { "retry-after": "1" } }, { status: 200 }]);
    const trigger = await archive("/busy", { channel: "busy" });
    await send("busy", {});
    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    const [first, second] = requestsTo("/busy");
    expect(second!.webhookId).toBe(first!.webhookId);
    // The backoff alone would have waited at most 20 ms.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it("waits at most TRIGGER_RETRY_AFTER_MAX_MS when a Retry-After answer asks for a day", async () => {
    scripts.set("/tomorrow", [{ status: 503, headers: { "retry-after": "86400" } }, { status: 200 }]);
    const trigger = await archive("/tomorrow", { channel: "tomorrow" });
    await send("tomorrow", {});
    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    expect((await runsOf(trigger.id))[0]).toMatchObject({ attempts: 2, error: null });
    const [first, second] = requestsTo("/tomorrow");
    expect(second!.webhookId).toBe(first!.webhookId);
    // The cap, not the backoff (at most 20 ms here).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1450);
  });

  it("refuses drop and reject steps anywhere in an AFTER trigger's stack with BAD_USER_INPUT", async () => {
    const create = (stack: unknown[]) =>
      admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: "after", actions: ["MESSAGE"], channel: "refused", timing: "AFTER", stack },
      });
    for (const [stack, path] of [
      [[{ drop: true }], "stack[0].drop"],
      [[{ log: "1" }, { reject: "'no'" }], "stack[1].reject"],
      [[{ if: "true", then: [{ if: "true", then: [{ log: "1" }], else: [{ drop: true }] }] }], "stack[0].then[0].else[0].drop"],
    ] as const) {
      const body = await create([...stack]);
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", path });
    }
    // Turning a BEFORE trigger that drops into an AFTER trigger is refused the same way.
    const before = await createTrigger(server.httpUrl, { channel: "refused", stack: [{ if: "false", then: [{ drop: true }] }] });
    const update = await admin(server.httpUrl, `mutation ($id: ID!) { updateTrigger(id: $id, input: { timing: AFTER }) { id } }`, {
      id: before.id,
    });
    expect(update.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", path: "stack[0].then[0].drop" });
    await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: before.id });
  });

  it("streams each stored attempt of an AFTER run to triggerRuns subscribers: PENDING with its next attempt, then DELIVERED", async () => {
    scripts.set("/streamed", [{ status: 503 }, { status: 200 }]);
    const trigger = await archive("/streamed", { channel: "streamed" });
    const warm = await createTrigger(server.httpUrl, { channel: "warm-up", stack: [{ log: "1" }] });
    const adminClient = await connectWs(server.wsUrl, { adminToken: ADMIN_TOKEN });
    const runs = wsSubscribe<{
      triggerRuns: { triggerId: string; outcome: string; attempts: number | null; nextAttemptAt: string | null };
    }>(adminClient, `subscription { triggerRuns { triggerId outcome attempts nextAttemptAt } }`);
    // The subscription is live once a BEFORE run of the warm-up trigger arrives.
    const first = runs.next();
    while (!(await Promise.race([first, send("warm-up", {}).then(() => null)])));
    expect((await first).data!.triggerRuns.triggerId).toBe(warm.id);

    await send("streamed", { text: "live" });
    const attempts = [];
    while (attempts.length < 2) {
      const run = (await runs.next()).data!.triggerRuns;
      if (run.triggerId === trigger.id) attempts.push(run);
    }
    expect(attempts[0]).toMatchObject({ outcome: "PENDING", attempts: 1, nextAttemptAt: expect.any(String) });
    expect(attempts[1]).toMatchObject({ outcome: "DELIVERED", attempts: 2, nextAttemptAt: null });
    runs.unsubscribe();
  });

  it("delivers and acknowledges messages while an AFTER stack is busy until its time limit", async () => {
    // A tail-recursive loop keeps the AFTER run busy until its time limit (TRIGGER_TIMEOUT_MS) ends it.
    const busy = await createTrigger(server.httpUrl, {
      channel: "busy-cpu",
      timing: "AFTER",
      stack: [{ var: "spun", value: "($spin := function($n) { $n > 0 ? $spin($n - 1) : 0 }; $spin(1000000000))" }],
    });
    await send("busy-cpu", {});
    await eventually("the run's attempt started", async () => (await runsOf(busy.id))[0]?.attempts === 1, { timeoutMs: 20_000 });
    for (let n = 0; n < 5; n++) expect((await send("elsewhere", { n })).data!.sendMessage).toMatchObject({ delivered: true });
    // All of that happened while the attempt was still running.
    expect((await runsOf(busy.id))[0]).toMatchObject({ outcome: "PENDING", attempts: 1 });
    await eventually("FAILED", async () => (await runsOf(busy.id))[0]?.outcome === "FAILED", { timeoutMs: 20_000 });
    expect((await runsOf(busy.id))[0]!.error).toMatch(/time|Timeout|timed out/i);
  });

  it("runs on the event as delivered, after every BEFORE trigger, never changes it, and skips dropped and refused events", async () => {
    await createTrigger(server.httpUrl, {
      channel: "guarded",
      order: 10,
      stack: [
        { if: "payload.text = 'quiet'", then: [{ drop: true }] },
        { if: "payload.text = 'bad'", then: [{ reject: "'refused'" }] },
        { set: "payload.checked", value: "true" },
      ],
    });
    const after = await createTrigger(server.httpUrl, {
      channel: "guarded",
      order: -10, // still after every BEFORE trigger
      timing: "AFTER",
      stack: [
        { set: "payload.text", value: "'changed by AFTER'" },
        { incr: "'seen'", as: "seen" },
        { http: { url: `'${receiver.origin}/guarded'`, body: "{ 'payload': payload, 'seen': $seen }" }, as: "r" },
      ],
    });
    expect((await admin(server.httpUrl, RUNS, { id: after.id })).data!.trigger.timing).toBe("AFTER");
    const ok = await send("guarded", { text: "fine" });
    expect(ok.data!.sendMessage).toMatchObject({ delivered: true, event: { payload: { text: "fine", checked: true } } });
    expect((await send("guarded", { text: "quiet" })).data!.sendMessage).toMatchObject({ delivered: false });
    expect((await send("guarded", { text: "bad" })).errors?.[0]?.message).toBe("refused");
    // On a channel that keeps history, the runs are stored in the history write's transaction.
    await admin(server.httpUrl, `mutation { createChannel(input: { pattern: "guarded", history: 10 }) { id } }`);
    await send("guarded", { text: "kept" });

    await eventually("two deliveries", async () => requestsTo("/guarded").length >= 2, { timeoutMs: 20_000 });
    await eventually("two DELIVERED runs", async () => (await runsOf(after.id, "DELIVERED")).length === 2, { timeoutMs: 20_000 });
    const runs = await runsOf(after.id);
    expect(runs).toHaveLength(2);
    expect(runs.map((run) => run.input.payload.text).sort()).toEqual(["fine", "kept"]);
    expect(runs.every((run) => run.output.payload.text === "changed by AFTER")).toBe(true);
    const bodies = requestsTo("/guarded").map((request) => JSON.parse(request.body));
    expect(bodies.map((body) => body.seen).sort()).toEqual([1, 2]); // state steps work in AFTER triggers
    expect(bodies.map((body) => body.payload.checked)).toEqual([true, true]);
    const history = await httpGraphQL(server.httpUrl, `{ history(channel: "guarded", last: 10) { payload } }`);
    expect(history.body.data!.history).toEqual([{ payload: { text: "kept", checked: true } }]);
  });
});
