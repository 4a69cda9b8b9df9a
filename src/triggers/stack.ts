import jsonata from "jsonata";
import safeRegex from "safe-regex2";
import { badInput } from "../errors.js";
import { RESERVED_HEADERS, WEBHOOK_DEFAULTS, type WebhookMethod } from "./webhook.js";

/** Size limits on a stack, checked when it is saved. */
export interface StackLimits {
  /** Steps in the whole stack, nested ones included. */
  readonly maxSteps: number;
  /** How deep `if` steps may nest. */
  readonly maxDepth: number;
  /** Characters in one expression. */
  readonly maxExpressionLength: number;
  /** Bytes of the stack as JSON. */
  readonly maxStackBytes: number;
  /** JSONata's own evaluation timeout for one expression, in milliseconds. */
  readonly expressionTimeoutMs: number;
  /** JSONata's limit on evaluation depth (recursion). */
  readonly maxEvaluationDepth: number;
  /** JSONata's limit on the length of a sequence an expression builds. */
  readonly maxSequenceLength: number;
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
  maxEvaluationDepth: 200,
  maxSequenceLength: 100_000,
  allowHttpSteps: false,
};

/** A compiled JSONata expression with its source, for traces and errors. */
export interface CompiledExpression {
  readonly source: string;
  readonly expression: jsonata.Expression;
}

/** A step after validation, with its expressions compiled. `path` locates it, e.g. `stack[2].then[0]`. */
export type CompiledStep =
  | { readonly kind: "var"; readonly path: string; readonly name: string; readonly value: CompiledExpression }
  | { readonly kind: "set"; readonly path: string; readonly target: readonly string[]; readonly value: CompiledExpression }
  | { readonly kind: "return"; readonly path: string; readonly value: CompiledExpression }
  | { readonly kind: "if"; readonly path: string; readonly condition: CompiledExpression; readonly then: CompiledStep[]; readonly else: CompiledStep[] }
  | { readonly kind: "drop"; readonly path: string }
  | { readonly kind: "reject"; readonly path: string; readonly message: CompiledExpression; readonly code: string | null }
  | { readonly kind: "log"; readonly path: string; readonly value: CompiledExpression }
  | {
      readonly kind: "http";
      readonly path: string;
      /** The variable the response is bound to. */
      readonly as: string;
      readonly url: CompiledExpression;
      readonly method: WebhookMethod;
      readonly headers: readonly (readonly [name: string, value: CompiledExpression])[];
      readonly body: CompiledExpression | null;
      readonly timeoutMs: number | null;
    };

/** A validated stack, ready to run. */
export interface CompiledStack {
  readonly steps: readonly CompiledStep[];
}

/** The kinds of step; each step object has exactly one of these keys. */
export const STEP_KINDS = ["var", "set", "return", "if", "drop", "reject", "log", "http"] as const;
type StepKind = (typeof STEP_KINDS)[number];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REJECT_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const FORBIDDEN_SEGMENTS = new Set(["__proto__", "constructor", "prototype"]);
const RESERVED_VARIABLES = new Set(["response", "eval"]);

/** The fields each step kind allows besides its kind key, and whether each is required. */
const STEP_FIELDS: Record<StepKind, Record<string, boolean>> = {
  var: { value: true },
  set: { value: true },
  return: {},
  if: { then: true, else: false },
  drop: {},
  reject: { code: false },
  log: {},
  http: { as: true },
};

const HTTP_FIELDS = new Set(["url", "method", "headers", "body", "timeoutMs"]);
const HTTP_METHODS = new Set<string>(["GET", "POST", "PUT", "PATCH", "DELETE"]);
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;

/** How long an expression may keep the event loop before it yields to other work. */
const TIME_SLICE_MS = 10;
let sliceStarted = performance.now();
let evaluations = 0;

/**
 * Called by JSONata on entry to every evaluation step. JSONata never yields to timers or I/O on
 * its own, so a long expression would stall every client until its timeout; this lets the event
 * loop run every few milliseconds while a long expression evaluates.
 */
async function yieldNowAndThen(): Promise<void> {
  if ((++evaluations & 0xff) !== 0) return;
  const now = performance.now();
  if (now - sliceStarted < TIME_SLICE_MS) return;
  await new Promise((resolve) => setImmediate(resolve));
  sliceStarted = performance.now();
}

class StackCompiler {
  private steps = 0;

  constructor(private readonly limits: StackLimits) {}

  compileSteps(value: unknown, path: string, depth: number): CompiledStep[] {
    if (!Array.isArray(value)) throw fail(path, "must be an array of steps");
    if (depth > this.limits.maxDepth) throw fail(path, `if steps may nest at most ${this.limits.maxDepth} deep`);
    return value.map((step, index) => this.step(step, `${path}[${index}]`, depth));
  }

  private step(step: unknown, path: string, depth: number): CompiledStep {
    if (++this.steps > this.limits.maxSteps) throw fail(path, `a stack may have at most ${this.limits.maxSteps} steps`);
    if (typeof step !== "object" || step === null || Array.isArray(step)) throw fail(path, "a step must be an object");
    const record = step as Record<string, unknown>;
    const kinds = STEP_KINDS.filter((kind) => Object.hasOwn(record, kind));
    if (kinds.length !== 1) {
      throw fail(path, kinds.length === 0 ? `unknown step: expected one of ${STEP_KINDS.join(", ")}` : `a step has exactly one kind, found ${kinds.join(" and ")}`);
    }
    const kind = kinds[0]!;
    const allowed = STEP_FIELDS[kind];
    for (const key of Object.keys(record)) {
      if (key !== kind && !(key in allowed)) throw fail(`${path}.${key}`, `unknown field for a ${kind} step`);
    }
    for (const [key, required] of Object.entries(allowed)) {
      if (required && !Object.hasOwn(record, key)) throw fail(`${path}.${key}`, `a ${kind} step needs ${key}`);
    }
    switch (kind) {
      case "var": {
        const name = record.var;
        if (typeof name !== "string" || !IDENTIFIER.test(name) || RESERVED_VARIABLES.has(name)) {
          throw fail(`${path}.var`, "must be a variable name (letters, digits, _; not response or eval)");
        }
        return { kind, path, name, value: this.expression(record.value, `${path}.value`) };
      }
      case "set":
        return { kind, path, target: setTarget(record.set, `${path}.set`), value: this.expression(record.value, `${path}.value`) };
      case "return":
        return { kind, path, value: this.expression(record.return, `${path}.return`) };
      case "if":
        return {
          kind,
          path,
          condition: this.expression(record.if, `${path}.if`, (source) => `$boolean((${source}))`),
          then: this.compileSteps(record.then, `${path}.then`, depth + 1),
          else: record.else === undefined ? [] : this.compileSteps(record.else, `${path}.else`, depth + 1),
        };
      case "drop":
        if (record.drop !== true) throw fail(`${path}.drop`, "must be true");
        return { kind, path };
      case "reject": {
        const code = record.code;
        if (code !== undefined && (typeof code !== "string" || !REJECT_CODE.test(code))) {
          throw fail(`${path}.code`, "must be an error code such as MESSAGE_TOO_LONG (A-Z, 0-9, _)");
        }
        return { kind, path, message: this.expression(record.reject, `${path}.reject`), code: code ?? null };
      }
      case "log":
        return { kind, path, value: this.expression(record.log, `${path}.log`) };
      case "http":
        return this.httpStep(record, path);
    }
  }

  private httpStep(record: Record<string, unknown>, path: string): CompiledStep {
    if (!this.limits.allowHttpSteps) throw fail(`${path}.http`, "http steps need a webhook signing secret on the server (WEBHOOK_SECRET)");
    const as = record.as;
    if (typeof as !== "string" || !IDENTIFIER.test(as) || RESERVED_VARIABLES.has(as)) {
      throw fail(`${path}.as`, "must be a variable name (letters, digits, _; not response or eval)");
    }
    const http = record.http;
    if (typeof http !== "object" || http === null || Array.isArray(http)) throw fail(`${path}.http`, "must be an object with url, method, headers, body, timeoutMs");
    const spec = http as Record<string, unknown>;
    for (const key of Object.keys(spec)) if (!HTTP_FIELDS.has(key)) throw fail(`${path}.http.${key}`, "unknown field for an http step");
    const method = spec.method ?? "POST";
    if (typeof method !== "string" || !HTTP_METHODS.has(method)) throw fail(`${path}.http.method`, "must be GET, POST, PUT, PATCH or DELETE");
    const timeoutMs = spec.timeoutMs ?? null;
    if (timeoutMs !== null && (typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > WEBHOOK_DEFAULTS.maxTimeoutMs)) {
      throw fail(`${path}.http.timeoutMs`, `must be a whole number of milliseconds, 1..${WEBHOOK_DEFAULTS.maxTimeoutMs}`);
    }
    const headers = spec.headers ?? {};
    if (typeof headers !== "object" || headers === null || Array.isArray(headers)) throw fail(`${path}.http.headers`, "must be an object of header expressions");
    const compiledHeaders = Object.entries(headers).map(([name, value]) => {
      if (!HEADER_NAME.test(name) || RESERVED_HEADERS.has(name.toLowerCase())) {
        throw fail(`${path}.http.headers.${name}`, "is not a header a trigger may set");
      }
      return [name, this.expression(value, `${path}.http.headers.${name}`)] as const;
    });
    if (spec.body !== undefined && method === "GET") throw fail(`${path}.http.body`, "a GET request has no body");
    return {
      kind: "http",
      path,
      as,
      url: this.expression(spec.url, `${path}.http.url`),
      method: method as WebhookMethod,
      headers: compiledHeaders,
      body: spec.body === undefined ? null : this.expression(spec.body, `${path}.http.body`),
      timeoutMs: timeoutMs as number | null,
    };
  }

  private expression(value: unknown, path: string, wrap: (source: string) => string = (source) => source): CompiledExpression {
    if (typeof value !== "string" || value.trim() === "") throw fail(path, "must be a JSONata expression (a non-empty string)");
    if (value.length > this.limits.maxExpressionLength) {
      throw fail(path, `an expression may have at most ${this.limits.maxExpressionLength} characters`);
    }
    let expression: jsonata.Expression;
    try {
      expression = jsonata(wrap(value), {
        timeout: this.limits.expressionTimeoutMs,
        stack: this.limits.maxEvaluationDepth,
        sequence: this.limits.maxSequenceLength,
      });
      jsonata(value); // report syntax errors against the source as written
      expression.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, yieldNowAndThen);
    } catch (error) {
      throw fail(path, `expression does not compile: ${(error as Error).message}`);
    }
    const unsafe = unsafeRegex(expression.ast());
    if (unsafe) throw fail(path, `regular expression ${unsafe} can take exponential time; rewrite it without nested repetition`);
    return { source: value, expression };
  }
}

function setTarget(value: unknown, path: string): string[] {
  if (typeof value !== "string") throw fail(path, "must be a path such as payload.text or commandOptions.to");
  const segments = value.split(".");
  if (segments[0] !== "payload" && segments[0] !== "commandOptions") {
    throw fail(path, "must start with payload or commandOptions");
  }
  for (const segment of segments) {
    if (!IDENTIFIER.test(segment) && !/^\d+$/.test(segment)) throw fail(path, `"${segment}" is not a valid path segment`);
    if (FORBIDDEN_SEGMENTS.has(segment)) throw fail(path, `"${segment}" may not appear in a path`);
  }
  return segments;
}

/** The first regular expression literal in a JSONata AST that safe-regex2 finds catastrophic. */
function unsafeRegex(node: unknown): string | null {
  if (typeof node !== "object" || node === null) return null;
  if (node instanceof RegExp) return safeRegex(node) ? null : String(node);
  for (const child of Object.values(node)) {
    const found = unsafeRegex(child);
    if (found) return found;
  }
  return null;
}

function fail(path: string, message: string) {
  return badInput(`${path}: ${message}`, { path });
}

/**
 * Validates a stack and compiles its expressions.
 * @throws AppError `BAD_USER_INPUT` whose message starts with the offending step's path, e.g.
 * `stack[2].then[0].value: expression does not compile: ...`
 */
export function compileStack(stack: unknown, limits: Partial<StackLimits> = {}): CompiledStack {
  const effective = { ...DEFAULT_STACK_LIMITS, ...limits };
  const bytes = Buffer.byteLength(JSON.stringify(stack ?? null));
  if (bytes > effective.maxStackBytes) throw fail("stack", `a stack may be at most ${effective.maxStackBytes} bytes as JSON`);
  return { steps: new StackCompiler(effective).compileSteps(stack, "stack", 0) };
}
