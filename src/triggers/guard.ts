import jsonata from "jsonata";
import RE2 from "re2";

/**
 * What keeps one trigger run from stalling or endangering the server, whatever its expressions and
 * whatever a client sends through them:
 * - a time slicer: evaluation yields to the event loop every {@link TIME_SLICE_MS}, so timers (the
 *   run's time limit), I/O and other channels' events keep flowing during a long expression;
 * - a size check on every value an expression produces: no string longer than `maxStringLength`,
 *   no array longer than `maxSequenceLength`;
 * - a memory budget: the strings, arrays and objects a run builds are charged to it (an
 *   over-estimate: a value handed back through several function calls is charged at each);
 * - bounded versions of the built-ins that could otherwise allocate or loop a lot inside one call
 *   (`$pad`, `$join`, `$split`, `$match`, `$replace`, `$distinct`, `$sort`, `$zip`, `$clone`, and
 *   those taking a picture string), which check their arguments before working, and run in time
 *   linear (or n log n) in their input.
 * Together with linear-time regular expressions (./regex.ts), every single step of evaluation is
 * bounded, so the event loop is never held for more than a time slice plus one such step.
 */

/**
 * Which bound a failed run hit; the run's error message names it after the step's path. (`regex`
 * is also how a pattern RE2 cannot run is refused when the stack is compiled.)
 */
export type GuardReason = "timeout" | "memory" | "size" | "regex";

/** A run stopped by one of its bounds. */
export class GuardFailure extends Error {
  constructor(
    readonly reason: GuardReason,
    message: string,
  ) {
    super(message);
  }
}

/** The bounds a {@link RunGuard} enforces. */
export interface GuardLimits {
  /** Characters in any one string an expression produces. */
  readonly maxStringLength: number;
  /** Items in any one array an expression produces. */
  readonly maxSequenceLength: number;
}

/** The state of one run's bounds, shared by all its evaluations. */
export class RunGuard {
  /** Bytes charged so far (estimated). */
  charged = 0;
  /** Arrays and objects already charged: one charged once, however often it is handed around (made on first use). */
  private seen: WeakSet<object> | undefined;

  constructor(
    /** Bytes the run may build (estimated). */
    readonly maxMemoryBytes: number,
    /** True once the run is over: a run that lost the race against its time limit stops evaluating. */
    readonly isOver: () => boolean,
    /** The failure to throw once the run is over. */
    readonly outOfTime: () => Error,
  ) {}

  /** Charges bytes to the run. @throws GuardFailure `memory` once the budget is spent */
  charge(bytes: number): void {
    this.charged += bytes;
    if (this.charged > this.maxMemoryBytes) {
      throw new GuardFailure("memory", `the trigger built more than its memory budget of ${formatBytes(this.maxMemoryBytes)}`);
    }
  }

  /** Charges an array or object once; false when it was charged already. */
  chargeOnce(value: object, bytes: number): boolean {
    this.seen ??= new WeakSet();
    if (this.seen.has(value)) return false;
    this.seen.add(value);
    this.charge(bytes);
    return true;
  }
}

function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/** The binding a run's {@link RunGuard} is passed in; a space keeps expressions from naming it. */
export const RUN_GUARD_BINDING = "run guard";

/** JSONata's frame (environment): only what the guard uses of it. */
interface Frame {
  readonly base: { lookup(name: string): unknown };
}

function guardOf(environment: Frame): RunGuard | undefined {
  return environment.base.lookup(RUN_GUARD_BINDING) as RunGuard | undefined;
}

/** How long an expression may keep the event loop before it yields to other work. */
export const TIME_SLICE_MS = 10;
let sliceStarted = performance.now();
let evaluations = 0;

/** True when the current slice is used up and work should yield to the event loop. */
function sliceIsOver(): boolean {
  return performance.now() - sliceStarted >= TIME_SLICE_MS;
}

/** Lets timers, I/O and other runs go ahead, then starts a new slice. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve)).then(() => {
    sliceStarted = performance.now();
  });
}

/**
 * Called by JSONata on entry to every evaluation step. JSONata never yields to timers or I/O on
 * its own, so a long expression would stall every client until its timeout; this lets the event
 * loop run every few milliseconds while a long expression evaluates, and stops the evaluations of
 * a run that is over.
 */
function onEntry(_expression: unknown, _input: unknown, environment: Frame): Promise<void> | undefined {
  // Not async: JSONata awaits the result on every node, and awaiting undefined is the cheap case.
  if ((++evaluations & 0xff) !== 0) return undefined;
  const guard = guardOf(environment);
  if (guard?.isOver()) throw guard.outOfTime();
  return sliceIsOver() ? yieldToEventLoop() : undefined;
}

/** What a JSONata regex (a matcher function) gives for a match. */
interface Match {
  readonly next: () => unknown;
}
/** A regex as built-ins receive it: JSONata hands them an async wrapper around the compiled matcher. */
type Matcher = (text: string, from?: number) => unknown;

/**
 * A matcher whose walk from match to match (`$match`, `$split`, `$replace` loop over every match of
 * a string in one call) yields to the event loop when the slice is over, and stops once the run is.
 */
function slicedMatcher(matcher: Matcher, guard: RunGuard | undefined): Matcher {
  const wrap = async (pending: unknown): Promise<Match | undefined> => {
    const found = (await pending) as Match | undefined;
    return (
      found && {
        ...found,
        next: async () => {
          if (sliceIsOver()) await yieldToEventLoop();
          if (guard?.isOver()) throw guard.outOfTime();
          return wrap(found.next());
        },
      }
    );
  };
  return (text, from) => wrap(matcher(text, from));
}

/** A regex argument of a built-in, sliced when it is a matcher function (a string pattern is left alone). */
function sliced<T>(pattern: T, environment: Frame): T {
  return typeof pattern === "function" ? (slicedMatcher(pattern as unknown as Matcher, guardOf(environment)) as T) : pattern;
}

/** AST node kinds that can make a new string: a function call, `&`, `~>`. (Others hand on one that exists.) */
const MAKES_STRINGS = new Set(["function", "binary", "apply"]);
/** AST node kinds that only look a value up; whatever they find was charged when it was made, or is the input. */
const LOOKS_UP = new Set(["variable", "name"]);
/** Estimates of the bytes of an object (or array) itself, of one of its properties, and of an array slot. */
const OBJECT_BYTES = 64;
const PROPERTY_BYTES = 32;
const SLOT_BYTES = 8;

/** Charges an object or array, and the objects in a new array, once each. */
function chargeStructure(guard: RunGuard, value: object): void {
  if (!Array.isArray(value)) {
    if (!isFunctionValue(value)) guard.chargeOnce(value, OBJECT_BYTES + PROPERTY_BYTES * Object.keys(value).length);
    return;
  }
  if (!guard.chargeOnce(value, OBJECT_BYTES + SLOT_BYTES * value.length)) return;
  // Items a built-in made along with the array ($spread, $match...) are charged with it.
  for (const item of value) {
    if (typeof item === "object" && item !== null && !Array.isArray(item) && !isFunctionValue(item)) {
      guard.chargeOnce(item, OBJECT_BYTES + PROPERTY_BYTES * Object.keys(item).length);
    }
  }
}

/** The exit hook: checks the size of every value produced, and charges new ones to the run. */
function onExit(limits: GuardLimits) {
  return (expression: { type: string }, _input: unknown, environment: Frame, result: unknown): undefined => {
    if (typeof result === "string") {
      if (result.length > limits.maxStringLength) throw tooLong("a string", result.length, limits.maxStringLength, "characters");
      if (MAKES_STRINGS.has(expression.type)) guardOf(environment)?.charge(2 * result.length);
    } else if (typeof result === "object" && result !== null && !LOOKS_UP.has(expression.type)) {
      if (Array.isArray(result) && result.length > limits.maxSequenceLength)
        throw tooLong("an array", result.length, limits.maxSequenceLength, "items");
      const guard = guardOf(environment);
      if (guard) chargeStructure(guard, result);
    }
    return undefined;
  };
}

function isFunctionValue(value: object): boolean {
  return "_jsonata_lambda" in value || "_jsonata_function" in value;
}

function tooLong(what: string, length: number, limit: number, unit: string): GuardFailure {
  return new GuardFailure("size", `${what} of ${length} ${unit} is over the limit of ${limit}`);
}

/** A built-in as JSONata stores it. */
interface Builtin {
  readonly implementation: (this: unknown, ...args: unknown[]) => unknown;
}

/** JSONata's own implementations of the built-ins replaced below. */
const ORIGINAL = (await jsonata(
  "{ 'split': $split, 'match': $match, 'replace': $replace, 'sort': $sort, 'string': $string," +
    " 'toMillis': $toMillis, 'fromMillis': $fromMillis, 'formatNumber': $formatNumber, 'formatInteger': $formatInteger, 'parseInteger': $parseInteger }",
).evaluate(undefined)) as Record<BuiltinName, Builtin>;

type BuiltinName =
  | "split"
  | "match"
  | "replace"
  | "sort"
  | "string"
  | "toMillis"
  | "fromMillis"
  | "formatNumber"
  | "formatInteger"
  | "parseInteger";

/** Characters in a picture string (`$formatNumber`, `$fromMillis`...): work grows with it, and real pictures are short. */
export const MAX_PICTURE_LENGTH = 1000;

/**
 * Runs JSONata's `$toMillis` with a picture, whose parser builds a regular expression from the
 * picture and runs it natively: `[Y][M][D][H]...` on a long string of digits backtracks for seconds.
 * For the length of that synchronous call, `RegExp` is RE2, so the match is linear too.
 */
function toMillisLinear(this: unknown, text: unknown, picture: unknown): unknown {
  const native = globalThis.RegExp;
  globalThis.RegExp = RE2 as unknown as RegExpConstructor;
  try {
    return ORIGINAL.toMillis.implementation.call(this, text, picture);
  } finally {
    globalThis.RegExp = native;
  }
}

/** `this` of a built-in: JSONata passes the calling frame. */
interface Focus {
  readonly environment: Frame;
}

/** A bounded built-in: its signature (as JSONata's) and implementation. */
interface Replacement {
  readonly signature: string;
  implementation(this: Focus, ...args: never[]): unknown;
}

/** The bounded built-ins for a set of limits. */
function replacements(limits: GuardLimits): Record<string, Replacement> {
  const checkLength = (what: string, length: number) => {
    if (length > limits.maxStringLength) throw tooLong(what, length, limits.maxStringLength, "characters");
  };
  /** A limit for a loop over matches: one more than allowed, so going past it is seen. */
  const matchLimit = (limit: number | undefined) => Math.min(limit ?? Infinity, limits.maxSequenceLength + 1);
  const checkCount = (what: string, result: unknown) => {
    if (Array.isArray(result) && result.length > limits.maxSequenceLength)
      throw tooLong(what, result.length, limits.maxSequenceLength, "items");
    return result;
  };
  const checkPicture = (name: string, picture: unknown) => {
    if (typeof picture === "string" && picture.length > MAX_PICTURE_LENGTH) {
      throw tooLong(`${name}'s picture`, picture.length, MAX_PICTURE_LENGTH, "characters");
    }
  };
  /** A built-in whose argument at `pictureAt` is a picture string, bounded. */
  const pictured = (name: BuiltinName, signature: string, pictureAt: number): Record<string, Replacement> => ({
    [name]: {
      signature,
      implementation(this: Focus, ...args: unknown[]) {
        checkPicture(`$${name}`, args[pictureAt]);
        return ORIGINAL[name].implementation.apply(this, args);
      },
    },
  });
  return {
    pad: {
      signature: "<s-ns?:s>",
      implementation(this: Focus, text: string | undefined, width: number, char?: string) {
        if (text === undefined) return undefined;
        const length = Math.abs(Math.trunc(width));
        checkLength("$pad's result", length);
        // As JSONata's, counting code points; but the pad text is repeated only as often as needed
        // (JSONata repeats all of it `length` times, then cuts).
        const padLength = length - codePointLength(text);
        if (padLength <= 0) return text;
        const padText = char === undefined || char === "" ? " " : char;
        let padding: string;
        if (!SURROGATE.test(padText)) padding = padText.repeat(Math.ceil(padLength / padText.length)).slice(0, padLength);
        else {
          const unit = Array.from(padText);
          padding = Array.from(padText.repeat(Math.ceil(padLength / unit.length)))
            .slice(0, padLength)
            .join("");
        }
        return width > 0 ? text + padding : padding + text;
      },
    },
    join: {
      signature: "<a<s>s?:s>",
      implementation(this: Focus, strings: string[] | undefined, separator = "") {
        if (strings === undefined) return undefined;
        let length = separator.length * Math.max(0, strings.length - 1);
        for (const text of strings) length += text.length;
        checkLength("$join's result", length);
        return strings.join(separator);
      },
    },
    split: {
      signature: "<s-(sf)n?:a<s>>",
      async implementation(this: Focus, text: string | undefined, separator: unknown, limit?: number) {
        const parts = checkCount(
          "$split's result",
          await ORIGINAL.split.implementation.call(this, text, sliced(separator, this.environment), matchLimit(limit)),
        );
        if (Array.isArray(parts) && parts.length > 1) guardOf(this.environment)?.charge(2 * (text?.length ?? 0));
        return parts;
      },
    },
    match: {
      signature: "<s-f<s:o>n?:a<o>>",
      async implementation(this: Focus, text: string | undefined, regex: unknown, limit?: number) {
        const matches = checkCount(
          "$match's result",
          await ORIGINAL.match.implementation.call(this, text, sliced(regex, this.environment), matchLimit(limit)),
        );
        // Each match is an object with the matched text and an array of groups.
        if (Array.isArray(matches)) {
          let bytes = 0;
          for (const found of matches as { match: string }[]) bytes += 2 * OBJECT_BYTES + 2 * found.match.length;
          guardOf(this.environment)?.charge(bytes);
        }
        return matches;
      },
    },
    replace: {
      signature: "<s-(sf)(sf)n?:s>",
      async implementation(this: Focus, text: string | undefined, pattern: unknown, replacement: unknown, limit?: number) {
        // Each replacement may add the replacement text (plus a match for $0 and groups): bound the output before building it.
        if (text !== undefined && typeof replacement === "string" && typeof pattern === "string" && pattern !== "") {
          const count = Math.min(limit ?? Infinity, occurrences(text, pattern));
          checkLength("$replace's result", text.length + count * (replacement.length - pattern.length));
        }
        return ORIGINAL.replace.implementation.call(this, text, sliced(pattern, this.environment), replacement, limit);
      },
    },
    distinct: {
      signature: "<x:x>",
      implementation(this: Focus & { createSequence(): unknown[] }, values: unknown) {
        if (!Array.isArray(values) || values.length <= 1) return values;
        // One pass keyed by a canonical form, where JSONata's own compares every pair (quadratic).
        const primitives = new Set<unknown>();
        const structures = new Set<string>();
        const result = (values as { sequence?: boolean }).sequence ? this.createSequence() : [];
        for (const value of values) {
          const isStructure = typeof value === "object" && value !== null;
          const seen = isStructure ? structures : primitives;
          const key = isStructure ? canonical(value) : value;
          if (seen.has(key as string)) continue;
          seen.add(key as string);
          result.push(value);
        }
        return result;
      },
    },
    sort: {
      signature: "<af?:a>",
      async implementation(this: Focus, values: unknown[] | undefined, comparator?: unknown) {
        // Without a comparator JSONata awaits a comparison per pair, in one call that never yields;
        // numbers and strings sort natively instead (stable, as JSONata's merge sort is).
        if (values !== undefined && values.length > 1 && comparator === undefined) {
          if (values.every((v) => typeof v === "number") || values.every((v) => typeof v === "string")) {
            return [...(values as (number | string)[])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          }
        }
        return ORIGINAL.sort.implementation.call(this, values, comparator);
      },
    },
    zip: {
      signature: "<a+>",
      async implementation(this: Focus, ...arrays: unknown[][]) {
        // n tuples of k items from k arrays of n: charged before they are built, built a slice at a time.
        const length = Math.min(...arrays.map((array) => (Array.isArray(array) ? array.length : 0)));
        if (length > limits.maxSequenceLength) throw tooLong("$zip's result", length, limits.maxSequenceLength, "items");
        const guard = guardOf(this.environment);
        guard?.charge(length * (OBJECT_BYTES + SLOT_BYTES * arrays.length));
        const tuples: unknown[][] = [];
        for (let i = 0; i < length; i++) {
          if ((i & 0xfff) === 0xfff && sliceIsOver()) {
            await yieldToEventLoop();
            if (guard?.isOver()) throw guard.outOfTime();
          }
          tuples.push(arrays.map((array) => array[i]));
        }
        return tuples;
      },
    },
    toMillis: {
      signature: "<s-s?:n>",
      implementation(this: Focus, text: string | undefined, picture?: string) {
        if (picture === undefined) return ORIGINAL.toMillis.implementation.call(this, text, picture);
        checkPicture("$toMillis", picture);
        return toMillisLinear.call(this, text, picture);
      },
    },
    ...pictured("fromMillis", "<n-s?s?:s>", 1),
    ...pictured("formatNumber", "<n-so?:s>", 1),
    ...pictured("formatInteger", "<n-s:s>", 1),
    ...pictured("parseInteger", "<s-s:n>", 1),
    clone: {
      signature: "<(oa)-:o>",
      implementation(this: Focus, value: unknown) {
        if (value === undefined) return undefined;
        const text = ORIGINAL.string.implementation.call(this, value) as string;
        checkLength("the JSON of a value to transform", text.length);
        guardOf(this.environment)?.charge(2 * text.length);
        return JSON.parse(text);
      },
    },
  };
}

/** Half of a surrogate pair: a string without any has as many code points as UTF-16 units. */
const SURROGATE = /[\uD800-\uDFFF]/;

/** Characters of a string as JSONata's `$length` counts them (code points). */
export function codePointLength(text: string): number {
  return SURROGATE.test(text) ? Array.from(text).length : text.length;
}

/** How often `pattern` (not empty) occurs in `text`, without overlaps. */
function occurrences(text: string, pattern: string): number {
  let count = 0;
  for (let at = text.indexOf(pattern); at !== -1; at = text.indexOf(pattern, at + pattern.length)) count++;
  return count;
}

/** A string equal for values JSONata's deep equality finds equal (object keys in any order). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === "object" && inner !== null && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

/** Installs the guard's hooks and bounded built-ins on a compiled expression. */
export function guardExpression(expression: jsonata.Expression, limits: GuardLimits): void {
  expression.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, onEntry);
  expression.assign(Symbol.for("jsonata.__evaluate_exit") as unknown as string, onExit(limits));
  for (const [name, { implementation, signature }] of Object.entries(replacements(limits))) {
    expression.registerFunction(name, implementation as (...args: unknown[]) => unknown, signature);
  }
}
