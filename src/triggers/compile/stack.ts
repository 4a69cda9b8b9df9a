import jsonata from "jsonata";
import { AppError, badInput, ErrorCode } from "../../errors.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../../validation.js";
import { guardExpression } from "../guard/guard.js";
import { jsonPrefix, writeJson } from "../guard/values.js";
import { MAX_STATE_KEY_LENGTH, MAX_STATE_TTL_SECONDS, type StateAccess } from "../state/state.js";
import { isSettableHeader, WEBHOOK_DEFAULTS, WEBHOOK_METHODS, type WebhookClient, type WebhookMethod } from "../webhook/client.js";
import { DEFER, type ExpressionPlan, planExpression, simpleBoolean } from "./fast-path.js";
import { LinearRegex, regexProblem } from "./regex.js";

/** Limits on a stack (checked by {@link compileStack}) and the JSONata guardrails its expressions run under. */
export interface StackLimits {
  /** Steps in the whole stack, nested ones included. */
  readonly maxSteps: number;
  /** How deep `if` steps may nest. */
  readonly maxDepth: number;
  /** Characters in one expression. */
  readonly maxExpressionLength: number;
  /** Bytes of the stack as JSON. */
  readonly maxStackBytes: number;
  /** JSONata's `timeout`: how long one evaluation of one expression may run, in milliseconds. */
  readonly expressionTimeoutMs: number;
  /** JSONata's `stack`: how deeply evaluation may nest (non-tail recursion hits this). */
  readonly maxEvaluationDepth: number;
  /** JSONata's `sequence`: how many items a sequence (or any array) built during evaluation may hold. */
  readonly maxSequenceLength: number;
  /** How many characters a string built during evaluation may hold. */
  readonly maxStringLength: number;
  /** How many keys an object built during evaluation may hold. */
  readonly maxObjectKeys: number;
  /** Whether `http` steps may be saved (the server has a webhook signing secret). */
  readonly allowHttpSteps: boolean;
}

/** The limits applied when none are given. */
export const DEFAULT_STACK_LIMITS: StackLimits = {
  maxSteps: 100,
  maxDepth: 10,
  maxExpressionLength: 4096,
  maxStackBytes: 64 * 1024,
  expressionTimeoutMs: 1000,
  maxEvaluationDepth: 500,
  maxSequenceLength: 20_000,
  maxStringLength: 1_000_000,
  maxObjectKeys: 10_000,
  allowHttpSteps: false,
};

/** A compiled JSONata expression with its source. */
export interface CompiledExpression {
  readonly source: string;
  readonly expression: jsonata.Expression;
  /** Evaluates the expression without JSONata when it is simple enough (see ./fast-path.ts). */
  readonly plan?: ExpressionPlan;
}

/** How a step ends the stack early. */
export type StackStop =
  | { readonly kind: "return" }
  | { readonly kind: "drop" }
  | { readonly kind: "reject"; readonly code: string; readonly message: string };

/** What running one step gave: the value shown in traces (as JSON) and, when the stack ends here, how. */
export interface StepResult {
  readonly result?: unknown;
  readonly stop?: StackStop;
}

/** What a step can do while it runs; the engine provides it. */
export interface StepContext {
  /**
   * Evaluates an expression against the trigger input and the bindings so far. The value comes back
   * as plain JSON, or undefined when the expression yields nothing or a function; with `keepFunction`,
   * a function comes back as JSONata returned it.
   */
  evaluate(expression: CompiledExpression, options?: { readonly keepFunction?: boolean }): Promise<unknown>;
  /** Binds `$name` for the steps that follow. */
  bind(name: string, value: unknown): void;
  /** Sets a path of the response, e.g. `["payload", "text"]`; undefined is written as null. */
  set(target: readonly string[], value: unknown): void;
  /** Appends a value to the run's log; undefined is logged as null. */
  log(value: unknown): void;
  /** Runs nested steps in order, stopping at the first that ends the stack. */
  run(steps: readonly CompiledStep[]): Promise<StackStop | undefined>;
  /** When the run must be over (`Date.now()` milliseconds). */
  readonly deadline: number;
  /** True once the run is over (its time limit passed, or it ended). */
  readonly over: boolean;
  /** Aborted when the run is over, so an outbound request does not outlive it. */
  readonly signal: AbortSignal;
  /** Sends the requests of `http` steps; undefined when the server has them disabled. */
  readonly webhooks: WebhookClient | undefined;
  /** The trigger's state for `get`, `put`, `incr` and `delete` steps; undefined when the run has none. */
  readonly state: StateAccess | undefined;
}

/** A validated step, ready to run. `path` locates it, e.g. `stack[2].then[0]`. */
export interface CompiledStep {
  readonly path: string;
  readonly kind: string;
  readonly run: (context: StepContext) => Promise<StepResult>;
}

/** A validated stack, ready for `runStack`. */
export interface CompiledStack {
  readonly steps: readonly CompiledStep[];
}

/** A step kind: the fields it takes besides its kind key, and how it compiles to something to run. */
interface StepKind {
  readonly fields: Readonly<Record<string, "required" | "optional">>;
  compile(step: StepSource): CompiledStep["run"];
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DIGITS = /^\d+$/;
const REJECT_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const FORBIDDEN_SEGMENTS = new Set(["__proto__", "constructor", "prototype"]);
/** `$response` is the response so far; `$eval` stays disabled. */
const RESERVED_VARIABLES = new Set(["response", "eval"]);
const HTTP_FIELDS = ["url", "method", "headers", "body", "timeoutMs"];
const HTTP_METHODS = new Set<string>(WEBHOOK_METHODS);
const TRUTHY = jsonata("$boolean($value)");

/** True when a value is truthy by JSONata's `$boolean`. */
async function truthy(value: unknown): Promise<boolean> {
  const simple = simpleBoolean(value);
  // Stryker disable next-line ConditionalExpression: evaluating $boolean for every value gives what simpleBoolean gives where it decides (./fast-path.ts), only slower
  return simple === DEFER ? (await TRUTHY.evaluate(undefined, { value })) === true : simple;
}

/** A field naming a variable, validated. */
function variableName(step: StepSource, name: string): string {
  const value = step.field(name);
  if (typeof value !== "string" || !IDENTIFIER.test(value) || RESERVED_VARIABLES.has(value)) {
    throw step.fail(name, "must be a variable name (letters, digits and _, not starting with a digit; not response or eval)");
  }
  return value;
}

/** The trigger's state, once the run is still on (a write started after the time limit would outlive the run). */
function stateOf(context: StepContext): StateAccess {
  if (!context.state) throw new Error("state steps are not available in this run");
  if (context.over) throw new Error("the trigger run is over");
  return context.state;
}

/** Evaluates a state key: a string of 1 to {@link MAX_STATE_KEY_LENGTH} characters. */
async function stateKey(context: StepContext, key: CompiledExpression): Promise<string> {
  const value = await context.evaluate(key);
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_STATE_KEY_LENGTH) {
    throw new Error(`the key must evaluate to a string of 1 to ${MAX_STATE_KEY_LENGTH} characters, got ${describeValue(value)}`);
  }
  return value;
}

/** Evaluates an optional `ttl`: seconds, more than 0 and at most a year; null or nothing means no expiry. */
async function stateTtl(context: StepContext, ttl: CompiledExpression | undefined): Promise<number | undefined> {
  if (!ttl) return undefined;
  const value = await context.evaluate(ttl);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !(value > 0) || value > MAX_STATE_TTL_SECONDS) {
    throw new Error(`ttl must evaluate to a number of seconds above 0 and at most ${MAX_STATE_TTL_SECONDS}, got ${describeValue(value)}`);
  }
  return value;
}

function describeValue(value: unknown): string {
  const { text, whole } = jsonPrefix(value, 60);
  if (text === "") return "nothing";
  return whole ? text : `${text.slice(0, 60)}...`;
}

/** The JSON text of a value an expression gave (plain JSON), written in slices. */
async function jsonText(value: unknown, context: StepContext): Promise<string> {
  const writer = await writeJson(value, { maxLength: Number.POSITIVE_INFINITY }, () => context.over);
  // Stryker disable next-line StringLiteral: unreachable, every caller passes a value that is not undefined, whose JSON text is never undefined
  return writer.text() ?? "null";
}

/** The steps that read and write the trigger's state. */
const STATE_STEP_KINDS: Readonly<Record<string, StepKind>> = {
  get: {
    fields: { as: "required" },
    compile(step) {
      const key = step.expression("get");
      const as = variableName(step, "as");
      return async (context) => {
        const state = stateOf(context);
        const result = await state.get(await stateKey(context, key));
        context.bind(as, result);
        return { result };
      };
    },
  },
  put: {
    fields: { value: "required", ttl: "optional" },
    compile(step) {
      const key = step.expression("put");
      const value = step.expression("value");
      const ttl = step.field("ttl") === undefined ? undefined : step.expression("ttl");
      return async (context) => {
        const name = await stateKey(context, key);
        const stored = (await context.evaluate(value)) ?? null;
        const seconds = await stateTtl(context, ttl);
        await stateOf(context).put(name, stored, seconds);
        return { result: { put: name, value: stored, ttl: seconds ?? null } };
      };
    },
  },
  incr: {
    fields: { by: "optional", ttl: "optional", as: "optional" },
    compile(step) {
      const key = step.expression("incr");
      const by = step.field("by") === undefined ? undefined : step.expression("by");
      const ttl = step.field("ttl") === undefined ? undefined : step.expression("ttl");
      const as = step.field("as") === undefined ? undefined : variableName(step, "as");
      return async (context) => {
        const name = await stateKey(context, key);
        const amount = by ? await context.evaluate(by) : 1;
        // Stryker disable next-line ConditionalExpression: Number.isSafeInteger is false for anything but a number, so the typeof check only narrows the type
        if (typeof amount !== "number" || !Number.isSafeInteger(amount))
          throw new Error(`by must evaluate to a whole number, got ${describeValue(amount)}`);
        const seconds = await stateTtl(context, ttl);
        const value = await stateOf(context).incr(name, amount, seconds);
        if (as) context.bind(as, value);
        return { result: { incr: name, value, ttl: seconds ?? null } };
      };
    },
  },
  delete: {
    fields: {},
    compile(step) {
      const key = step.expression("delete");
      return async (context) => {
        const name = await stateKey(context, key);
        await stateOf(context).delete(name);
        return { result: { delete: name } };
      };
    },
  },
};

/**
 * Every step kind, by its key. A new kind is one more entry: its fields, its validation, and an
 * async function that runs it.
 */
const STEP_KINDS: Readonly<Record<string, StepKind>> = {
  var: {
    fields: { value: "required" },
    compile(step) {
      const name = variableName(step, "var");
      const value = step.expression("value");
      return async (context) => {
        // A function is kept, so a var can define a helper for later steps.
        const result = await context.evaluate(value, { keepFunction: true });
        context.bind(name, result);
        return { result };
      };
    },
  },
  set: {
    fields: { value: "required" },
    compile(step) {
      const target = setTarget(step);
      const value = step.expression("value");
      return async (context) => {
        const result = await context.evaluate(value);
        context.set(target, result);
        return { result };
      };
    },
  },
  return: {
    fields: {},
    compile(step) {
      const value = step.expression("return");
      return async (context) => {
        const result = await context.evaluate(value);
        context.set(["payload"], result);
        return { result, stop: { kind: "return" } };
      };
    },
  },
  if: {
    fields: { then: "required", else: "optional" },
    compile(step) {
      const condition = step.expression("if");
      const then = step.steps("then");
      const otherwise = step.field("else") === undefined ? [] : step.steps("else");
      return async (context) => {
        const result = await truthy(await context.evaluate(condition));
        return { result, stop: await context.run(result ? then : otherwise) };
      };
    },
  },
  drop: {
    fields: {},
    compile(step) {
      if (step.field("drop") !== true) throw step.fail("drop", "must be true");
      return async () => ({ stop: { kind: "drop" } });
    },
  },
  reject: {
    fields: { code: "optional" },
    compile(step) {
      const code = step.field("code") ?? ErrorCode.TriggerRejected;
      if (typeof code !== "string" || !REJECT_CODE.test(code)) {
        throw step.fail("code", "must be an error code such as MESSAGE_TOO_LONG (A-Z, 0-9 and _, starting with a letter, at most 64)");
      }
      const message = step.expression("reject");
      return async (context) => {
        const result = await context.evaluate(message);
        const text = typeof result === "string" ? result : await jsonText(result ?? null, context);
        return { result, stop: { kind: "reject", code, message: text } };
      };
    },
  },
  log: {
    fields: {},
    compile(step) {
      const value = step.expression("log");
      return async (context) => {
        const result = await context.evaluate(value);
        context.log(result);
        return { result };
      };
    },
  },
  http: {
    fields: { as: "required" },
    compile(step) {
      if (!step.limits.allowHttpSteps) throw step.fail("http", "http steps need a webhook signing secret on the server (WEBHOOK_SECRET)");
      const as = variableName(step, "as");
      const http = step.object("http", `must be an object with ${HTTP_FIELDS.join(", ")}`);
      for (const key of http.keys()) if (!HTTP_FIELDS.includes(key)) throw http.fail(key, "unknown field for an http step");
      const method = http.field("method") ?? "POST";
      // Stryker disable next-line ConditionalExpression: a Set of strings has no value but a string (it does not convert), so the typeof check only narrows the type
      if (typeof method !== "string" || !HTTP_METHODS.has(method)) throw http.fail("method", "must be GET, POST, PUT, PATCH or DELETE");
      const timeoutMs = http.field("timeoutMs");
      if (
        timeoutMs !== undefined &&
        // Stryker disable next-line ConditionalExpression: Number.isInteger is false for anything but a number, so the typeof check only narrows the type
        (typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > WEBHOOK_DEFAULTS.maxTimeoutMs)
      ) {
        throw http.fail("timeoutMs", `must be a whole number of milliseconds, 1..${WEBHOOK_DEFAULTS.maxTimeoutMs}`);
      }
      const headerSource =
        http.field("headers") === undefined ? undefined : http.object("headers", "must be an object of header expressions");
      const headers = (headerSource?.keys() ?? []).map((name) => {
        if (!isSettableHeader(name)) throw headerSource!.fail(name, "is not a header a trigger may set");
        return [name, headerSource!.expression(name)] as const;
      });
      if (http.field("body") !== undefined && method === "GET") throw http.fail("body", "a GET request has no body");
      const url = http.expression("url");
      const body = http.field("body") === undefined ? undefined : http.expression("body");
      return async (context) => {
        if (!context.webhooks) throw new Error("http steps are not enabled on this server");
        const target = await context.evaluate(url);
        if (typeof target !== "string") throw new Error("http.url must evaluate to a string");
        const sent: Record<string, string> = {};
        for (const [name, expression] of headers) {
          const value = await context.evaluate(expression);
          if (value !== undefined && value !== null) sent[name] = typeof value === "string" ? value : await jsonText(value, context);
        }
        const response = await context.webhooks.send({
          url: target,
          method: method as WebhookMethod,
          headers: sent,
          body: body && (await context.evaluate(body)),
          timeoutMs: Math.max(1, Math.min(timeoutMs ?? Infinity, context.deadline - Date.now())),
          signal: context.signal,
        });
        const result = { status: response.status, headers: response.headers, body: response.body };
        context.bind(as, result);
        return { result };
      };
    },
  },
  ...STATE_STEP_KINDS,
};

/** The segments of a `set` path, e.g. `payload.items.0.text`, validated. */
function setTarget(step: StepSource): string[] {
  const value = step.field("set");
  if (typeof value !== "string") throw step.fail("set", "must be a path such as payload.text or commandOptions.to");
  const segments = value.split(".");
  if (segments[0] !== "payload" && segments[0] !== "commandOptions") throw step.fail("set", "must start with payload or commandOptions");
  for (const segment of segments) {
    if (FORBIDDEN_SEGMENTS.has(segment)) throw step.fail("set", `"${segment}" may not appear in a path`);
    if (!IDENTIFIER.test(segment) && !DIGITS.test(segment))
      throw step.fail("set", `"${segment}" is not a valid path segment (a name or an index)`);
  }
  return segments;
}

/** One step (or an object inside one) being compiled: its fields, with helpers that compile them or report errors at their path. */
class StepSource {
  constructor(
    private readonly record: Readonly<Record<string, unknown>>,
    readonly path: string,
    private readonly depth: number,
    private readonly compiler: StackCompiler,
  ) {}

  /** The limits the stack is compiled under. */
  get limits(): StackLimits {
    return this.compiler.limits;
  }

  /** The names of the fields present. */
  keys(): string[] {
    return Object.keys(this.record);
  }

  /** The raw value of a field (undefined when absent). */
  field(name: string): unknown {
    return Object.hasOwn(this.record, name) ? this.record[name] : undefined;
  }

  /** A validation error at one of the fields. */
  fail(name: string, message: string): AppError {
    return fail(`${this.path}.${name}`, message);
  }

  /** Compiles a field holding an expression. */
  expression(name: string): CompiledExpression {
    return this.compiler.expression(this.field(name), `${this.path}.${name}`);
  }

  /** Compiles a field holding nested steps, one level deeper. */
  steps(name: string): CompiledStep[] {
    return this.compiler.steps(this.field(name), `${this.path}.${name}`, this.depth + 1);
  }

  /** A field holding an object, as a source of its own (its fields' paths are e.g. `stack[0].http.url`). */
  object(name: string, message: string): StepSource {
    const value = this.field(name);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw this.fail(name, message);
    return new StepSource(value as Record<string, unknown>, `${this.path}.${name}`, this.depth, this.compiler);
  }
}

class StackCompiler {
  private count = 0;
  private readonly guardrails: jsonata.JsonataOptions;

  /**
   * @param problems - when given, a step that does not compile is recorded here and the steps after
   * it are compiled still (the stack's step limit ends the compilation all the same)
   */
  constructor(
    readonly limits: StackLimits,
    private readonly problems?: AppError[],
  ) {
    this.guardrails = {
      timeout: limits.expressionTimeoutMs,
      stack: limits.maxEvaluationDepth,
      sequence: limits.maxSequenceLength,
      RegexEngine: LinearRegex as unknown as RegExpConstructor,
    };
  }

  steps(value: unknown, path: string, depth: number): CompiledStep[] {
    if (!Array.isArray(value)) throw fail(path, "must be an array of steps");
    if (depth > this.limits.maxDepth) throw fail(path, `if steps may nest at most ${this.limits.maxDepth} deep`);
    const compiled: CompiledStep[] = [];
    value.forEach((step, index) => {
      try {
        compiled.push(this.step(step, `${path}[${index}]`, depth));
      } catch (error) {
        if (!this.problems || !(error instanceof AppError) || this.count > this.limits.maxSteps) throw error;
        this.problems.push(error);
      }
    });
    return compiled;
  }

  private step(value: unknown, path: string, depth: number): CompiledStep {
    if (++this.count > this.limits.maxSteps) throw fail(path, `a stack may have at most ${this.limits.maxSteps} steps`);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw fail(path, "a step must be an object");
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    const kinds = keys.filter((key) => Object.hasOwn(STEP_KINDS, key));
    if (kinds.length !== 1) {
      throw fail(
        path,
        kinds.length === 0
          ? `unknown step kind (keys: ${keys.join(", ") || "none"}); expected one of ${Object.keys(STEP_KINDS).join(", ")}`
          : `a step has exactly one kind, found ${kinds.join(" and ")}`,
      );
    }
    const kind = kinds[0]!;
    const { fields, compile } = STEP_KINDS[kind]!;
    for (const key of keys) {
      if (key !== kind && !Object.hasOwn(fields, key)) throw fail(`${path}.${key}`, `unknown field for a ${kind} step`);
    }
    for (const [key, presence] of Object.entries(fields)) {
      if (presence === "required" && !Object.hasOwn(record, key)) throw fail(`${path}.${key}`, `a ${kind} step needs ${key}`);
    }
    return { path, kind, run: compile(new StepSource(record, path, depth, this)) };
  }

  expression(value: unknown, path: string): CompiledExpression {
    if (typeof value !== "string" || value.trim() === "") throw fail(path, "must be a JSONata expression (a non-empty string)");
    if (value.length > this.limits.maxExpressionLength) {
      throw fail(path, `an expression may have at most ${this.limits.maxExpressionLength} characters`);
    }
    let expression: jsonata.Expression;
    try {
      expression = jsonata(value, this.guardrails);
    } catch (error) {
      throw fail(path, `expression does not compile: ${describeError(error)}`);
    }
    const refused = unsupportedRegex(expression.ast(), new Set());
    if (refused)
      throw fail(
        path,
        `regex: ${String(refused.pattern)} is not supported (${refused.problem}); triggers match in linear time, without lookaround or backreferences`,
      );
    guardExpression(expression, this.limits);
    const plan = planExpression(expression.ast(), this.limits.maxStringLength);
    return plan ? { source: value, expression, plan } : { source: value, expression };
  }
}

/** The first regular expression literal in a JSONata AST that the linear-time engine cannot run, with why. */
function unsupportedRegex(node: unknown, seen: Set<object>): { pattern: RegExp; problem: string } | undefined {
  if (typeof node !== "object" || node === null || seen.has(node)) return undefined;
  seen.add(node);
  if (node instanceof RegExp) {
    const problem = regexProblem(node);
    return problem === undefined ? undefined : { pattern: node, problem };
  }
  for (const child of Object.values(node)) {
    const found = unsupportedRegex(child, seen);
    if (found) return found;
  }
  return undefined;
}

function fail(path: string, message: string): AppError {
  return badInput(`${path}: ${message}`, { path });
}

/**
 * A one-line description of an error thrown by JSONata (which throws plain objects carrying a
 * `code` and a `position`) or by JavaScript, without its stack trace.
 */
export function describeError(error: unknown): string {
  if (typeof error !== "object" || error === null) return String(error);
  const { message, code, position } = error as { message?: unknown; code?: unknown; position?: unknown };
  const where = typeof position === "number" ? ` at position ${position}` : "";
  return typeof code === "string" ? `${String(message)} (${code}${where})` : String(message);
}

/**
 * Validates a stack and compiles its expressions, with {@link DEFAULT_STACK_LIMITS} unless `limits`
 * overrides some of them. Regular expression literals the linear-time engine cannot run (lookaround,
 * backreferences) are refused.
 * @throws AppError `BAD_USER_INPUT` whose message starts with the offending field's path, e.g.
 * `stack[2].then[0].value: expression does not compile: ...`, and whose `details.path` is that path
 */
export function compileStack(stack: unknown, limits: Partial<StackLimits> = {}): CompiledStack {
  return compileWith(stack, limits);
}

/**
 * Every problem {@link compileStack} would find in a stack, fixing one at a time: each step's first
 * (steps are checked on after a step that fails), or the one problem with the stack as a whole.
 * Empty when the stack compiles.
 */
export function stackProblems(stack: unknown, limits: Partial<StackLimits> = {}): AppError[] {
  const problems: AppError[] = [];
  try {
    compileWith(stack, limits, problems);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    problems.push(error);
  }
  return problems;
}

function compileWith(stack: unknown, limits: Partial<StackLimits>, problems?: AppError[]): CompiledStack {
  const effective = { ...DEFAULT_STACK_LIMITS, ...limits };
  if (!Array.isArray(stack)) throw fail("stack", "must be an array of steps");
  if (nestsDeeperThan(stack)) throw fail("stack", `nests deeper than ${MAX_JSON_DEPTH} levels`);
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(stack));
  } catch {
    throw fail("stack", "must be plain JSON");
  }
  if (bytes > effective.maxStackBytes) throw fail("stack", `a stack may be at most ${effective.maxStackBytes} bytes as JSON`);
  return { steps: new StackCompiler(effective, problems).steps(stack, "stack", 0) };
}
