import { describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { spawnServer } from "../helpers/process.js";
import { startReceiver } from "../helpers/receiver.js";
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
    await eventually("first attempts", () => new Set(receiver.requests.map((request) => request.webhookId)).size === 8, {
      timeoutMs: 30_000,
    });
    await first.stop("SIGKILL");

    up = true;
    const second = await spawnServer(env);
    await eventually(
      "every run DELIVERED after the restart",
      async () =>
        ((await admin(second.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs as Run[]).every((run) => run.outcome === "DELIVERED"),
      { timeoutMs: 60_000 },
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

  it("refuses sends whose AFTER runs find no room (the trigger's share, then the queue) with SERVICE_UNAVAILABLE, logging each bound once", {
    timeout: 60_000,
  }, async () => {
    const receiver = await startReceiver(() => ({ status: 503, headers: { "retry-after": "3600" } }));
    const server = await spawnServer({
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
      TRIGGER_QUEUE_MAX: "3",
      TRIGGER_QUEUE_MAX_PER_TRIGGER: "2",
    });
    const triggers = [];
    for (const channel of ["first", "second"])
      triggers.push(
        await createTrigger(server.httpUrl, {
          name: channel,
          channel,
          timing: "AFTER",
          stack: [{ http: { url: `'${receiver.origin}/${channel}'`, body: "payload" }, as: "r" }],
        }),
      );
    const send = async (channel: string, n: number) => {
      const { body } = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { n } });
      return body.data?.sendMessage?.delivered === true ? "delivered" : body.errors?.[0]?.extensions?.reason;
    };
    const outcomes = [];
    for (let n = 0; n < 4; n++) outcomes.push(await send("first", n));
    for (let n = 0; n < 3; n++) outcomes.push(await send("second", n));
    expect(outcomes).toEqual(["delivered", "delivered", "trigger_share", "trigger_share", "delivered", "queue_full", "queue_full"]);
    for (const [trigger, kept] of [
      [triggers[0]!, 2],
      [triggers[1]!, 1],
    ] as const) {
      const runs = (await admin(server.httpUrl, RUNS, { id: trigger.id })).data!.trigger.runs as Run[];
      expect(runs).toHaveLength(kept);
      expect(runs.every((run) => run.outcome === "PENDING")).toBe(true);
    }
    const refusals = () =>
      server
        .output()
        .split("\n")
        .filter((line) => line.includes("AFTER trigger queue full"))
        .map((line) => JSON.parse(line));
    await eventually("the refusals logged", () => refusals().length === 2, { timeoutMs: 10_000 });
    expect(refusals()).toEqual([
      expect.objectContaining({ level: 40, cause: "trigger_share", triggerId: triggers[0]!.id, channel: "first" }),
      expect.objectContaining({ level: 40, cause: "queue_full", channel: "second" }),
    ]);
    expect(refusals()[0].msg).toContain("TRIGGER_QUEUE_MAX_PER_TRIGGER");
  });
});
