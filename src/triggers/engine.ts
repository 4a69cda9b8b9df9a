import { isDeepStrictEqual } from "node:util";
import type { CompiledExpression, CompiledStack, CompiledStep } from "./stack.js";
import type { TriggerOutcome } from "./runs.js";
import type { WebhookClient } from "./webhook.js";

/** What a trigger's stack is evaluated against (the names follow Xano's realtime triggers). */
export interface TriggerInput {
  readonly action: "message" | "join" | "leave";
  readonly command: "message" | "join" | "leave";
  readonly channel: string;
  readonly commandOptions: unknown;
  readonly payload: unknown;
  readonly client: { readonly id: string; readonly authenticated: boolean; readonly extras: Record<string, unknown> | null };
}

/** What one step did, recorded when a run is traced. */
export interface StepTrace {
  readonly path: string;
  readonly step: CompiledStep["kind"];
  readonly durationMs: number;
  readonly result?: unknown;
  readonly error?: string;
}

/** How a run ended, with the response it produced. */
export interface StackRunResult {
  readonly outcome: TriggerOutcome;
  readonly payload: unknown;
  readonly commandOptions: unknown;
  /** For REJECTED and FAILED runs. */
  readonly error?: { readonly code: string; readonly message: string };
  readonly log: unknown[];
  readonly durationMs: number;
  readonly trace?: StepTrace[];
}

/** Options for {@link runStack}. */
export interface RunOptions {
  /** Wall-clock limit for the whole run, in milliseconds. */
  readonly timeoutMs: number;
  /** Record a {@link StepTrace} per step. */
  readonly trace?: boolean;
  /** Sends the requests of `http` steps (SSRF-safe and signed). */
  readonly webhooks?: WebhookClient;
}

/** A stop requested by a step. */
type Stop = { readonly kind: "return" } | { readonly kind: "drop" } | { readonly kind: "reject"; readonly code: string; readonly message: string };

class StepFailure extends Error {}

/** Expressions may not build and run new expressions: that would bypass the checks made at save time. */
function evalDisabled(): never {
  throw new Error("$eval is disabled in triggers");
}

/** True for a JSONata function value (a lambda or a built-in). */
function isFunction(value: unknown): boolean {
  return typeof value === "function" || (typeof value === "object" && value !== null && "_jsonata_lambda" in value);
}

/** Converts a JSONata result to plain JSON (sequences become arrays, functions disappear). */
function toJson(value: unknown): unknown {
  if (value === undefined || isFunction(value)) return undefined;
  return JSON.parse(JSON.stringify(value, (_key, inner: unknown) => (isFunction(inner) ? undefined : inner))) as unknown;
}

/** Sets a value at a path of own properties, creating plain objects on the way; undefined removes it. */
function setPath(response: Record<string, unknown>, target: readonly string[], value: unknown): void {
  if (target.length === 1) {
    response[target[0]!] = value === undefined ? null : value;
    return;
  }
  let node = response;
  for (const segment of target.slice(0, -1)) {
    const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (typeof next !== "object" || next === null) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  const last = target.at(-1)!;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

class StackRun {
  readonly log: unknown[] = [];
  readonly trace: StepTrace[] | undefined;
  readonly response: Record<string, unknown>;
  private readonly bindings: Record<string, unknown> = { eval: evalDisabled };

  constructor(
    private readonly input: TriggerInput,
    private readonly deadline: number,
    trace: boolean,
    private readonly webhooks: WebhookClient | undefined,
    /** Aborted when the run is over, so an outbound request does not outlive it. */
    private readonly signal: AbortSignal,
  ) {
    this.trace = trace ? [] : undefined;
    this.response = { payload: toJson(input.payload) ?? null, commandOptions: toJson(input.commandOptions) ?? null };
    this.bindings.response = this.response;
  }

  async steps(steps: readonly CompiledStep[]): Promise<Stop | null> {
    for (const step of steps) {
      if (Date.now() > this.deadline) throw new StepFailure(`${step.path}: the trigger ran out of time`);
      const started = performance.now();
      let result: unknown;
      try {
        const stop = await this.step(step, (value) => (result = value));
        this.trace?.push({ path: step.path, step: step.kind, durationMs: performance.now() - started, result });
        if (stop) return stop;
      } catch (error) {
        const message = error instanceof StepFailure ? error.message : `${step.path}: ${(error as Error).message}`;
        this.trace?.push({ path: step.path, step: step.kind, durationMs: performance.now() - started, error: message });
        throw new StepFailure(message);
      }
    }
    return null;
  }

  private async step(step: CompiledStep, traced: (value: unknown) => void): Promise<Stop | null> {
    switch (step.kind) {
      case "var": {
        // Kept as evaluated, so a variable may hold a function for later steps.
        const value = await step.value.expression.evaluate(this.input, this.bindings);
        this.bindings[step.name] = value;
        traced(isFunction(value) ? "[function]" : toJson(value));
        return null;
      }
      case "set": {
        const value = await this.evaluate(step.value);
        setPath(this.response, step.target, value);
        traced(value);
        return null;
      }
      case "return": {
        const value = await this.evaluate(step.value);
        this.response.payload = value === undefined ? null : value;
        traced(value);
        return { kind: "return" };
      }
      case "if": {
        const condition = (await this.evaluate(step.condition)) === true;
        traced(condition);
        return this.steps(condition ? step.then : step.else);
      }
      case "drop":
        return { kind: "drop" };
      case "reject": {
        const message = await this.evaluate(step.message);
        traced(message);
        const text = typeof message === "string" ? message : JSON.stringify(message ?? null);
        return { kind: "reject", code: step.code ?? "TRIGGER_REJECTED", message: text };
      }
      case "log": {
        const value = await this.evaluate(step.value);
        this.log.push(value === undefined ? null : value);
        traced(value);
        return null;
      }
      case "http": {
        if (!this.webhooks) throw new StepFailure(`${step.path}: http steps are not enabled on this server`);
        const url = await this.evaluate(step.url);
        if (typeof url !== "string") throw new StepFailure(`${step.path}.http.url: must evaluate to a string`);
        const headers: Record<string, string> = {};
        for (const [name, expression] of step.headers) {
          const value = await this.evaluate(expression);
          if (value !== undefined && value !== null) headers[name] = typeof value === "string" ? value : JSON.stringify(value);
        }
        const body = step.body ? await this.evaluate(step.body) : undefined;
        const response = await this.webhooks.send({
          url,
          method: step.method,
          headers,
          body,
          timeoutMs: Math.max(1, Math.min(step.timeoutMs ?? Infinity, this.deadline - Date.now())),
          signal: this.signal,
        });
        const value = { status: response.status, headers: response.headers, body: response.body };
        this.bindings[step.as] = value;
        traced(value);
        return null;
      }
    }
  }

  private async evaluate(compiled: CompiledExpression): Promise<unknown> {
    return toJson(await compiled.expression.evaluate(this.input, this.bindings));
  }
}

/**
 * Runs a compiled stack on an input. Never throws for a failing stack: an evaluation error, a
 * guardrail (recursion depth, sequence length, JSONata's timeout) or running past `timeoutMs` gives
 * outcome FAILED with a `TRIGGER_FAILED` error naming the step. The input is never modified.
 */
export async function runStack(stack: CompiledStack, input: TriggerInput, options: RunOptions): Promise<StackRunResult> {
  const started = performance.now();
  const abort = new AbortController();
  const run = new StackRun(input, Date.now() + options.timeoutMs, options.trace ?? false, options.webhooks, abort.signal);
  const finish = (outcome: TriggerOutcome, error?: StackRunResult["error"]): StackRunResult => ({
    outcome,
    payload: outcome === "FAILED" ? input.payload : run.response.payload,
    commandOptions: outcome === "FAILED" ? input.commandOptions : run.response.commandOptions,
    ...(error ? { error } : {}),
    log: run.log,
    durationMs: performance.now() - started,
    ...(run.trace ? { trace: run.trace } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StepFailure(`the trigger ran out of time (${options.timeoutMs} ms)`)), options.timeoutMs);
    });
    const stop = await Promise.race([run.steps(stack.steps), timeout]);
    if (stop?.kind === "drop") return finish("DROPPED");
    if (stop?.kind === "reject") return finish("REJECTED", { code: stop.code, message: stop.message });
    // Compared as plain JSON: inputs may come with other prototypes (e.g. null-prototype objects).
    const unchanged =
      isDeepStrictEqual(run.response.payload, toJson(input.payload) ?? null) &&
      isDeepStrictEqual(run.response.commandOptions, toJson(input.commandOptions) ?? null);
    return finish(unchanged ? "DELIVERED" : "MODIFIED");
  } catch (error) {
    const message = error instanceof StepFailure ? error.message : `unexpected failure: ${(error as Error).message}`;
    return finish("FAILED", { code: "TRIGGER_FAILED", message });
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
