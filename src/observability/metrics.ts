import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type DocumentNode, type ExecutionResult, getOperationAST, Kind } from "graphql";
import type { Plugin } from "graphql-yoga";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { AppError, ErrorCode } from "../errors.js";
import { DROP_REASONS, type DropReason, type RealtimeObserver, type Transport } from "../realtime/observer.js";
import { REALTIME_ACTIONS, type RealtimeAction } from "../realtime/types.js";
import { AFTER_REFUSAL_CAUSES, type AfterRefusalCause } from "../triggers/after/queue.js";
import { TRIGGER_OUTCOMES } from "../triggers/run/engine.js";
import { FastHistogram } from "./fast-histogram.js";

/** Counts read at scrape time from the parts of the server that hold them (nothing on the hot path). */
export interface MetricSources {
  /** Channels with members on this instance. */
  channelsWithMembers(): number;
  /** Open channel subscriptions on this instance, by transport. */
  subscriptions(): Record<Transport, number>;
  /** AFTER trigger runs waiting for an attempt, over every instance, as last counted. */
  pendingAfterRuns(): number;
  /** The same per trigger id: every AFTER trigger (0 when none wait), and any other trigger with runs waiting. */
  pendingAfterRunsByTrigger(): ReadonlyMap<string, number>;
}

/** How an AFTER trigger attempt ended: the run delivered, to be retried, or failed for good. */
export type AfterAttemptResult = "delivered" | "retry" | "failed";

/** How an operation went: executed without errors, with errors, or refused before execution (parse, validation, limits). */
export type OperationResult = "ok" | "error" | "invalid";

/** Why a caller was refused: bad credentials (HTTP 401, WebSocket 4403) or an operation it may not run. */
export type AuthFailure = "credentials" | "permission";

/** Each action's slot in the per-action count arrays. */
const ACTION_INDEX = Object.fromEntries(REALTIME_ACTIONS.map((action, i) => [action, i])) as Readonly<Record<RealtimeAction, number>>;

/** Seconds, for latencies from well under a millisecond (one instance) to seconds (a stalled bus). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Seconds, for trigger runs: microseconds for a small expression, up to the run timeout. */
const TRIGGER_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The codes that mean the caller was refused for who it is. */
const PERMISSION_CODES = new Set<unknown>([ErrorCode.Unauthenticated, ErrorCode.Forbidden]);

/**
 * The server's Prometheus metrics, in a registry of their own (so several servers can live in one
 * process). It is the realtime core's {@link RealtimeObserver}; the per-event counts are plain
 * numbers copied into the registry when it is scraped, so an event costs a few additions. Labels take
 * only bounded values: actions, transports, outcomes, status classes, operation types and the
 * schema's root field names, never a channel name or a client id.
 */
export class Metrics implements RealtimeObserver {
  readonly registry = new Registry();
  private readonly receivedCounts = REALTIME_ACTIONS.map(() => 0);
  private readonly deliveredCounts = REALTIME_ACTIONS.map(() => 0);
  /** Indexed by action, then reason: REALTIME_ACTIONS index × DROP_REASONS.length + DROP_REASONS index. */
  private readonly notPublishedCounts = REALTIME_ACTIONS.flatMap(() => DROP_REASONS.map(() => 0));
  private readonly latency: FastHistogram;
  private readonly open: Record<Transport, number> = { ws: 0, http: 0 };
  private readonly slowConsumers: Counter<"transport">;
  private readonly authFailures: Counter<"transport" | "reason">;
  private readonly rateLimitedCounter: Counter;
  /** Trigger runs by outcome, read when metrics are collected (a labelled `inc` per run costs more than the run). */
  private readonly triggerRunCounts = new Map<string, number>();
  private readonly triggerDuration: FastHistogram;
  private readonly webhookCalls: Counter<"status">;
  private readonly operations: Counter<"type" | "field" | "result">;
  private readonly afterAttempts: Counter<"result">;
  private readonly afterRefusals: Counter<"cause">;
  private readonly statePurgeFailures: Counter;

  constructor(private readonly sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry }); // process CPU, memory, handles, GC and event-loop lag
    const counts = this;
    new Counter({
      name: "realtime_messages_received_total",
      help: "Events that entered the publish path (before triggers), by action.",
      labelNames: ["action"],
      registers,
      collect() {
        this.reset();
        for (const [i, action] of REALTIME_ACTIONS.entries()) this.inc({ action }, counts.receivedCounts[i]!);
      },
    });
    new Counter({
      name: "realtime_messages_delivered_total",
      help: "Events handed to subscriptions on this instance, one per subscription reached, by action.",
      labelNames: ["action"],
      registers,
      collect() {
        this.reset();
        for (const [i, action] of REALTIME_ACTIONS.entries()) this.inc({ action }, counts.deliveredCounts[i]!);
      },
    });
    new Counter({
      name: "realtime_messages_dropped_total",
      help: "Events not published, by action and reason: dropped quietly by a trigger, or refused with an error for the sender.",
      labelNames: ["action", "reason"],
      registers,
      collect() {
        this.reset();
        for (const [i, action] of REALTIME_ACTIONS.entries()) {
          for (const [j, reason] of DROP_REASONS.entries())
            this.inc({ action, reason }, counts.notPublishedCounts[i * DROP_REASONS.length + j]!);
        }
      },
    });
    this.latency = new FastHistogram(
      "realtime_delivery_latency_seconds",
      "Time from an event's creation to its delivery to this instance's subscriptions, once per event.",
      LATENCY_BUCKETS,
      this.registry,
    );
    new Gauge({
      name: "realtime_connections",
      help: "Open connections by transport: WebSockets on the GraphQL path, and HTTP requests in progress (SSE streams included).",
      labelNames: ["transport"],
      registers,
      collect() {
        this.set({ transport: "ws" }, counts.open.ws);
        this.set({ transport: "http" }, counts.open.http);
      },
    });
    new Gauge({
      name: "realtime_subscriptions",
      help: "Open channel subscriptions on this instance, by transport.",
      labelNames: ["transport"],
      registers,
      collect() {
        const open = sources.subscriptions();
        this.set({ transport: "ws" }, open.ws);
        this.set({ transport: "http" }, open.http);
      },
    });
    new Gauge({
      name: "realtime_channels",
      help: "Channels with at least one member on this instance.",
      registers,
      collect() {
        this.set(sources.channelsWithMembers());
      },
    });
    this.slowConsumers = new Counter({
      name: "realtime_slow_consumers_dropped_total",
      help: "Subscribers cut off for falling too far behind, by transport.",
      labelNames: ["transport"],
      registers,
    });
    this.authFailures = new Counter({
      name: "realtime_auth_failures_total",
      help: "Refused callers, by transport and reason: bad credentials, or an operation the caller may not run.",
      labelNames: ["transport", "reason"],
      registers,
    });
    this.rateLimitedCounter = new Counter({
      name: "realtime_rate_limited_total",
      help: "Operations refused with RATE_LIMITED.",
      registers,
    });
    new Counter({
      name: "realtime_trigger_runs_total",
      help: `Trigger runs by outcome (${TRIGGER_OUTCOMES.join(", ")}).`,
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of counts.triggerRunCounts) this.inc({ outcome }, count);
      },
    });
    this.triggerDuration = new FastHistogram(
      "realtime_trigger_run_duration_seconds",
      "Duration of trigger runs, whatever their outcome (realtime_trigger_runs_total counts them by outcome).",
      TRIGGER_BUCKETS,
      this.registry,
    );
    this.webhookCalls = new Counter({
      name: "realtime_webhook_calls_total",
      help: "Requests made by trigger http steps, by status class (2xx..5xx) or error (refused, timed out, unreachable).",
      labelNames: ["status"],
      registers,
    });
    this.afterAttempts = new Counter({
      name: "realtime_after_trigger_attempts_total",
      help: "AFTER trigger attempts made by this instance, by result: delivered, retry (failed, tried again later), failed (for good).",
      labelNames: ["result"],
      registers,
    });
    new Gauge({
      name: "realtime_after_trigger_runs_pending",
      help: "AFTER trigger runs waiting for an attempt, over every instance, as last counted (every 0.5 s).",
      registers,
      collect() {
        this.set(sources.pendingAfterRuns());
      },
    });
    new Gauge({
      name: "realtime_after_trigger_runs_pending_per_trigger",
      help: "AFTER trigger runs waiting for an attempt, over every instance, by trigger id (every AFTER trigger; a deleted trigger's series goes).",
      labelNames: ["trigger"],
      registers,
      collect() {
        this.reset();
        for (const [trigger, pending] of sources.pendingAfterRunsByTrigger()) this.set({ trigger }, pending);
      },
    });
    this.afterRefusals = new Counter({
      name: "realtime_after_trigger_refusals_total",
      help: "Events whose AFTER trigger runs could not be stored, by cause: the trigger's share of the queue full, the queue full, the database unreachable. Their senders were refused (a LEAVE is delivered without its runs).",
      labelNames: ["cause"],
      registers,
    });
    for (const cause of AFTER_REFUSAL_CAUSES) this.afterRefusals.inc({ cause }, 0);
    this.statePurgeFailures = new Counter({
      name: "realtime_trigger_state_purge_failures_total",
      help: "Failures of the background purge of expired trigger state keys: one per trigger whose keys could not be purged (the purge goes on with the others), or per round that could not run.",
      registers,
    });
    this.operations = new Counter({
      name: "realtime_graphql_operations_total",
      help: "GraphQL operations by type, root field and result (ok, error, invalid).",
      labelNames: ["type", "field", "result"],
      registers,
    });
  }

  received(action: RealtimeAction): void {
    this.receivedCounts[ACTION_INDEX[action]]! += 1;
  }

  delivered(action: RealtimeAction, listeners: number, createdAt: string): void {
    this.deliveredCounts[ACTION_INDEX[action]]! += listeners;
    this.latency.observe((Date.now() - Date.parse(createdAt)) / 1000);
  }

  notPublished(action: RealtimeAction, reason: DropReason): void {
    this.notPublishedCounts[ACTION_INDEX[action] * DROP_REASONS.length + DROP_REASONS.indexOf(reason)]! += 1;
  }

  slowConsumerDropped(transport: Transport): void {
    this.slowConsumers.inc({ transport });
  }

  /** Counts a refused caller. */
  authFailed(transport: Transport, reason: AuthFailure): void {
    this.authFailures.inc({ transport, reason });
  }

  /** Counts a trigger run. */
  triggerRun(outcome: string, durationMs: number): void {
    this.triggerRunCounts.set(outcome, (this.triggerRunCounts.get(outcome) ?? 0) + 1);
    this.triggerDuration.observe(durationMs / 1000);
  }

  /** Counts an AFTER trigger attempt by how it ended. */
  afterAttempt(result: AfterAttemptResult): void {
    this.afterAttempts.inc({ result });
  }

  /** Counts an event whose AFTER trigger runs could not be stored. */
  afterRefusal(cause: AfterRefusalCause): void {
    this.afterRefusals.inc({ cause });
  }

  /** A purge of expired trigger state keys failed, for one trigger or for a whole round. */
  statePurgeFailed(): void {
    this.statePurgeFailures.inc();
  }

  /** Counts a webhook call: its HTTP status, or `"error"` when no response came back. */
  webhookCall(status: number | "error"): void {
    this.webhookCalls.inc({ status: status === "error" ? "error" : `${Math.floor(status / 100)}xx` });
  }

  /**
   * Counts an operation's result, and the refusals in it (rate limits, permissions). `document` is
   * null when it did not parse.
   */
  operation(
    document: DocumentNode | null,
    operationName: string | null | undefined,
    result: OperationResult,
    transport: Transport,
    errors?: readonly unknown[],
  ): void {
    const { type, field } = describeOperation(document, operationName, result);
    this.operations.inc({ type, field, result });
    for (const error of errors ?? []) {
      const code = errorCode(error);
      if (code === ErrorCode.RateLimited) this.rateLimitedCounter.inc();
      else if (typeof code === "string" && PERMISSION_CODES.has(code)) this.authFailed(transport, "permission");
    }
  }

  /**
   * Counts the result of a subscription that does not pass through Yoga's executor (channel
   * subscriptions over WebSocket); returns the result unchanged.
   */
  async subscriptionStarted<R>(document: DocumentNode, operationName: string | null | undefined, starting: Promise<R>): Promise<R> {
    const started = await starting;
    const errors = (started as ExecutionResult).errors;
    this.operation(document, operationName, errors ? "error" : "ok", "ws", errors);
    return started;
  }

  /**
   * Counts a server's connections: HTTP requests while they are in progress, and WebSockets upgraded
   * on `webSocketPath` while they are open.
   */
  watch(server: Server, webSocketPath: string): void {
    const { open } = this;
    server.on("request", (_req: IncomingMessage, res) => {
      open.http += 1;
      res.once("close", () => (open.http -= 1));
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
      if (new URL(req.url ?? "/", "http://localhost").pathname !== webSocketPath) return;
      open.ws += 1;
      socket.once("close", () => (open.ws -= 1));
    });
  }

  /** Open channel subscriptions on this instance, by transport. */
  subscriptions(): Record<Transport, number> {
    return this.sources.subscriptions();
  }

  /** Open connections by transport (see {@link Metrics.watch}). */
  connections(): Readonly<Record<Transport, number>> {
    return { ...this.open };
  }

  /** A Yoga plugin counting operations (HTTP and WebSocket alike), their refusals, and bad credentials over HTTP. */
  yogaPlugin(): Plugin {
    const transportOf = (context: unknown): Transport =>
      (context as { session?: { socket?: unknown } } | undefined)?.session?.socket ? "ws" : "http";
    return {
      onValidate:
        ({ context, params }) =>
        ({ valid, result }) => {
          if (!valid)
            this.operation(
              params.documentAST,
              (context as { params?: { operationName?: string } }).params?.operationName,
              "invalid",
              transportOf(context),
              result,
            );
        },
      onParse:
        ({ context }) =>
        ({ result }) => {
          if (result instanceof Error) this.operation(null, null, "invalid", transportOf(context));
        },
      onExecute: ({ args }) => ({
        onExecuteDone: ({ result }) => {
          if (Symbol.asyncIterator in result) return;
          this.operation(args.document, args.operationName, result.errors ? "error" : "ok", transportOf(args.contextValue), result.errors);
        },
      }),
      onSubscribe: ({ args }) => ({
        onSubscribeResult: ({ result }) => {
          const errors = Symbol.asyncIterator in result ? undefined : result.errors;
          this.operation(args.document, args.operationName, errors ? "error" : "ok", transportOf(args.contextValue), errors);
        },
        onSubscribeError: () => this.operation(args.document, args.operationName, "error", transportOf(args.contextValue)),
      }),
      onResponse: ({ response }) => {
        if (response.status === 401) this.authFailed("http", "credentials");
      },
    };
  }

  /** The metrics in Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link Metrics.text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The `extensions.code` an error has or will have once masked (an AppError's code before masking). */
function errorCode(error: unknown): unknown {
  const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
  if (code !== undefined) return code;
  const original = (error as { originalError?: unknown }).originalError;
  return original instanceof AppError ? original.code : undefined;
}

/** The operation type and first root field of a document; both bounded, by GraphQL and by the schema. */
function describeOperation(
  document: DocumentNode | null,
  operationName: string | null | undefined,
  result: OperationResult,
): { type: string; field: string } {
  const operation = document ? getOperationAST(document, operationName) : null;
  if (!operation) return { type: "unknown", field: "" };
  const first = operation.selectionSet.selections[0];
  // An invalid document may name fields the schema does not have: only valid ones name a field.
  const field = result !== "invalid" && first?.kind === Kind.FIELD ? first.name.value : "";
  return { type: operation.operation, field };
}
