import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { isDatabaseUnreachable } from "../db.js";
import type { Env } from "../env.js";
import type { Logger } from "../logger.js";
import type { OutageLog } from "../observability/outages.js";
import type { AfterRunQueue } from "./after/queue.js";
import type { AfterRunRecord } from "./run/records.js";
import { AFTER_RUN_POLL_MS } from "./settings.js";

/** What the AFTER trigger thread is started with. */
export interface AfterThreadData {
  readonly env: Env;
  /** The resolved database URL (an absolute SQLite path, or the PostgreSQL URL). */
  readonly databaseUrl: string;
}

/** Messages to the AFTER trigger thread. */
export type ToAfterThread = { type: "queued" } | { type: "trigger"; id: string } | { type: "stop" };

/** Messages from the AFTER trigger thread. */
export type FromAfterThread =
  | { type: "webhook"; status: number | "error" }
  | { type: "attempt"; run: AfterRunRecord }
  | { type: "stopped" };

/** What the main thread learns from the AFTER thread. */
export interface AfterThreadObserver {
  /** A webhook call an AFTER run made: its status, or `"error"` when no response came back. */
  webhookCall(status: number | "error"): void;
  /** An attempt ended and its outcome is stored: the run as it now stands. */
  attempted(run: AfterRunRecord): void;
}

/** Wait before starting the thread again after it ended unexpectedly. */
const RESTART_DELAY_MS = 1000;

/**
 * The thread that runs AFTER triggers, so their work (claiming runs, running stacks, calling
 * webhooks, storing outcomes) never takes time from the thread that delivers events. It is started
 * with the first AFTER run (queued here, or found pending at startup), holds its own database
 * connection, and is told when runs are queued or triggers change here. Started again if it ends
 * unexpectedly; the runs it held are leased, so they are attempted again once their lease runs out.
 */
export class AfterRunThread {
  private worker: Worker | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly recountTimer: NodeJS.Timeout;

  constructor(
    private readonly data: AfterThreadData,
    private readonly queue: AfterRunQueue,
    private readonly logger: Logger,
    private readonly observer: AfterThreadObserver,
    /** Where an unreachable database is counted (and logged once per outage). */
    databaseOutage: OutageLog,
  ) {
    queue.onQueued(() => {
      this.start();
      this.post({ type: "queued" });
    });
    // The queue's bound counts every instance's pending runs; runs finish on the thread and elsewhere.
    this.recountTimer = setInterval(() => {
      queue.recount().catch((error: unknown) => {
        if (isDatabaseUnreachable(error))
          databaseOutage.failed(error instanceof Error ? error.message.trim().split("\n").at(-1) : undefined);
        else logger.error({ err: error }, "could not count pending AFTER trigger runs");
      });
    }, AFTER_RUN_POLL_MS);
    this.recountTimer.unref();
  }

  /** Starts the thread when there are pending runs (left by a restart or a crash). */
  async resume(): Promise<void> {
    if ((await this.queue.recount()) > 0) this.start();
  }

  /** Tells the thread that a trigger changed here. */
  triggerChanged(id: string): void {
    this.post({ type: "trigger", id });
  }

  /** Starts the thread unless it runs. */
  start(): void {
    if (this.worker || this.stopping) return;
    const worker = spawnThread(this.data);
    this.worker = worker;
    worker.on("message", (message: FromAfterThread) => {
      if (message.type === "webhook") this.observer.webhookCall(message.status);
      else if (message.type === "attempt") this.observer.attempted(message.run);
    });
    worker.on("error", (error) => this.logger.error({ err: error }, "the AFTER trigger thread failed"));
    worker.on("exit", (code) => {
      this.worker = undefined;
      if (this.stopping) return;
      this.logger.error({ code }, "the AFTER trigger thread ended; starting it again");
      this.restartTimer = setTimeout(() => this.start(), RESTART_DELAY_MS);
      this.restartTimer.unref();
    });
  }

  /** Stops the thread once the attempts under way have ended (each bounded by the run's time limit). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.recountTimer);
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    const exited = once(worker, "exit");
    const stopped = new Promise<void>((resolve) => {
      worker.on("message", (message: FromAfterThread) => {
        if (message.type === "stopped") resolve();
      });
    });
    worker.postMessage({ type: "stop" } satisfies ToAfterThread);
    await Promise.race([stopped, exited]);
    // Idle keep-alive sockets may hold the thread's event loop open; nothing is under way any more.
    await worker.terminate();
    await exited.catch(() => {});
  }

  private post(message: ToAfterThread): void {
    this.worker?.postMessage(message);
  }
}

/**
 * Starts after-thread-entry in a worker thread. From the TypeScript sources (`npm start`, tests) the
 * thread registers tsx's loader first; the compiled build (`npm run start:prod`) loads it directly.
 */
function spawnThread(data: AfterThreadData): Worker {
  const fromSources = import.meta.url.endsWith(".ts");
  const entry = new URL(`./after-thread-entry.${fromSources ? "ts" : "js"}`, import.meta.url);
  if (!fromSources) return new Worker(fileURLToPath(entry), { workerData: data });
  const boot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}
