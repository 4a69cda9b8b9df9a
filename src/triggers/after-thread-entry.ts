/**
 * What the AFTER trigger thread runs (see after-thread.ts): its own database connection (and Redis
 * connection with `REDIS_URL`), its own copy of the triggers, and the {@link AfterRunWorker} that claims
 * and attempts the queued runs. Nothing here runs on the thread that delivers events.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isDatabaseUnreachable, openDatabase } from "../db.js";
import { createLogger } from "../logger.js";
import { countWebhookCalls } from "../observability/instrument.js";
import { OutageLog, whenReachable } from "../observability/outages.js";
import { isRedisUnreachable, RedisConnection } from "../realtime/redis.js";
import { AfterRunQueue } from "./after/queue.js";
import { AfterRunWorker } from "./after/worker.js";
import type { AfterThreadData, FromAfterThread, ToAfterThread } from "./after-thread.js";
import {
  afterQueueOptionsFromEnv,
  afterWorkerOptionsFromEnv,
  runLimitsFromEnv,
  stackLimitsFromEnv,
  stateLimitsFromEnv,
  webhookClientFromEnv,
} from "./settings.js";
import { RedisStateStore } from "./state/redis.js";
import { DatabaseStateStore, TriggerState } from "./state/state.js";
import { TriggerStore } from "./store/trigger-store.js";

const port = parentPort;
if (!port) throw new Error("after-thread-entry runs as a worker thread (see after-thread.ts)");
const { env, databaseUrl } = workerData as AfterThreadData;
const post = (message: FromAfterThread) => port.postMessage(message);

const logger = createLogger(env.LOG_LEVEL, env.LOG_FORMAT).child({ thread: "after" });
const db = await openDatabase(databaseUrl);
const databaseOutage = new OutageLog("database", logger, () => db.ping());
const redis = env.REDIS_URL ? new RedisConnection(env.REDIS_URL, env.REDIS_PREFIX, logger) : null;

/** The outage a start-up failure belongs to, if it is one (see {@link whenReachable}). */
const outageOf = (error: unknown) =>
  isDatabaseUnreachable(error) ? databaseOutage : isRedisUnreachable(error) ? (redis?.outage ?? null) : null;

await whenReachable(async () => redis?.ready(), outageOf);
const triggers = new TriggerStore(db.prisma, stackLimitsFromEnv(env));
await whenReachable(() => triggers.reload(), outageOf);
// The main thread purges expired state keys; this thread only reads and writes them.
const triggerState = new TriggerState(
  redis ? new RedisStateStore(redis, { background: false }) : new DatabaseStateStore(db, { background: false }),
  stateLimitsFromEnv(env),
);
const webhookClient = webhookClientFromEnv(env);
// Counted by the main thread's metrics, which serve GET /metrics.
const webhooks = webhookClient && countWebhookCalls(webhookClient, { webhookCall: (status) => post({ type: "webhook", status }) });
const queue = new AfterRunQueue(db.prisma, db.provider, triggers, logger, afterQueueOptionsFromEnv(env));
const worker = new AfterRunWorker(queue, triggers, { ...runLimitsFromEnv(env), webhooks, triggerState }, logger, {
  ...afterWorkerOptionsFromEnv(env),
  databaseOutage,
  onAttempt: (run) => post({ type: "attempt", run }),
});

async function stop(): Promise<void> {
  databaseOutage.close();
  await worker.stop();
  await triggerState.store.close();
  await redis?.close();
  await db.close();
  post({ type: "stopped" });
  port?.close();
}

port.on("message", (message: ToAfterThread) => {
  switch (message.type) {
    case "queued":
      worker.runsQueued();
      break;
    case "trigger":
      triggers.refresh(message.id).catch((error: unknown) => logger.error({ err: error }, "could not reload a trigger for AFTER runs"));
      break;
    case "stop":
      void stop();
      break;
  }
});
worker.start();
