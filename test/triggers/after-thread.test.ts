import { join } from "node:path";
import { pino } from "pino";
import { expect, it } from "vitest";
import { openDatabase } from "../../src/db.js";
import { parseEnv } from "../../src/env.js";
import { AfterRunQueue } from "../../src/triggers/after-runs.js";
import { AfterRunThread } from "../../src/triggers/after-thread.js";
import { TriggerStore } from "../../src/triggers/store.js";
import { eventually } from "../helpers/receiver.js";
import { freshDataDir } from "../helpers/server.js";

const RESTARTED = "the AFTER trigger thread ended; starting it again";

it("starts the AFTER thread again when it ends unexpectedly, and stops for good when told to", async () => {
  const db = await openDatabase(`file:${join(freshDataDir(), "realtime.db")}`);
  const logs: { msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const queue = new AfterRunQueue(db.prisma, db.provider, new TriggerStore(db.prisma), logger, {
    maxPending: 10,
    keepPerTrigger: 10,
    leaseMs: 1000,
  });
  // The thread opens a database connection of its own: here one that is refused (nothing listens on
  // loopback port 1), so the thread fails as it starts, again and again.
  const thread = new AfterRunThread({ env: parseEnv({ LOG_LEVEL: "silent" }), databaseUrl: "postgres://127.0.0.1:1/none" }, queue, logger, {
    webhookCall: () => {},
    attempted: () => {},
  });
  try {
    thread.start();
    const restarts = () => logs.filter((entry) => entry.msg === RESTARTED).length;
    await eventually(() => restarts() >= 2, 30_000, "two restarts");
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
