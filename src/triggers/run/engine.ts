import { AppError, ErrorCode } from "../../errors.js";
import type { RealtimeCommand } from "../../realtime/types.js";
import { DEFER } from "../compile/fast-path.js";
import {
  type CompiledExpression,
  type CompiledStack,
  type CompiledStep,
  describeError,
  type StackStop,
  type StepContext,
  type StepResult,
} from "../compile/stack.js";
import { GuardFailure, type GuardReason, RUN_GUARD_BINDING, RunGuard } from "../guard/guard.js";
import { checkDepth, equalJson, isFunction, plainJson } from "../guard/values.js";
import type { StateAccess } from "../state/state.js";
import type { WebhookClient } from "../webhook/client.js";

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
  /**
   * For REJECTED runs, the reject step's code and message; for FAILED runs, `TRIGGER_FAILED` and the
   * cause, or `SERVICE_UNAVAILABLE` when a step could not reach its state store (an outage).
   */
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

/** How long a state operation must have waited, at least, for a run's timeout to count as an outage. */
const OUTAGE_WAIT_MS = 250;

/** A failure already described with the path of the step it happened in. */
class StackFailure extends Error {
  constructor(
    message: string,
    /** The step failed because a backing service (the state store) could not be reached: an outage, not the trigger's fault. */
    readonly unavailable = false,
  ) {
    super(message);
  }
}

/** True when an error means a backing service could not be reached (see {@link StackFailure.unavailable}). */
function isOutage(error: unknown): boolean {
  return error instanceof StackFailure ? error.unavailable : error instanceof AppError && error.code === ErrorCode.ServiceUnavailable;
}

/** JSONata's guardrail errors and JavaScript's own limits, by the bound they stand for. */
const REASON_BY_CODE: ReadonlyMap<string, GuardReason> = new Map([
  ["D1012", "timeout"],
  ["D1011", "memory"],
  ["D2014", "size"],
  ["D2015", "size"],
]);

/** The bound an error stands for, if it is one: a run's error message then says so after the step's path. */
function boundHit(error: unknown): GuardReason | undefined {
  if (error instanceof GuardFailure) return error.reason;
  if (error instanceof RangeError) return /call stack/i.test(error.message) ? "memory" : "size";
  const code = (error as { code?: unknown } | null)?.code;
  // A Map: an error whose code is "constructor" or "toString" stands for no bound.
  return typeof code === "string" ? REASON_BY_CODE.get(code) : undefined;
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

/** True for a value that is its own plain JSON copy (what {@link plainJson} would give back unchanged: not -0, which is 0 in JSON). */
function isJsonPrimitive(value: unknown): boolean {
  return (
    value === null ||
    typeof value === "string" ||
    typeof value === "boolean" ||
    (typeof value === "number" && Number.isFinite(value) && !Object.is(value, -0))
  );
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

/** A shallow copy of an object or array, own `__proto__` keys kept as data properties. */
function shallowCopy(node: object): object {
  return Array.isArray(node) ? [...(node as unknown[])] : { ...node };
}

/** The response a stack builds. */
interface Response {
  payload: unknown;
  commandOptions: unknown;
}

/**
 * One timer for the time limits of all runs under way: a timer per run costs more than the rest of
 * a simple run. The timer is set for the earliest deadline; when it fires, the runs past theirs are
 * stopped, and it is set again for the next one.
 */
class Deadlines {
  private readonly runs = new Set<StackRun>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  add(run: StackRun): void {
    this.runs.add(run);
    if (run.deadline < this.timerAt) this.arm(run.deadline);
  }

  delete(run: StackRun): void {
    this.runs.delete(run);
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(1, at - Date.now()));
    // A run waits on something that keeps the process alive (a request, a query, a time slice's setImmediate).
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const run of this.runs) {
      if (run.deadline <= now) {
        this.runs.delete(run);
        run.expire();
      } else next = Math.min(next, run.deadline);
    }
    if (next < Infinity) this.arm(next);
  }
}

const deadlines = new Deadlines();

class StackRun implements StepContext {
  /** The trigger input as plain JSON, for JSONata (made on first use: simple expressions read the input itself). */
  private data: unknown;
  /**
   * The response so far, copy-on-write: it starts as the input's payload and commandOptions, and
   * `set` copies the objects along its path before writing, so the input is never modified.
   */
  readonly response: Response;
  readonly logged: unknown[] = [];
  readonly trace: StepTrace[] | undefined;
  /** The path of the step that started last, for timeout messages. */
  private current = "stack";
  /** The run's variables; `response` is the response itself, read by simple expressions only. */
  readonly bindings: Record<string, unknown>;
  readonly guard: RunGuard;
  /** Objects and arrays of the response made by this run (so writable in place). */
  private readonly owned = new Set<object>();
  over = false;
  private abort: AbortController | undefined;
  /** Rejects the run's result once it is past its time limit. */
  onTimeout: ((error: StackFailure) => void) | undefined;
  /** {@link StackRun.state}, made on first use (most runs have no state step). */
  private countedState: StateAccess | undefined;
  /**
   * State operations waiting for the store, since when they wait, and how long the run waited for
   * them before: a run that times out after waiting for its store half its time limit (and at least
   * {@link OUTAGE_WAIT_MS}) hit an outage (a store that does not answer, or answers slowly), not its
   * own slowness.
   */
  private stateWaits = 0;
  private stateWaitingSince = 0;
  private stateWaitedMs = 0;

  constructor(
    readonly input: TriggerInput,
    readonly deadline: number,
    private readonly timeoutMs: number,
    trace: boolean,
    readonly webhooks: WebhookClient | undefined,
    maxMemoryBytes: number,
    private readonly stateAccess: StateAccess | undefined,
  ) {
    this.trace = trace ? [] : undefined;
    this.response = { payload: input.payload ?? null, commandOptions: input.commandOptions ?? null };
    this.owned.add(this.response);
    this.guard = new RunGuard(
      maxMemoryBytes,
      () => this.over,
      () => this.outOfTime(),
    );
    this.bindings = { eval: evalDisabled, response: this.response, [RUN_GUARD_BINDING]: this.guard };
  }

  get signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController();
      if (this.over) this.abort.abort(RUN_OVER);
    }
    return this.abort.signal;
  }

  /** Ends the run: its evaluations, state steps and requests stop. */
  end(): void {
    this.over = true;
    this.abort?.abort(RUN_OVER);
  }

  /** Called once the run is past its time limit. */
  expire(): void {
    this.end();
    // Stryker disable next-line OptionalChaining: runStack sets onTimeout synchronously right after adding the run to the timer, before any timer can fire.
    this.onTimeout?.(this.outOfTime());
  }

  /** The trigger's state, each operation counted in {@link StackRun.stateWaits} while it waits. */
  get state(): StateAccess | undefined {
    if (!this.stateAccess) return undefined;
    this.countedState ??= this.counted(this.stateAccess);
    return this.countedState;
  }

  /** The failure for a run that went past its time limit (an outage when it was waiting for its state store). */
  outOfTime(): StackFailure {
    const waited = this.stateWaitedMs + (this.stateWaits > 0 ? Date.now() - this.stateWaitingSince : 0);
    if (waited >= Math.max(this.timeoutMs / 2, OUTAGE_WAIT_MS)) {
      return new StackFailure(`${this.current}: timeout: the state store did not answer in time (limit ${this.timeoutMs} ms)`, true);
    }
    return new StackFailure(`${this.current}: timeout: the trigger ran out of time (limit ${this.timeoutMs} ms)`);
  }

  /** `state`, with each operation counted while it waits. */
  private counted(state: StateAccess): StateAccess {
    const wait = async <T>(operation: Promise<T>): Promise<T> => {
      if (this.stateWaits++ === 0) this.stateWaitingSince = Date.now();
      try {
        return await operation;
      } finally {
        if (--this.stateWaits === 0) this.stateWaitedMs += Date.now() - this.stateWaitingSince;
      }
    };
    return {
      get: (key) => wait(state.get(key)),
      put: (key, value, ttl) => wait(state.put(key, value, ttl)),
      incr: (key, by, ttl) => wait(state.incr(key, by, ttl)),
      delete: (key) => wait(state.delete(key)),
    };
  }

  async evaluate(compiled: CompiledExpression, options: { readonly keepFunction?: boolean } = {}): Promise<unknown> {
    // Stryker disable next-line BlockStatement: a plan gives what JSONata gives (./fast-path.ts, and its property in test/triggers/fast-path.test.ts); skipping it is only slower.
    if (compiled.plan) {
      const planned = compiled.plan(this);
      if (planned !== DEFER) return planned === undefined || isJsonPrimitive(planned) ? planned : plainJson(planned, this.guard.isOver);
    }
    // JSONata sees copies: the response shares objects with the input, which is never modified.
    this.data ??= await plainJson(this.input, this.guard.isOver, Number.POSITIVE_INFINITY);
    // Stryker disable next-line StringLiteral: copying the response for every expression gives the same values (only slower): an expression can only reach $response by naming it.
    const bindings = compiled.source.includes("response")
      ? { ...this.bindings, response: await plainJson(this.response, this.guard.isOver, Number.POSITIVE_INFINITY) }
      : this.bindings;
    const value: unknown = await compiled.expression.evaluate(this.data, bindings);
    if (options.keepFunction && isFunction(value)) return value;
    return plainJson(value, this.guard.isOver);
  }

  bind(name: string, value: unknown): void {
    this.bindings[name] = value;
  }

  /**
   * Sets a path of own properties (segments were validated: no `__proto__`, `constructor` or
   * `prototype`), replacing a missing or non-object intermediate with a new plain object, and
   * copying an object or array along the path that this run did not make.
   */
  set(target: readonly string[], value: unknown): void {
    let node: object = this.response;
    for (let i = 0; i < target.length - 1; i++) {
      const segment = target[i]!;
      const next = Object.hasOwn(node, segment) ? (node as Record<string, unknown>)[segment] : undefined;
      let child: object;
      if (typeof next === "object" && next !== null) {
        if (this.owned.has(next)) child = next;
        else {
          child = shallowCopy(next);
          write(node, segment, child);
          this.owned.add(child);
        }
      } else {
        child = write(node, segment, {}) as object;
        this.owned.add(child);
      }
      node = child;
    }
    write(node, target.at(-1)!, value === undefined ? null : value);
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
    if (this.over) throw this.outOfTime();
    this.current = step.path;
    const started = this.trace ? performance.now() : 0;
    let outcome: StepResult;
    try {
      outcome = await step.run(this);
    } catch (error) {
      const message = error instanceof StackFailure ? error.message : failureMessage(step.path, error);
      this.traced(step, started, { error: message });
      throw new StackFailure(message, isOutage(error));
    }
    if (this.trace) this.traced(step, started, { result: await plainJson(outcome.result, this.guard.isOver) });
    if (Date.now() > this.deadline) throw this.outOfTime();
    return outcome.stop;
  }

  /** Records a step's trace entry, when the run is traced. */
  private traced(step: CompiledStep, started: number, entry: { result?: unknown; error?: string }): void {
    this.trace?.push({ path: step.path, step: step.kind, durationMs: performance.now() - started, ...entry });
  }
}

/** A run's result; log and trace are copies, as a run that lost the race against its time limit may still be finishing a step. */
function runResult(
  run: StackRun | undefined,
  started: number,
  trace: boolean,
  outcome: TriggerOutcome,
  response: Response,
  error?: StackRunResult["error"],
): StackRunResult {
  const result: StackRunResult = {
    outcome,
    payload: response.payload,
    commandOptions: response.commandOptions,
    log: run ? [...run.logged] : [],
    durationMs: performance.now() - started,
  };
  if (error) Object.assign(result, { error });
  if (trace) Object.assign(result, { trace: run?.trace ? [...run.trace] : [] });
  return result;
}

/**
 * Runs a compiled stack on an input, which must be plain JSON, and reports how it ended. The
 * response starts as the input's payload and commandOptions and is copied on write: the input itself
 * is never modified, and what a run did not change is handed back as it came (not copied). What a
 * stack writes is plain JSON. A value that evaluates to nothing (JSONata's undefined) is written as
 * null by `set` and `return`, and logged as null. The outcome is MODIFIED when the final payload or
 * commandOptions differ (as JSON) from the input's, else DELIVERED; DROPPED and REJECTED when a
 * step says so.
 *
 * Never throws or rejects for a failing stack: an evaluation error or a bound gives outcome FAILED
 * with a `TRIGGER_FAILED` error naming the step's path and the cause. A bound's message names it
 * after the path: `timeout` (past `timeoutMs`, or an expression's own timeout), `memory` (past
 * `maxMemoryBytes`, or evaluation nested too deep), `size` (a string, array or range over its
 * limit); e.g. `stack[0]: size: a string of ... characters is over the limit of ...`. The time limit is a
 * timer shared by all runs (expressions yield to the event loop every few milliseconds, so it fires
 * during a long one) and is also checked after every step; a run that is over stops evaluating (see
 * ../guard/guard.ts).
 */
export async function runStack(stack: CompiledStack, input: TriggerInput, options: RunOptions = {}): Promise<StackRunResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  const trace = options.trace === true;
  let run: StackRun | undefined;
  try {
    const maxMemoryBytes = options.maxMemoryBytes ?? DEFAULT_RUN_MEMORY_BYTES;
    const current = new StackRun(input, Date.now() + timeoutMs, timeoutMs, trace, options.webhooks, maxMemoryBytes, options.state);
    run = current;
    deadlines.add(current);
    const stop = await new Promise<StackStop | undefined>((resolve, reject) => {
      current.onTimeout = reject;
      current.run(stack.steps).then(resolve, reject);
    });
    // Whatever `set` wrote is plain JSON already (values are made plain JSON as they are evaluated),
    // but a path may have put it deeper than a client's message may nest (what a trigger builds is
    // delivered, stored and logged like one).
    const response = { payload: current.response.payload, commandOptions: current.response.commandOptions };
    // Done at once for a small value; a promise (the value is checked in slices) for a large one.
    const payloadChecked = checkDepth(response.payload, current.guard.isOver);
    if (payloadChecked) await payloadChecked;
    const optionsChecked = checkDepth(response.commandOptions, current.guard.isOver);
    if (optionsChecked) await optionsChecked;
    if (stop?.kind === "drop") return runResult(run, started, trace, "DROPPED", response);
    if (stop?.kind === "reject") return runResult(run, started, trace, "REJECTED", response, { code: stop.code, message: stop.message });
    const original = { payload: input.payload ?? null, commandOptions: input.commandOptions ?? null };
    let same = equalJson(response, original, current.guard.isOver);
    // Stryker disable next-line StringLiteral: awaiting a boolean gives the same boolean.
    if (typeof same !== "boolean") same = await same;
    return runResult(run, started, trace, same ? "DELIVERED" : "MODIFIED", response);
  } catch (error) {
    const message = error instanceof StackFailure ? error.message : failureMessage("stack", error);
    const response = { payload: input.payload, commandOptions: input.commandOptions };
    const code = isOutage(error) ? ErrorCode.ServiceUnavailable : ErrorCode.TriggerFailed;
    return runResult(run, started, trace, "FAILED", response, { code, message });
  } finally {
    if (run) {
      deadlines.delete(run);
      run.end();
    }
  }
}
