import type { Env } from "../env.js";
import type { AfterRunQueueOptions } from "./after/queue.js";
import type { AfterRunWorkerOptions } from "./after/worker.js";
import type { StackLimits } from "./compile/stack.js";
import type { StateLimits } from "./state/state.js";
import { createWebhookClient, type WebhookClient } from "./webhook/client.js";

/*
 * The trigger settings read from the environment, in one place: the server's main thread and the
 * AFTER trigger worker's thread build their trigger runtime from the same values.
 */

/** AFTER trigger attempts one instance runs at once (`TRIGGER_CONCURRENCY_PER_TRIGGER` is at most this). */
const AFTER_RUN_CONCURRENCY = 16;
/** How often an instance looks for AFTER runs it was not told about (queued elsewhere, due again, or left by a crashed instance). */
export const AFTER_RUN_POLL_MS = 500;

/** The signing webhook client for `http` steps; none (http steps refused at save) without `WEBHOOK_SECRET`. */
export function webhookClientFromEnv(env: Env): WebhookClient | undefined {
  if (!env.WEBHOOK_SECRET) return undefined;
  const allowHosts = env.WEBHOOK_ALLOW_HOSTS.split(",")
    .map((host) => host.trim())
    .filter(Boolean);
  return createWebhookClient({ secret: env.WEBHOOK_SECRET, allowHosts });
}

/** How trigger stacks are compiled: expression time limit, and whether `http` steps may be saved. */
export function stackLimitsFromEnv(env: Env): Partial<StackLimits> {
  return { expressionTimeoutMs: env.TRIGGER_TIMEOUT_MS, allowHttpSteps: env.WEBHOOK_SECRET !== undefined };
}

/** What each trigger run may use: its time limit and memory. */
export function runLimitsFromEnv(env: Env): { timeoutMs: number; maxMemoryBytes: number } {
  return { timeoutMs: env.TRIGGER_TIMEOUT_MS, maxMemoryBytes: env.TRIGGER_MEMORY_MB * 1024 * 1024 };
}

/** The bounds of triggers' state steps. */
export function stateLimitsFromEnv(env: Env): StateLimits {
  return { maxKeys: env.TRIGGER_STATE_MAX_KEYS, maxValueBytes: env.TRIGGER_STATE_MAX_VALUE_BYTES };
}

/** The AFTER run queue's bounds. */
export function afterQueueOptionsFromEnv(env: Env): AfterRunQueueOptions {
  return {
    maxPending: env.TRIGGER_QUEUE_MAX,
    maxPendingPerTrigger: Math.min(env.TRIGGER_QUEUE_MAX_PER_TRIGGER, env.TRIGGER_QUEUE_MAX),
    // The AFTER thread's host counts the pending runs this often.
    countIntervalMs: AFTER_RUN_POLL_MS,
    keepPerTrigger: env.TRIGGER_RUNS_KEPT,
    // An attempt ends within TRIGGER_TIMEOUT_MS; a run leased longer than that belongs to an instance that is gone.
    leaseMs: env.TRIGGER_TIMEOUT_MS + 5000,
    // A run's records: one whole set of attempts (with older ones of earlier sets, after a retry).
    attemptsKept: env.TRIGGER_RETRY_LIMIT,
  };
}

/** How the AFTER worker retries, how many attempts it runs at once (in all and per trigger), and how often it polls. */
export function afterWorkerOptionsFromEnv(env: Env): AfterRunWorkerOptions {
  return {
    retry: {
      baseMs: env.TRIGGER_RETRY_BASE_MS,
      maxMs: env.TRIGGER_RETRY_MAX_MS,
      limit: env.TRIGGER_RETRY_LIMIT,
      retryAfterMaxMs: env.TRIGGER_RETRY_AFTER_MAX_MS,
    },
    concurrency: AFTER_RUN_CONCURRENCY,
    concurrencyPerTrigger: Math.min(env.TRIGGER_CONCURRENCY_PER_TRIGGER, AFTER_RUN_CONCURRENCY),
    pollMs: AFTER_RUN_POLL_MS,
  };
}
