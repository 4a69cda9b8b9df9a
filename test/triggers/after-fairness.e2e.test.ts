import { describe, expect, it } from "vitest";
import { joinBySubscription, SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL } from "../helpers/graphql.js";
import { scrape } from "../helpers/metrics.js";
import { type Receiver, type ReceiverAnswer, startReceiver } from "../helpers/receiver.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = `whsec_${Buffer.from("an-after-trigger-secret-0123456").toString("base64")}`;
const RUNS = `query ($id: ID!) { trigger(id: $id) { runs(last: 100) { id outcome attempts nextAttemptAt input } } }`;
type Run = { id: string; outcome: string; attempts: number; nextAttemptAt: string | null; input: { payload: { n: number } } };

/** A receiver answering per path, and a server whose AFTER triggers may call it, with `env` on top. */
async function setUp(
  answer: (path: string) => ReceiverAnswer,
  env: Record<string, string>,
): Promise<{ receiver: Receiver; server: TestServer }> {
  const receiver = await startReceiver((request) => answer(request.path));
  const server = await startServer({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`, ...env });
  return { receiver, server };
}

/** An AFTER trigger on `channel` posting `{ n: payload.n }` to the receiver's `path`. */
function forward(server: TestServer, receiver: Receiver, channel: string, path: string) {
  return createTrigger(server.httpUrl, {
    name: channel,
    channel,
    timing: "AFTER",
    stack: [{ http: { url: `'${receiver.origin}${path}'`, body: "{ 'n': payload.n }" }, as: "r" }],
  });
}

const send = (server: TestServer, channel: string, n: number) =>
  httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { n } }).then((response) => response.body);

async function runsOf(server: TestServer, id: string): Promise<Run[]> {
  const body = await admin(server.httpUrl, RUNS, { id });
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.trigger.runs;
}

/** The runs of a trigger waiting for an attempt, as GET /metrics reports them. */
const pendingRuns = async (server: TestServer, triggerId: string) =>
  (await scrape(server.httpUrl)).value("realtime_after_trigger_runs_pending_per_trigger", { trigger: triggerId });

const numbersSentTo = (receiver: Receiver, path: string) =>
  receiver.requests.filter((request) => request.path === path).map((request) => JSON.parse(request.body).n as number);

describe("AFTER triggers share the queue fairly", () => {
  it("refuses sends past a trigger's share before delivery while its receiver asks for a day; an unrelated trigger gets every run", {
    timeout: 60_000,
  }, async () => {
    const { receiver, server } = await setUp(
      (path) => (path === "/down" ? { status: 503, headers: { "retry-after": "86400" } } : { status: 200 }),
      // Room for the stuck trigger's share and the other trigger's five runs, not for more.
      { TRIGGER_QUEUE_MAX_PER_TRIGGER: "5", TRIGGER_QUEUE_MAX: "10" },
    );
    const down = await forward(server, receiver, "down", "/down");
    const up = await forward(server, receiver, "up", "/up");
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "down");

    const answers = [];
    for (let n = 0; n < 8; n++) answers.push(await send(server, "down", n));
    expect(answers.slice(0, 5).map((answer) => answer.data?.sendMessage?.delivered)).toEqual([true, true, true, true, true]);
    for (const refused of answers.slice(5)) {
      expect(refused.data?.sendMessage ?? null).toBeNull();
      expect(refused.errors?.[0]?.extensions).toMatchObject({
        code: "SERVICE_UNAVAILABLE",
        reason: "trigger_share",
        retryAfterMs: expect.any(Number),
      });
      expect(refused.errors![0]!.extensions!.retryAfterMs).toBeGreaterThan(0);
    }

    for (let n = 0; n < 5; n++) expect((await send(server, "up", n)).data?.sendMessage?.delivered).toBe(true);
    await eventually("every run DELIVERED", async () => (await runsOf(server, up.id)).every((run) => run.outcome === "DELIVERED"), {
      timeoutMs: 20_000,
    });
    expect(await runsOf(server, up.id)).toHaveLength(5);
    expect(numbersSentTo(receiver, "/up").sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);

    // The stuck trigger holds the five acknowledged sends' runs, each tried once and waiting at most
    // TRIGGER_RETRY_AFTER_MAX_MS (5 minutes by default), not the day its receiver asked for.
    await eventually("first attempts", async () => (await runsOf(server, down.id)).every((run) => run.attempts === 1), {
      timeoutMs: 20_000,
    });
    const stuck = await runsOf(server, down.id);
    expect(stuck.map((run) => run.input.payload.n).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    for (const run of stuck) {
      expect(run.outcome).toBe("PENDING");
      expect(Date.parse(run.nextAttemptAt!)).toBeLessThanOrEqual(Date.now() + 300_000);
    }
    await expect.poll(() => pendingRuns(server, down.id), { timeout: 10_000 }).toBe(5);
    const metrics = await scrape(server.httpUrl);
    expect(metrics.value("realtime_after_trigger_refusals_total", { cause: "trigger_share" })).toBe(3);
    expect(metrics.value("realtime_after_trigger_refusals_total", { cause: "queue_full" })).toBe(0);
    await expect.poll(() => pendingRuns(server, up.id), { timeout: 10_000 }).toBe(0);

    // The refused messages reached nobody: once the stuck trigger is gone, the subscriber's next
    // message after the five acknowledged ones is the next one sent. The trigger's series goes with it.
    expect((await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: down.id })).data).toEqual({
      deleteTrigger: true,
    });
    expect((await send(server, "down", 99)).data?.sendMessage?.delivered).toBe(true);
    const received = [];
    for (let i = 0; i < 6; i++) received.push((await watcher.subscription.next()).data!.channel.payload.n);
    expect(received).toEqual([0, 1, 2, 3, 4, 99]);
    await expect.poll(async () => (await scrape(server.httpUrl)).labelValues().includes(down.id), { timeout: 10_000 }).toBe(false);
  });

  it("attempts another trigger's run while a slow trigger's attempt is under way (per-trigger concurrency 1)", {
    timeout: 60_000,
  }, async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The slow trigger's requests are answered only once the quick trigger's request has arrived.
    const { receiver, server } = await setUp((path) => (path === "/slow" ? { status: 200, until: released } : { status: 200 }), {
      TRIGGER_CONCURRENCY_PER_TRIGGER: "1",
      TRIGGER_TIMEOUT_MS: "10000",
    });
    const slow = await forward(server, receiver, "slow", "/slow");
    await forward(server, receiver, "quick", "/quick");
    for (let n = 0; n < 20; n++) expect((await send(server, "slow", n)).data?.sendMessage?.delivered).toBe(true);
    await eventually("the slow trigger's first request", () => numbersSentTo(receiver, "/slow").length > 0, { timeoutMs: 20_000 });
    expect((await send(server, "quick", 0)).data?.sendMessage?.delivered).toBe(true);

    await eventually("the quick trigger's request", () => numbersSentTo(receiver, "/quick").length === 1, { timeoutMs: 20_000 });
    // Its 19 other runs waited for the one attempt under way; the quick trigger's did not.
    expect(numbersSentTo(receiver, "/slow")).toHaveLength(1);
    release();
    await eventually("every slow run", async () => (await runsOf(server, slow.id)).every((run) => run.outcome === "DELIVERED"), {
      timeoutMs: 30_000,
    });
    expect(numbersSentTo(receiver, "/slow").sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
  });
});
