import { randomUUID } from "node:crypto";
import { isDatabaseUnreachable } from "../../db.js";
import { ErrorCode } from "../../errors.js";
import type { Logger } from "../../logger.js";
import type { OutageLog } from "../../observability/outages.js";
import { runTrigger, type TriggerRunOptions, triggerInput } from "../run/middleware.js";
import { type AfterAttemptRequest, type AfterRunRecord, capJson, keptUrl, textExcerpt } from "../run/records.js";
import type { TriggerStore } from "../store/trigger-store.js";
import { type WebhookClient, WebhookError, type WebhookRequest, type WebhookResponse } from "../webhook/client.js";
import { type AfterRunQueue, type AttemptResult, attemptRecord, type ClaimedRun, type FinishedAttempt } from "./queue.js";

/** How failed attempts are retried. */
export interface RetryPolicy {
  /** The wait after the first failed attempt, in milliseconds; it doubles with each further one. */
  readonly baseMs: number;
  /** The longest wait computed by doubling (a longer `Retry-After` still wins). */
  readonly maxMs: number;
  /** Attempts in all; a run whose last attempt fails is FAILED. */
  readonly limit: number;
  /** The longest `Retry-After` honoured; a longer one counts as this (0: `Retry-After` is ignored). */
  readonly retryAfterMaxMs: number;
}

/**
 * The wait before attempt `failed + 1`: `min(maxMs, baseMs * 2^(failed-1))`, with jitter (between half
 * and all of it, so instances retrying together spread out), or the receiver's `retryAfterMs` (at
 * most `retryAfterMaxMs`) when that is longer.
 */
export function retryDelay(policy: RetryPolicy, failed: number, retryAfterMs: number | null, random: () => number = Math.random): number {
  const backoff = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failed - 1));
  const jittered = Math.round(backoff / 2 + (random() * backoff) / 2);
  const asked = retryAfterMs === null ? 0 : Math.min(policy.retryAfterMaxMs, retryAfterMs);
  return Math.max(asked, jittered);
}

/**
 * A `Retry-After` header in milliseconds: delay-seconds or an HTTP date (relative to `now`); null
 * when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    // An HTTP date names its day and month ("Wed, 21 Oct 2026 07:28:00 GMT"); Date.parse alone would read "1.5" as a date.
    if (!/^[A-Za-z]{3},? /.test(text)) return null;
    const date = Date.parse(text);
    if (Number.isNaN(date)) return null;
    ms = date - now;
  }
  return Math.max(0, ms);
}

/** How soon runs queued on this instance are looked for, in milliseconds. */
const QUEUED_WAKE_MS = 20;

/** Polls between two prunings of finished runs. */
const POLLS_PER_PRUNE = 10;

/** Webhook failures worth another attempt: the network, a timeout, the run's time limit. */
const RETRYABLE_WEBHOOK_ERRORS = new Set(["WEBHOOK_FAILED", "WEBHOOK_TIMEOUT", "WEBHOOK_ABORTED"]);

/** What the http steps of one attempt ran into. */
interface AttemptFailures {
  retryable: boolean;
  retryAfterMs: number | null;
  /** Requests under way: the run may reach its time limit while one waits for the receiver (a timeout). */
  waiting: number;
  /** The requests made, in order (at most a stack's steps: there are no loops), each once it ended. */
  requests: SentRequest[];
}

/** A request of an attempt: how it ended, once it did. */
interface SentRequest {
  readonly method: string;
  readonly url: string;
  /** `performance.now()` when it was sent. */
  readonly started: number;
  ended?: AfterAttemptRequest;
}

/** The requests of an attempt as its record keeps them; one still under way (the run ran out of time) has no status. */
function keptRequests(requests: readonly SentRequest[]): AfterAttemptRequest[] {
  const now = performance.now();
  return requests.map(
    (request) =>
      request.ended ?? {
        method: request.method,
        url: request.url,
        status: null,
        durationMs: now - request.started,
        responseExcerpt: null,
        responseTruncated: false,
      },
  );
}

/** A response's body as text, for its excerpt: as received, else as the client decoded it. */
function responseText(response: WebhookResponse): string {
  if (response.text !== undefined) return response.text;
  if (typeof response.body === "string") return response.body;
  return response.body === undefined ? "" : (JSON.stringify(response.body) ?? "");
}

/**
 * The webhook client of one attempt: its requests carry ids derived from the run's id (the same on
 * every attempt, `msg_<run id>` for the first request, `msg_<run id>_<n>` for the n-th), and a
 * response that is not a success fails the step: 5xx and 429 as worth retrying (noting
 * `Retry-After`), other 4xx for good.
 */
function attemptClient(client: WebhookClient, runId: string, failures: AttemptFailures): WebhookClient {
  let sent = 0;
  return {
    async send(request: WebhookRequest): Promise<WebhookResponse> {
      sent++;
      const id = sent === 1 ? `msg_${runId}` : `msg_${runId}_${sent}`;
      let response: WebhookResponse;
      // Kept without headers (nor the signature) and without the URL's query string: no secrets in records.
      const call: SentRequest = { method: request.method, url: keptUrl(request.url), started: performance.now() };
      failures.requests.push(call);
      failures.waiting++;
      try {
        response = await client.send({ ...request, id });
      } catch (error) {
        if (error instanceof WebhookError && RETRYABLE_WEBHOOK_ERRORS.has(error.code)) failures.retryable = true;
        [call.ended] = keptRequests([call]);
        throw error;
      } finally {
        failures.waiting--;
      }
      const excerpt = textExcerpt(responseText(response));
      call.ended = {
        method: call.method,
        url: call.url,
        status: response.status,
        durationMs: performance.now() - call.started,
        responseExcerpt: excerpt.text,
        responseTruncated: excerpt.truncated,
      };
      if (response.status >= 500 || response.status === 429) {
        failures.retryable = true;
        const wait = parseRetryAfter(response.headers["retry-after"]);
        if (wait !== null) failures.retryAfterMs = Math.max(failures.retryAfterMs ?? 0, wait);
        throw new Error(`the receiver answered ${response.status}`);
      }
      if (response.status >= 400) throw new Error(`the receiver answered ${response.status} (not retried)`);
      return response;
    },
  };
}

/** Settings of an {@link AfterRunWorker}. */
export interface AfterRunWorkerOptions {
  readonly retry: RetryPolicy;
  /** Attempts run at once by this instance. */
  readonly concurrency: number;
  /** Attempts of one trigger run at once by this instance, so a slow or failing trigger leaves the other slots to the rest. */
  readonly concurrencyPerTrigger: number;
  /** How often the queue is looked at for runs queued elsewhere, retried after a restart, or left by a crashed instance. */
  readonly pollMs: number;
  /** Told how each attempt ended (the run as now stored) once its outcome is stored. */
  readonly onAttempt?: (run: AfterRunRecord) => void;
  /** Where an unreachable database is counted (logged once per outage) instead of an error per poll. */
  readonly databaseOutage?: OutageLog;
}

/**
 * Runs the queued AFTER trigger runs: claims due runs (each by one instance at a time) fairly across
 * triggers (see {@link AfterRunQueue.claim}), runs the trigger's stack on the delivered event, and
 * stores the outcome: DELIVERED, PENDING again with a backoff for a failure worth retrying (network
 * error, timeout, 5xx, 429 from an http step), or FAILED. A retry runs the whole stack again, with
 * the same webhook ids.
 */
export class AfterRunWorker {
  private readonly owner = `instance-${randomUUID()}`;
  private readonly inFlight = new Set<Promise<void>>();
  /** Attempts under way here, per trigger id. */
  private readonly inFlightByTrigger = new Map<string, number>();
  private readonly touched = new Set<string>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** Outcomes waiting to be stored together. */
  private outcomes: (FinishedAttempt & { resolve: (stored: boolean) => void; reject: (error: unknown) => void })[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (milliseconds since the epoch). */
  private timerAt = Infinity;
  private polls = 0;
  private polling: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly queue: AfterRunQueue,
    private readonly triggers: TriggerStore,
    private readonly runOptions: TriggerRunOptions,
    private readonly logger: Logger,
    private readonly options: AfterRunWorkerOptions,
  ) {}

  /** Runs were queued (here or by the thread that delivers events): looks for them soon, not at once, so those queued meanwhile are claimed together. */
  runsQueued(): void {
    this.schedule(QUEUED_WAKE_MS);
  }

  /** Starts looking for runs: now, then every `pollMs` and soon after {@link AfterRunWorker.runsQueued}. */
  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Stops taking runs and waits for the attempts under way (each bounded by the run's time limit). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    await this.polling;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Looks for due runs soon. */
  private wake(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timerAt = Infinity;
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.wake();
      } else {
        this.schedule(this.options.pollMs);
      }
    });
  }

  /** Looks for due runs in `ms` at the latest. */
  private schedule(ms: number): void {
    const at = Date.now() + ms;
    if (this.stopped || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.wake(), ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    try {
      const room = this.options.concurrency - this.inFlight.size;
      if (room <= 0) return;
      const runs = await this.queue.claim(this.owner, room, this.options.concurrencyPerTrigger, this.inFlightByTrigger);
      for (const run of runs) {
        this.inFlightByTrigger.set(run.triggerId, (this.inFlightByTrigger.get(run.triggerId) ?? 0) + 1);
        const attempt = this.attempt(run).finally(() => {
          this.inFlight.delete(attempt);
          const left = this.inFlightByTrigger.get(run.triggerId)! - 1;
          if (left > 0) this.inFlightByTrigger.set(run.triggerId, left);
          else this.inFlightByTrigger.delete(run.triggerId);
          this.schedule(QUEUED_WAKE_MS);
        });
        this.inFlight.add(attempt);
      }
      if (runs.length === room) this.again = true;
      if (++this.polls % POLLS_PER_PRUNE === 0) {
        for (const triggerId of this.touched) await this.queue.prune(triggerId);
        this.touched.clear();
      }
    } catch (error) {
      if (isDatabaseUnreachable(error) && this.options.databaseOutage)
        this.options.databaseOutage.failed((error as Error).message.trim().split("\n").at(-1));
      else this.logger.error({ err: error }, "could not take AFTER trigger runs from the queue");
    }
  }

  private async attempt(run: ClaimedRun): Promise<void> {
    try {
      const result = await this.execute(run);
      const kept = await this.finished(run.id, result);
      if (kept) this.options.onAttempt?.(attemptRecord(run, result));
      if (!kept) this.logger.warn({ runId: run.id }, "an AFTER trigger run was taken over by another instance before its attempt ended");
      if (result.status === "PENDING" && result.nextAttemptAt !== null) this.retryAt(result.nextAttemptAt);
      if (result.status === "FAILED")
        this.logger.warn({ runId: run.id, triggerId: run.triggerId, error: result.error }, "AFTER trigger run failed");
      this.touched.add(run.triggerId);
    } catch (error) {
      // The lease runs out and the run is attempted again.
      if (isDatabaseUnreachable(error) && this.options.databaseOutage)
        this.options.databaseOutage.failed((error as Error).message.trim().split("\n").at(-1));
      else this.logger.error({ err: error, runId: run.id }, "could not store the outcome of an AFTER trigger run");
    }
  }

  /** Stores an attempt's outcome with those of the other attempts ending in this turn; false when the run was taken over. */
  private finished(id: string, result: AttemptResult): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.outcomes.push({ id, result, resolve, reject }) === 1) setImmediate(() => void this.storeOutcomes());
    });
  }

  private async storeOutcomes(): Promise<void> {
    const batch = this.outcomes;
    this.outcomes = [];
    try {
      const stored = await this.queue.finish(this.owner, batch);
      for (const outcome of batch) outcome.resolve(stored.has(outcome.id));
    } catch (error) {
      for (const outcome of batch) outcome.reject(error);
    }
  }

  /** Looks again when a retry is due (the poll timer is reset by every poll, so this waits for the polls in between). */
  private retryAt(at: number): void {
    const wait = Math.max(0, at - Date.now());
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.wake();
    }, wait);
    timer.unref();
    this.retryTimers.add(timer);
  }

  private async execute(run: ClaimedRun): Promise<AttemptResult> {
    const startedAt = Date.now();
    let trigger = this.triggers.get(run.triggerId);
    // Changed since this thread loaded it (by the main thread or another instance): load it again.
    if (!trigger || trigger.config.revision < run.revision) {
      await this.triggers.refresh(run.triggerId);
      trigger = this.triggers.get(run.triggerId);
    }
    if (!trigger) {
      const ended = { durationMs: 0, log: [], output: capJson(null), startedAt, requests: [] };
      return { status: "FAILED", nextAttemptAt: null, error: "the trigger was deleted", ...ended };
    }
    const failures: AttemptFailures = { retryable: false, retryAfterMs: null, waiting: 0, requests: [] };
    const webhooks = this.runOptions.webhooks && attemptClient(this.runOptions.webhooks, run.id, failures);
    const result = await runTrigger(trigger, triggerInput(run.event), { ...this.runOptions, webhooks });
    // Capped once, as stored and as streamed.
    const output = capJson({ payload: result.payload, commandOptions: result.commandOptions });
    const ended = { durationMs: result.durationMs, log: result.log, output, startedAt, requests: keptRequests(failures.requests) };
    switch (result.outcome) {
      case "DELIVERED":
      case "MODIFIED":
        return { status: "DELIVERED", nextAttemptAt: null, error: null, ...ended };
      case "DROPPED":
      case "REJECTED":
        // Only possible when the trigger was changed since the run was queued.
        return { status: "FAILED", nextAttemptAt: null, error: "an AFTER trigger cannot drop or reject a delivered event", ...ended };
      case "FAILED": {
        const error = result.error?.message ?? "failed";
        // The run ran out of time while a request was waiting for its answer: a timeout, worth retrying.
        // So is a run whose state store could not be reached (an outage).
        if (failures.waiting > 0 || result.error?.code === ErrorCode.ServiceUnavailable) failures.retryable = true;
        if (!failures.retryable || run.attempt >= this.options.retry.limit) {
          return { status: "FAILED", nextAttemptAt: null, error, ...ended };
        }
        const wait = retryDelay(this.options.retry, run.attempt, failures.retryAfterMs);
        return { status: "PENDING", nextAttemptAt: Date.now() + wait, error, ...ended };
      }
    }
  }
}
