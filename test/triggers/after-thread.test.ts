import { join } from "node:path";
import { pino } from "pino";
import { expect, it } from "vitest";
import { openDatabase } from "../../src/db.js";
import { parseEnv } from "../../src/env.js";
import { OutageLog } from "../../src/observability/outages.js";
import { AfterRunQueue } from "../../src/triggers/after/queue.js";
import { AfterRunThread } from "../../src/triggers/after-thread.js";
import { TriggerStore } from "../../src/triggers/store/trigger-store.js";
import { eventually } from "../helpers/eventually.js";
import { freshDataDir } from "../helpers/server.js";

const RESTARTED = "the AFTER trigger thread ended; starting it again";

it("starts the AFTER thread again when it ends unexpectedly, and stops for good when told to", async () => {
  const db = await openDatabase(`file:${join(freshDataDir(), "realtime.db")}`);
  const logs: { msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const queue = new AfterRunQueue(db.prisma, db.provider, new TriggerStore(db.prisma), logger, {
    maxPending: 10,
    maxPendingPerTrigger: 10,
    countIntervalMs: 500,
    keepPerTrigger: 10,
    leaseMs: 1000,
    attemptsKept: 5,
  });
  // The thread opens a database of its own: here a file it cannot create (its folder does not exist),
  // so the thread fails as it starts, again and again. (An unreachable database it would wait for.)
  const missing = `file:${join(freshDataDir(), "no-such-folder", "realtime.db")}`;
  const thread = new AfterRunThread(
    { env: parseEnv({ LOG_LEVEL: "silent" }), databaseUrl: missing },
    queue,
    logger,
    { webhookCall: () => {}, attempted: () => {} },
    new OutageLog("database", logger),
  );
  try {
    thread.start();
    const restarts = () => logs.filter((entry) => entry.msg === RESTARTED).length;
    await eventually("two restarts", () => restarts() >= 2, { timeoutMs: 30_000 });
    expect(logs.some((entry) => entry.msg === "the AFTER trigger thread failed")).toBe(true);
    await thread.stop();
    const stoppedAt = restarts();
    // No restart after stop(): wait past the restart delay (1 s).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(restarts()).toBe(stoppedAt);
  } finally {
    await thread.stop();
    await db.close();
  }
});
