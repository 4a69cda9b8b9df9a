import { codePointLength, type RunGuard } from "../guard/guard.js";
import { collapseWhitespace } from "../guard/sliced.js";
import { TEXT_CHUNK } from "../guard/values.js";

/**
 * Evaluation of the simplest JSONata expressions without JSONata: a literal, a variable, a path of
 * field names (`payload.text`, `$n.count`), and `$length`, `$uppercase`, `$lowercase` or `$trim` of
 * one of those. JSONata evaluates every node asynchronously; these run synchronously in well under
 * a microsecond, and most trigger steps are of this kind.
 *
 * A plan answers only when its answer is certainly the one JSONata would give, guard hooks
 * included (size checks, memory charged): anything else, an array on the way, a value that is not
 * plain JSON, a variable not bound by the run (a built-in, `$`), a shadowed function, an argument of
 * the wrong type, a size limit or the memory budget reached, gives {@link DEFER}, and the caller
 * evaluates the expression with JSONata, which then raises the errors it raises.
 */

/** What a plan gives when JSONata must evaluate the expression instead. */
export const DEFER: unique symbol = Symbol("defer to JSONata");

/** What a plan needs from its run. */
export interface PlanScope {
  /** The trigger input the expression is evaluated against. */
  readonly input: unknown;
  /** The run's variables (`var` steps, `$response`). */
  readonly bindings: Readonly<Record<string, unknown>>;
  /** The run's guard, charged as JSONata's hooks would charge it. */
  readonly guard: RunGuard;
}

/** A compiled evaluation of an expression: its value, or {@link DEFER}. */
export type ExpressionPlan = (scope: PlanScope) => unknown;

/** A step of evaluation: a value (undefined for nothing), or {@link DEFER}; `cost` collects bytes to charge. */
type Node = (scope: PlanScope, cost: Cost) => unknown;

interface Cost {
  bytes: number;
  /** An object a path gave, charged once as JSONata's exit hook charges it. */
  structure?: object;
}

/** The built-ins a plan evaluates itself: each takes one string (or nothing) and gives a string or a number. */
const FUNCTIONS: Readonly<Record<string, (text: string) => string | number>> = {
  length: codePointLength,
  uppercase: (text) => text.toUpperCase(),
  lowercase: (text) => text.toLowerCase(),
  // As JSONata's $trim: runs of whitespace become one space, then one leading and one trailing space go.
  trim: (text) => {
    let result = collapseWhitespace(text);
    if (result.charAt(0) === " ") result = result.substring(1);
    if (result.charAt(result.length - 1) === " ") result = result.substring(0, result.length - 1);
    return result;
  },
};

/** Estimates of an object's bytes and of an array slot, as the guard's (../guard/guard.ts). */
const OBJECT_BYTES = 64;
const PROPERTY_BYTES = 32;
const SLOT_BYTES = 8;

/** True when an AST node has no keys but these set (a node with any other, a predicate or a flag, is not simple). */
function hasOnlyKeys(node: object, allowed: readonly string[]): boolean {
  return Object.entries(node).every(([key, value]) => value === undefined || allowed.includes(key));
}

const LEAF_KEYS = ["type", "value", "position"];

interface AstNode {
  readonly type?: unknown;
  readonly value?: unknown;
  readonly steps?: unknown;
  readonly arguments?: unknown;
  readonly procedure?: unknown;
}

/** An object JSONata walks into as this plan does: a plain object, not an array or anything else. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * A value a node may hand on: a string within the size limit, a finite number, a boolean, null,
 * nothing, or a plain object that is not a JSONata function.
 */
function settled(value: unknown, maxStringLength: number): unknown {
  switch (typeof value) {
    case "string":
      return value.length > maxStringLength ? DEFER : value;
    case "number":
      return Number.isFinite(value) ? value : DEFER;
    case "boolean":
    case "undefined":
      return value;
    case "object":
      if (value === null) return value;
      return isPlainObject(value) && !("_jsonata_lambda" in value) && !("_jsonata_function" in value) ? value : DEFER;
    default:
      return DEFER;
  }
}

function literal(node: AstNode): Node | undefined {
  const { value } = node;
  if (node.type === "string" && typeof value === "string") return () => value;
  if (node.type === "number" && typeof value === "number" && Number.isFinite(value)) return () => value;
  if (node.type === "value" && (value === true || value === false || value === null)) return () => value;
  return undefined;
}

/** `$name` bound by the run; any other variable (a built-in, `$`, `$$`, an unbound name) defers. */
function variable(node: AstNode, maxStringLength: number): Node | undefined {
  const name = node.value;
  // Called for variable nodes only (see simple and path).
  if (typeof name !== "string" || name === "" || name === "$") return undefined;
  return ({ bindings }) => (Object.hasOwn(bindings, name) ? settled(bindings[name], maxStringLength) : DEFER);
}

/** `a.b.c` or `$v.b.c`: own properties of plain objects, nothing once one is missing; an array defers. */
function path(node: AstNode, maxStringLength: number): Node | undefined {
  if (node.type !== "path" || !hasOnlyKeys(node, ["type", "steps"]) || !Array.isArray(node.steps) || node.steps.length === 0)
    return undefined;
  const steps = node.steps as AstNode[];
  const first = steps[0]!;
  const start = first.type === "variable" && hasOnlyKeys(first, LEAF_KEYS) ? variable(first, maxStringLength) : undefined;
  const names: string[] = [];
  for (const step of start ? steps.slice(1) : steps) {
    if (step.type !== "name" || typeof step.value !== "string" || !hasOnlyKeys(step, LEAF_KEYS)) return undefined;
    names.push(step.value);
  }
  const walk: Node = (scope, cost) => {
    let value: unknown = start ? start(scope, cost) : scope.input;
    if (value === DEFER) return DEFER;
    if (!isPlainObject(value)) return start && value === undefined ? undefined : DEFER;
    for (const name of names) {
      if (!isPlainObject(value)) return DEFER;
      if (!Object.hasOwn(value, name)) return undefined;
      value = settled(value[name], maxStringLength);
      if (value === DEFER || value === undefined) return value;
    }
    // The exit hook charges the object a path gives (once per run).
    if (typeof value === "object" && value !== null) cost.structure = value;
    return value;
  };
  return (scope, cost) => {
    const value = walk(scope, cost);
    // JSONata's exit hook sees a path's result as the sequence it is made in, of zero or one item, and charges it.
    if (value !== DEFER) cost.bytes += OBJECT_BYTES + (value === undefined ? 0 : SLOT_BYTES);
    return value;
  };
}

/** `$length(x)` and the like, of one argument that is itself simple; the function must not be shadowed by a variable. */
function call(node: AstNode, maxStringLength: number): Node | undefined {
  if (node.type !== "function" || !hasOnlyKeys(node, ["type", "value", "position", "arguments", "procedure"])) return undefined;
  const procedure = node.procedure as AstNode | undefined;
  if (procedure?.type !== "variable" || typeof procedure.value !== "string" || !hasOnlyKeys(procedure, LEAF_KEYS)) {
    return undefined;
  }
  const name = procedure.value;
  const implementation = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
  const args = node.arguments;
  if (!implementation || !Array.isArray(args) || args.length !== 1) return undefined;
  const argument = simple(args[0] as AstNode, maxStringLength);
  if (!argument) return undefined;
  return (scope, cost) => {
    if (Object.hasOwn(scope.bindings, name)) return DEFER;
    const text = argument(scope, cost);
    if (text === undefined || text === DEFER) return text;
    if (typeof text !== "string") return DEFER; // JSONata's type error
    // A long text is trimmed by JSONata's (guarded) $trim, which lets the event loop run between chunks.
    if (name === "trim" && text.length > TEXT_CHUNK) return DEFER;
    const result = implementation(text);
    if (typeof result === "string") {
      if (result.length > maxStringLength) return DEFER;
      cost.bytes += 2 * result.length; // a function's new string, as the exit hook charges it
    }
    return result;
  };
}

function simple(node: AstNode, maxStringLength: number): Node | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  switch (node.type) {
    case "string":
    case "number":
    case "value":
      return hasOnlyKeys(node, LEAF_KEYS) ? literal(node) : undefined;
    case "variable":
      return hasOnlyKeys(node, LEAF_KEYS) ? variable(node, maxStringLength) : undefined;
    case "path":
      return path(node, maxStringLength);
    case "function":
      return call(node, maxStringLength);
    default:
      return undefined;
  }
}

/**
 * A plan for an expression's AST, when the expression is simple enough (see the module comment);
 * undefined otherwise. `maxStringLength` is the guard's limit on strings.
 */
export function planExpression(ast: unknown, maxStringLength: number): ExpressionPlan | undefined {
  const root = simple(ast as AstNode, maxStringLength);
  if (!root) return undefined;
  return (scope) => {
    const cost: Cost = { bytes: 0 };
    const value = root(scope, cost);
    if (value === DEFER) return DEFER;
    const { guard } = scope;
    const structureBytes = cost.structure ? OBJECT_BYTES + PROPERTY_BYTES * Object.keys(cost.structure).length : 0;
    // Past the budget JSONata raises the memory error; an answer never leaves the guard half charged.
    if (guard.charged + cost.bytes + structureBytes > guard.maxMemoryBytes) return DEFER;
    if (cost.bytes > 0) guard.charge(cost.bytes);
    if (cost.structure) guard.chargeInputOnce(cost.structure, structureBytes);
    return value;
  };
}

/**
 * JSONata's `$boolean` of a value, for the values it is simple for (nothing, null, booleans, strings,
 * numbers but infinite ones); {@link DEFER} for the rest.
 */
export function simpleBoolean(value: unknown): boolean | typeof DEFER {
  switch (typeof value) {
    case "undefined":
      return false; // $boolean gives nothing, which is not true
    case "boolean":
      return value;
    case "string":
      return value.length > 0;
    case "number":
      // JSONata refuses an infinite number.
      return Number.isNaN(value) ? false : Number.isFinite(value) ? value !== 0 : DEFER;
    case "object":
      return value === null ? false : DEFER;
    default:
      return DEFER;
  }
}
