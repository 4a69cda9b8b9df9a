import { describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { spawnServer } from "../helpers/process.js";
import { eventually, startReceiver } from "../helpers/receiver.js";
import { freshDataDir } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = `whsec_${Buffer.from("an-after-trigger-secret-0123456").toString("base64")}`;
const RUNS = `query ($id: ID!) { trigger(id: $id) { runs(last: 100) { id outcome attempts } } }`;
type Run = { id: string; outcome: string; attempts: number };

describe("AFTER trigger runs across a crash (SQLite)", () => {
  // Two server processes start here (each loads TypeScript through tsx): allow for a busy machine.
  it("delivers the runs pending when the server was killed with SIGKILL, after it restarts", { timeout: 120_000 }, async () => {
    let up = false;
    const receiver = await startReceiver(() => ({ status: up ? 200 : 503 }));
    const dataDir = freshDataDir();
    const env = {
      DATA_DIR: dataDir,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
      TRIGGER_RETRY_BASE_MS: "400",
      TRIGGER_RETRY_MAX_MS: "1000",
      TRIGGER_RETRY_LIMIT: "100",
    };
    const first = await spawnServer(env);
    const trigger = await createTrigger(first.httpUrl, {
      channel: "audit",
      timing: "AFTER",
      stack: [{ http: { url: `'${receiver.origin}/audit'`, body: "payload" }, as: "r" }],
    });
    const acknowledged: number[] = [];
    for (let n = 0; n < 8; n++) {
      const sent = await httpGraphQL(first.httpUrl, SEND_MESSAGE, { channel: "audit", payload: { n } });
      if (sent.body.data?.sendMessage?.delivered) acknowledged.push(n);
    }
    expect(acknowledged).toHaveLength(8);
    // Every run has been attempted (and failed) at least once: they are pending, some perhaps mid-attempt.
    await eventually(() => new Set(receiver.requests.map((request) => request.webhookId)).size === 8, 30_000, "first attempts");
    await first.stop("SIGKILL");

    up = true;
    const second = await spawnServer(env);
    await eventually(
      async () =>
        ((await admin(second.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs as Run[]).every((run) => run.outcome === "DELIVERED"),
      60_000,
      "every run DELIVERED after the restart",
    );
    const runs = (await admin(second.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs as Run[];
    expect(runs).toHaveLength(8);
    for (const run of runs) {
      const mine = receiver.requests.filter((request) => request.webhookId === `msg_${run.id}`);
      expect(mine.length).toBeGreaterThanOrEqual(2); // failed before the kill, succeeded after
      // An attempt is counted when it is claimed: one claimed just before the kill may not have sent its request.
      expect(run.attempts).toBeGreaterThanOrEqual(mine.length);
    }
    expect(new Set(receiver.requests.map((request) => JSON.parse(request.body).n))).toEqual(new Set(acknowledged));
  });

  it("refuses AFTER runs past TRIGGER_QUEUE_MAX with a logged error, and still delivers the events", { timeout: 60_000 }, async () => {
    const receiver = await startReceiver(() => ({ status: 503, headers: { "retry-after": "3600" } }));
    const server = await spawnServer({
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
      TRIGGER_QUEUE_MAX: "3",
    });
    const trigger = await createTrigger(server.httpUrl, {
      channel: "bounded",
      timing: "AFTER",
      stack: [{ http: { url: `'${receiver.origin}/bounded'`, body: "payload" }, as: "r" }],
    });
    for (let n = 0; n < 5; n++) {
      const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "bounded", payload: { n } });
      expect(sent.body.data?.sendMessage).toMatchObject({ delivered: true });
    }
    const runs = (await admin(server.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs as Run[];
    expect(runs).toHaveLength(3);
    expect(runs.every((run) => run.outcome === "PENDING")).toBe(true);
    await eventually(() => server.output().includes("TRIGGER_QUEUE_MAX"), 10_000, "the refusal logged");
    const refusals = server
      .output()
      .split("\n")
      .filter((line) => line.includes("TRIGGER_QUEUE_MAX"))
      .map((line) => JSON.parse(line));
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatchObject({ level: 50, channel: "bounded", triggers: [trigger.id] });
  });
});
