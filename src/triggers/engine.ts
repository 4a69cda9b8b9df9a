import { isDeepStrictEqual } from "node:util";
import { ErrorCode } from "../errors.js";
import type { RealtimeCommand } from "../realtime/types.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../validation.js";
import { GuardFailure, type GuardReason, RUN_GUARD_BINDING, RunGuard } from "./guard.js";
import {
  type CompiledExpression,
  type CompiledStack,
  type CompiledStep,
  describeError,
  type StackStop,
  type StepContext,
  type StepResult,
} from "./stack.js";
import type { StateAccess } from "./state.js";
import type { WebhookClient } from "./webhook.js";

/** What a trigger's stack is evaluated against (the names follow Xano's realtime triggers). */
export interface TriggerInput {
  readonly action: RealtimeCommand;
  readonly command: RealtimeCommand;
  readonly channel: string;
  readonly commandOptions: unknown;
  readonly payload: unknown;
  readonly client: { readonly id: string; readonly authenticated: boolean; readonly extras: Record<string, unknown> | null };
}

/** How a run ended: delivered as received, delivered changed, dropped, rejected, or failed. */
export const TRIGGER_OUTCOMES = ["DELIVERED", "MODIFIED", "DROPPED", "REJECTED", "FAILED"] as const;

/** What a trigger run did with its event; runs are recorded, and reported in GraphQL, with these. */
export type TriggerOutcome = (typeof TRIGGER_OUTCOMES)[number];

/** What one step did, recorded when a run is traced. */
export interface StepTrace {
  /** Where the step is, e.g. `stack[2].then[0]`. */
  readonly path: string;
  /** The step's kind, e.g. `set`. */
  readonly step: string;
  readonly durationMs: number;
  /** The step's value as JSON (an `if` step's is its condition as a boolean). */
  readonly result?: unknown;
  readonly error?: string;
}

/** How a run ended, with the response it produced. */
export interface StackRunResult {
  readonly outcome: TriggerOutcome;
  /** The response's payload; for FAILED runs, the input's payload as given. */
  readonly payload: unknown;
  /** The response's commandOptions; for FAILED runs, the input's as given. */
  readonly commandOptions: unknown;
  /** For REJECTED runs, the reject step's code and message; for FAILED runs, `TRIGGER_FAILED` and the cause. */
  readonly error?: { readonly code: string; readonly message: string };
  readonly log: unknown[];
  readonly durationMs: number;
  /** One entry per step run, each recorded when the step ends (so a nested step comes before its `if`). */
  readonly trace?: StepTrace[];
}

/** Options for {@link runStack}. */
export interface RunOptions {
  /** Wall-clock limit for the whole run, in milliseconds; {@link DEFAULT_RUN_TIMEOUT_MS} when absent. */
  readonly timeoutMs?: number;
  /** Record a {@link StepTrace} per step. */
  readonly trace?: boolean;
  /** Sends the requests of `http` steps (SSRF-safe and signed); without it, http steps fail. */
  readonly webhooks?: WebhookClient;
  /** Bytes of strings, arrays and objects a run may build (estimated); {@link DEFAULT_RUN_MEMORY_BYTES} when absent. */
  readonly maxMemoryBytes?: number;
  /** The trigger's state for state steps; without it, state steps fail. */
  readonly state?: StateAccess;
}

/** The wall-clock limit of a run when {@link RunOptions.timeoutMs} is absent. */
export const DEFAULT_RUN_TIMEOUT_MS = 1000;

/** The memory budget of a run when {@link RunOptions.maxMemoryBytes} is absent. */
export const DEFAULT_RUN_MEMORY_BYTES = 32 * 1024 * 1024;

/** A failure already described with the path of the step it happened in. */
class StackFailure extends Error {}

/** JSONata's guardrail errors and JavaScript's own limits, by the bound they stand for. */
const REASON_BY_CODE: Readonly<Record<string, GuardReason>> = { D1012: "timeout", D1011: "memory", D2014: "size", D2015: "size" };

/** The bound an error stands for, if it is one: a run's error message then says so after the step's path. */
function boundHit(error: unknown): GuardReason | undefined {
  if (error instanceof GuardFailure) return error.reason;
  if (error instanceof RangeError) return /call stack/i.test(error.message) ? "memory" : "size";
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? REASON_BY_CODE[code] : undefined;
}

/** `path: reason: cause` for a bound, `path: cause` for any other error. */
function failureMessage(path: string, error: unknown): string {
  const reason = boundHit(error);
  return reason ? `${path}: ${reason}: ${describeError(error)}` : `${path}: ${describeError(error)}`;
}

/** Expressions may not build and run new expressions: that would bypass the checks made at save time. */
function evalDisabled(): never {
  throw new Error("$eval is disabled in triggers");
}

/** True for a JSONata function value: a lambda, a built-in, or a JavaScript function. */
function isFunction(value: unknown): boolean {
  return (
    typeof value === "function" ||
    (typeof value === "object" && value !== null && ("_jsonata_lambda" in value || "_jsonata_function" in value))
  );
}

/**
 * Converts a value to plain JSON: sequences become arrays, functions and undefined disappear (or
 * become null inside arrays). `__proto__` keys stay own data properties, as JSON.parse makes them.
 */
function toJson(value: unknown): unknown {
  const text = JSON.stringify(value, (_key, inner: unknown) => (isFunction(inner) ? undefined : inner));
  return text === undefined ? undefined : JSON.parse(text);
}

/**
 * A value that nests no deeper than a client's message may (what a trigger builds is delivered,
 * stored and logged like one).
 * @throws GuardFailure `size` otherwise
 */
function shallowEnough<T>(value: T): T {
  if (typeof value === "object" && value !== null && nestsDeeperThan(value)) {
    throw new GuardFailure("size", `a value nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value;
}

/** A deep copy of a value that is plain JSON already (an event's input): no replacer needed. */
function copyJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;

/** Why a run's outbound requests are aborted once it is over. */
const RUN_OVER = new Error("the trigger run is over");

/** Writes one own property; an array only takes an index at most its length (no holes). */
function write(node: object, segment: string, value: unknown): unknown {
  if (Array.isArray(node) && (!ARRAY_INDEX.test(segment) || Number(segment) > node.length)) {
    throw new Error(`cannot set "${segment}" in an array of length ${node.length}`);
  }
  (node as Record<string, unknown>)[segment] = value;
  return value;
}

/**
 * Sets a path of own properties (segments were validated: no `__proto__`, `constructor` or
 * `prototype`), replacing a missing or non-object intermediate with a new plain object.
 */
function setPath(root: object, target: readonly string[], value: unknown): void {
  let node = root;
  for (const segment of target.slice(0, -1)) {
    const next = Object.hasOwn(node, segment) ? (node as Record<string, unknown>)[segment] : undefined;
    node = typeof next === "object" && next !== null ? next : (write(node, segment, {}) as object);
  }
  write(node, target.at(-1)!, value === undefined ? null : value);
}

/** The response a stack builds. */
interface Response {
  payload: unknown;
  commandOptions: unknown;
}

class StackRun implements StepContext {
  /** The trigger input as plain JSON, which expressions are evaluated against. */
  private readonly data: unknown;
  readonly original: Response;
  readonly response: Response;
  readonly logged: unknown[] = [];
  readonly trace: StepTrace[] | undefined;
  /** The path of the step that started last, for timeout messages. */
  private current = "stack";
  private readonly bindings: Record<string, unknown>;

  constructor(
    input: TriggerInput,
    readonly deadline: number,
    private readonly timeoutMs: number,
    trace: boolean,
    readonly webhooks: WebhookClient | undefined,
    readonly signal: AbortSignal,
    maxMemoryBytes: number,
    readonly state: StateAccess | undefined,
  ) {
    this.trace = trace ? [] : undefined;
    this.data = copyJson(input);
    this.original = { payload: copyJson(input.payload) ?? null, commandOptions: copyJson(input.commandOptions) ?? null };
    this.response = { payload: copyJson(this.original.payload), commandOptions: copyJson(this.original.commandOptions) };
    const guard = new RunGuard(maxMemoryBytes, signal, () => this.outOfTime());
    this.bindings = { eval: evalDisabled, response: this.response, [RUN_GUARD_BINDING]: guard };
  }

  /** The failure for a run that went past its time limit. */
  outOfTime(): StackFailure {
    return new StackFailure(`${this.current}: timeout: the trigger ran out of time (limit ${this.timeoutMs} ms)`);
  }

  async evaluate(compiled: CompiledExpression, options: { readonly keepFunction?: boolean } = {}): Promise<unknown> {
    const value: unknown = await compiled.expression.evaluate(this.data, this.bindings);
    if (options.keepFunction && isFunction(value)) return value;
    return shallowEnough(toJson(value));
  }

  bind(name: string, value: unknown): void {
    this.bindings[name] = value;
  }

  set(target: readonly string[], value: unknown): void {
    setPath(this.response, target, value);
  }

  log(value: unknown): void {
    this.logged.push(value === undefined ? null : value);
  }

  async run(steps: readonly CompiledStep[]): Promise<StackStop | undefined> {
    for (const step of steps) {
      const stop = await this.step(step);
      if (stop) return stop;
    }
    return undefined;
  }

  private async step(step: CompiledStep): Promise<StackStop | undefined> {
    // A run that lost the race against its time limit goes no further.
    if (this.signal.aborted) throw this.outOfTime();
    this.current = step.path;
    const started = performance.now();
    const traced = (entry: { result?: unknown; error?: string }) =>
      this.trace?.push({ path: step.path, step: step.kind, durationMs: performance.now() - started, ...entry });
    let outcome: StepResult;
    try {
      outcome = await step.run(this);
    } catch (error) {
      const message = error instanceof StackFailure ? error.message : failureMessage(step.path, error);
      traced({ error: message });
      throw new StackFailure(message);
    }
    if (this.trace) traced({ result: toJson(outcome.result) });
    if (Date.now() > this.deadline) throw this.outOfTime();
    return outcome.stop;
  }
}

/**
 * Runs a compiled stack on an input and reports how it ended. The response starts as a JSON copy of
 * the input's payload and commandOptions; the input itself is never modified, and every value in the
 * result is plain JSON. A value that evaluates to nothing (JSONata's undefined) is written as null
 * by `set` and `return`, and logged as null. The outcome is MODIFIED when the final payload or
 * commandOptions differ (deeply) from the input's, else DELIVERED; DROPPED and REJECTED when a step
 * says so.
 *
 * Never throws or rejects for a failing stack: an evaluation error or a bound gives outcome FAILED
 * with a `TRIGGER_FAILED` error naming the step's path and the cause. A bound's message names it
 * after the path: `timeout` (past `timeoutMs`, or an expression's own timeout), `memory` (past
 * `maxMemoryBytes`, or evaluation nested too deep), `size` (a string, array or range over its
 * limit); e.g. `stack[0]: size: a string of ... characters is over the limit of ...`. The time limit is a
 * timer (expressions yield to the event loop every few milliseconds, so it fires during a long one)
 * and is also checked after every step; a run that is over stops evaluating (see ./guard.ts).
 */
export async function runStack(stack: CompiledStack, input: TriggerInput, options: RunOptions = {}): Promise<StackRunResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  const abort = new AbortController();
  let run: StackRun | undefined;
  // Copies: a run that lost the race against its time limit may still be finishing a step.
  const finish = (outcome: TriggerOutcome, response: Response, error?: StackRunResult["error"]): StackRunResult => ({
    outcome,
    payload: response.payload,
    commandOptions: response.commandOptions,
    ...(error ? { error } : {}),
    log: [...(run?.logged ?? [])],
    durationMs: performance.now() - started,
    ...(options.trace ? { trace: [...(run?.trace ?? [])] } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const maxMemoryBytes = options.maxMemoryBytes ?? DEFAULT_RUN_MEMORY_BYTES;
    const current = new StackRun(
      input,
      Date.now() + timeoutMs,
      timeoutMs,
      options.trace === true,
      options.webhooks,
      abort.signal,
      maxMemoryBytes,
      options.state,
    );
    run = current;
    const outOfTime = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(current.outOfTime()), timeoutMs);
    });
    const stop = await Promise.race([current.run(stack.steps), outOfTime]);
    // Expressions can reach the response through $response, so it is made plain JSON again.
    const response = {
      payload: shallowEnough(toJson(current.response.payload) ?? null),
      commandOptions: shallowEnough(toJson(current.response.commandOptions) ?? null),
    };
    if (stop?.kind === "drop") return finish("DROPPED", response);
    if (stop?.kind === "reject") return finish("REJECTED", response, { code: stop.code, message: stop.message });
    return finish(isDeepStrictEqual(response, current.original) ? "DELIVERED" : "MODIFIED", response);
  } catch (error) {
    const message = error instanceof StackFailure ? error.message : failureMessage("stack", error);
    return finish("FAILED", { payload: input.payload, commandOptions: input.commandOptions }, { code: ErrorCode.TriggerFailed, message });
  } finally {
    clearTimeout(timer);
    abort.abort(RUN_OVER); // a fixed reason: abort() alone builds a DOMException on every run
  }
}
