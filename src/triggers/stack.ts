import jsonata from "jsonata";
import safeRegex from "safe-regex2";
import { badInput } from "../errors.js";

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
  | { readonly kind: "log"; readonly path: string; readonly value: CompiledExpression };

/** A validated stack, ready to run. */
export interface CompiledStack {
  readonly steps: readonly CompiledStep[];
}

/** The kinds of step; each step object has exactly one of these keys. */
export const STEP_KINDS = ["var", "set", "return", "if", "drop", "reject", "log"] as const;
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
};

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
    }
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
