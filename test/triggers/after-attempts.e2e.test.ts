import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { type Receiver, type ReceiverAnswer, startReceiver } from "../helpers/receiver.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

// Every attempt of an AFTER run is kept and listed in `TriggerRun.attemptHistory`: against a real
// server (SQLite here, PostgreSQL in the postgres project) and a real receiver on 127.0.0.1.

const SECRET = `whsec_${Buffer.from("an-after-attempts-secret-012345").toString("base64")}`;
const HISTORY = `query ($id: ID!, $last: Int) {
  trigger(id: $id) {
    runs(last: $last) {
      id outcome attempts
      attemptHistory {
        number startedAt durationMs outcome error
        requests { method url status durationMs responseExcerpt responseTruncated }
      }
    }
  }
}`;

interface Attempt {
  number: number;
  startedAt: string;
  durationMs: number;
  outcome: string;
  error: string | null;
  requests: {
    method: string;
    url: string;
    status: number | null;
    durationMs: number;
    responseExcerpt: string | null;
    responseTruncated: boolean;
  }[];
}
type Run = { id: string; outcome: string; attempts: number; attemptHistory: Attempt[] };

let receiver: Receiver;
/** A loopback port whose connections are closed as soon as a request arrives: no response, ever. */
let hangUp: Server;
let hangUpPort: number;
let server: TestServer;
/** Answers per path, used in turn (the last one repeats). */
const scripts = new Map<string, ReceiverAnswer[]>();
const seen = new Map<string, number>();

beforeAll(async () => {
  receiver = await startReceiver((request) => {
    const path = request.path.split("?")[0]!;
    const script = scripts.get(path) ?? [{ status: 200 }];
    const n = seen.get(path) ?? 0;
    seen.set(path, n + 1);
    return script[Math.min(n, script.length - 1)]!;
  });
  hangUp = createServer((socket) => socket.on("data", () => socket.destroy()));
  await new Promise<void>((resolve) => hangUp.listen(0, "127.0.0.1", resolve));
  hangUpPort = (hangUp.address() as AddressInfo).port;
  server = await startServer({
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port},127.0.0.1:${hangUpPort}`,
    TRIGGER_RETRY_BASE_MS: "20",
    TRIGGER_RETRY_MAX_MS: "100",
    TRIGGER_RETRY_LIMIT: "3",
    TRIGGER_RUNS_KEPT: "2",
  });
});

afterAll(async () => {
  await server?.stop();
  await new Promise((resolve) => hangUp?.close(resolve));
});

async function runsOf(id: string): Promise<Run[]> {
  const body = await admin(server.httpUrl, HISTORY, { id, last: 100 });
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.trigger.runs;
}

/** An AFTER trigger on `channel` calling the receiver at `path` (which may carry a query string). */
function archive(channel: string, path: string) {
  return createTrigger(server.httpUrl, {
    channel,
    timing: "AFTER",
    stack: [
      {
        http: {
          url: `'${receiver.origin}${path}'`,
          headers: { Authorization: "'Bearer header-secret-42'" },
          body: "{ 'payload': payload }",
        },
        as: "r",
      },
    ],
  });
}

const send = (channel: string, payload: unknown) => httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload }).then((r) => r.body);

/** The stored attempt records of some runs, as the database holds them (every column, as text). */
async function storedAttempts(runIds: string[]): Promise<string> {
  const rows = await server.app.services.db.prisma.triggerAfterAttempt.findMany({ where: { runId: { in: runIds } } });
  return JSON.stringify(rows, (_key, value) => (typeof value === "bigint" ? String(value) : value));
}

async function countAttempts(runIds: string[]): Promise<number> {
  return server.app.services.db.prisma.triggerAfterAttempt.count({ where: { runId: { in: runIds } } });
}

const finished = (runs: Run[], count = 1) => runs.length >= count && runs.every((run) => run.outcome !== "PENDING");

describe("the attempts of AFTER trigger runs", () => {
  it("lists every attempt, oldest first, with each webhook call's status and response excerpt, and no secret", async () => {
    scripts.set("/flaky", [
      { status: 503, headers: { "content-type": "text/plain" }, body: "busy, come back later" },
      { status: 200, body: '{"ok":true,"id":42}' },
    ]);
    const trigger = await archive("flaky", "/flaky?token=query-secret-17&x=1");
    const sent = await send("flaky", { text: "hello" });
    expect(sent.data!.sendMessage).toMatchObject({ delivered: true });

    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    const [run] = await runsOf(trigger.id);
    expect(run).toMatchObject({ outcome: "DELIVERED", attempts: 2 });
    const history = run!.attemptHistory;
    expect(history.map((attempt) => attempt.number)).toEqual([1, 2]);
    expect(history.map((attempt) => attempt.outcome)).toEqual(["FAILED", "DELIVERED"]);
    expect(history[0]!.error).toContain("503");
    expect(history[1]!.error).toBeNull();
    expect(Date.parse(history[1]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(history[0]!.startedAt));
    for (const attempt of history) expect(attempt.durationMs).toBeGreaterThanOrEqual(0);
    expect(history.map((attempt) => attempt.requests)).toEqual([
      [
        {
          method: "POST",
          url: `${receiver.origin}/flaky`,
          status: 503,
          durationMs: expect.any(Number),
          responseExcerpt: "busy, come back later",
          responseTruncated: false,
        },
      ],
      [
        {
          method: "POST",
          url: `${receiver.origin}/flaky`,
          status: 200,
          durationMs: expect.any(Number),
          responseExcerpt: '{"ok":true,"id":42}',
          responseTruncated: false,
        },
      ],
    ]);
    // The receiver got the query string; the records keep neither it nor the headers nor the signature.
    expect(receiver.requests.filter((request) => request.path.startsWith("/flaky"))[0]!.path).toBe("/flaky?token=query-secret-17&x=1");
    const stored = await storedAttempts([run!.id]);
    expect(stored).toContain("/flaky");
    for (const secret of ["query-secret-17", "header-secret-42", "v1,", "webhook-signature", "x=1"]) expect(stored).not.toContain(secret);
  });

  it("keeps at most 1 KiB of a response body, cut between characters, and says it was cut", async () => {
    const big = `a${"é".repeat(600)}`; // 1201 bytes of UTF-8
    scripts.set("/big", [{ status: 200, headers: { "content-type": "text/plain; charset=utf-8" }, body: big }]);
    const trigger = await archive("big", "/big");
    await send("big", {});
    await eventually("DELIVERED", async () => (await runsOf(trigger.id))[0]?.outcome === "DELIVERED", { timeoutMs: 20_000 });
    const [request] = (await runsOf(trigger.id))[0]!.attemptHistory[0]!.requests;
    // 1 + 511 * 2 = 1023 bytes: a 512th "é" would pass 1024.
    expect(request).toMatchObject({ status: 200, responseTruncated: true, responseExcerpt: `a${"é".repeat(511)}` });
  });

  it("shows a call that got no response with a null status; keeps the history across retries, at most TRIGGER_RETRY_LIMIT", async () => {
    // The connection is closed without an answer: a failure worth retrying.
    const trigger = await createTrigger(server.httpUrl, {
      channel: "nowhere",
      timing: "AFTER",
      stack: [{ http: { url: `'http://127.0.0.1:${hangUpPort}/hook?key=k'` }, as: "r" }],
    });
    await send("nowhere", {});
    await eventually("FAILED", async () => (await runsOf(trigger.id))[0]?.outcome === "FAILED", { timeoutMs: 20_000 });
    const [failed] = await runsOf(trigger.id);
    expect(failed!.attemptHistory.map((attempt) => [attempt.number, attempt.outcome])).toEqual([
      [1, "FAILED"],
      [2, "FAILED"],
      [3, "FAILED"],
    ]);
    expect(failed!.attemptHistory[0]!.requests).toEqual([
      {
        method: "POST",
        url: `http://127.0.0.1:${hangUpPort}/hook`,
        status: null,
        durationMs: expect.any(Number),
        responseExcerpt: null,
        responseTruncated: false,
      },
    ]);

    // A retry keeps the history and numbers its attempts after it; the oldest make room, so a run
    // never keeps more than TRIGGER_RETRY_LIMIT (3 here) records.
    const retried = await admin(server.httpUrl, `mutation ($id: ID!) { retryTriggerRun(id: $id) { id attemptHistory { number } } }`, {
      id: failed!.id,
    });
    expect(retried.data!.retryTriggerRun).toEqual({ id: failed!.id, attemptHistory: [{ number: 1 }, { number: 2 }, { number: 3 }] });
    await eventually("FAILED again", async () => (await runsOf(trigger.id))[0]?.outcome === "FAILED", { timeoutMs: 20_000 });
    const [again] = await runsOf(trigger.id);
    expect(again).toMatchObject({ attempts: 3 });
    expect(again!.attemptHistory.map((attempt) => [attempt.number, attempt.outcome])).toEqual([
      [4, "FAILED"],
      [5, "FAILED"],
      [6, "FAILED"],
    ]);
    expect(await countAttempts([failed!.id])).toBe(3);
  });

  it("deletes the attempts with their runs: by the pruning of finished runs, and with the trigger", async () => {
    scripts.set("/pruned", [{ status: 500 }, { status: 200 }]);
    const trigger = await archive("pruned", "/pruned");
    // One at a time, so that every run has two attempts.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      seen.delete("/pruned");
      await send("pruned", { i });
      await eventually(`run ${i} delivered`, async () => {
        const runs = await runsOf(trigger.id);
        return finished(runs, i + 1);
      });
      const runs = await runsOf(trigger.id);
      ids.push(runs.find((run) => !ids.includes(run.id))!.id);
    }
    expect(await countAttempts(ids)).toBe(6);

    // TRIGGER_RUNS_KEPT is 2: the oldest run goes, and its attempts with it.
    await server.app.services.afterRuns.prune(trigger.id);
    expect((await runsOf(trigger.id)).map((run) => run.id).sort()).toEqual(ids.slice(1).sort());
    expect(await countAttempts(ids.slice(0, 1))).toBe(0);
    expect(await countAttempts(ids.slice(1))).toBe(4);

    const deleted = await admin(server.httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: trigger.id });
    expect(deleted.errors).toBeUndefined();
    expect(await countAttempts(ids)).toBe(0);
  });

  it("is admin only", async () => {
    const trigger = await archive("private", "/private");
    const body = (await httpGraphQL(server.httpUrl, HISTORY, { id: trigger.id })).body;
    expect(body.data?.trigger ?? null).toBeNull();
    expect(body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });
});
