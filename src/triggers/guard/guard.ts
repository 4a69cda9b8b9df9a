import jsonata from "jsonata";
import RE2 from "re2";
import { GuardFailure } from "./failure.js";
import { convertUrl, keys, merge, replaceText, spread, trim, URL_FUNCTIONS } from "./sliced.js";
import { ITEMS_PER_CHECK, nextSliceFor, parked, sliceIsOver } from "./slices.js";
import { isFunction, writeJson } from "./values.js";

export { GuardFailure, type GuardReason } from "./failure.js";

/**
 * What keeps one trigger run from stalling or endangering the server, whatever its expressions and
 * whatever a client sends through them:
 * - time slices (./slices.ts): on entry to every evaluation step, once the current slice (5 ms,
 *   shared by all runs) is over, evaluation waits for its turn in a later turn of the event loop, so
 *   timers (the run's time limit), I/O and other channels' events keep flowing during a long run;
 * - a size check on every value an expression produces: no string longer than `maxStringLength`,
 *   no array longer than `maxSequenceLength`, no object with more than `maxObjectKeys` keys;
 * - a memory budget: the strings, arrays and objects a run builds are charged to it (an
 *   over-estimate: a value handed back through several function calls is charged at each);
 * - bounded versions of the built-ins that could otherwise allocate or work a lot inside one call:
 *   those that check their arguments before building (`$pad`, `$join`, those taking a picture
 *   string), those that walk a long string or a large value in slices or chunks (`$string`,
 *   `$clone`, `$length`, `$substring`, `$trim`, `$replace`, `$split`, `$match`, the URL functions,
 *   `$spread`, `$merge`, `$keys`, `$distinct`, `$zip`), and those made native where JSONata's was
 *   slow (`$sort` of numbers or strings, `$reverse`);
 * - checks before the few evaluation steps whose work in JSONata grows faster than their input, in
 *   one synchronous call: a wildcard over many arrays, an object constructor over `@`/`#` tuples;
 * - JSONata's own guardrails (`stack`, `timeout`) failing an evaluation once, without stack traces.
 * Together with linear-time regular expressions whose work per match is bounded (../compile/regex.ts),
 * every single step of evaluation is bounded, so the event loop is held for a time slice plus one
 * such step at most.
 */

/** The bounds a {@link RunGuard} enforces. */
export interface GuardLimits {
  /** Characters in any one string an expression produces. */
  readonly maxStringLength: number;
  /** Items in any one array an expression produces. */
  readonly maxSequenceLength: number;
  /** Keys of any one object an expression produces. */
  readonly maxObjectKeys: number;
}

/** The state of one run's bounds, shared by all its evaluations. */
export class RunGuard {
  /** Bytes charged so far (estimated). */
  charged = 0;
  /** Arrays and objects already charged that cannot take a mark (frozen ones; made on first use). */
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

  /** The mark of this run's charged arrays and objects (an object of its own, so a mark holds nothing else alive). */
  private readonly token = {};

  /**
   * Charges an array or object the run made (JSONata evaluates copies) once, however often it is
   * handed around; `bytes` is measured the first time only. False when it was charged already.
   */
  chargeOnce(value: object, bytes: number | ((value: object) => number)): boolean {
    if (!this.mark(value)) return false;
    this.charge(typeof bytes === "number" ? bytes : bytes(value));
    return true;
  }

  /** As {@link chargeOnce}, for an object the run did not make (its input, which is never marked). */
  chargeInputOnce(value: object, bytes: number): boolean {
    if (!this.remember(value)) return false;
    this.charge(bytes);
    return true;
  }

  /**
   * Marks an array or object as charged to this run, false when it was already: a symbol key
   * (which Object.keys, JSON and JSONata do not see), as a WeakSet of a hundred thousand objects
   * cost tens of milliseconds to fill and slowed every garbage collection.
   */
  private mark(value: object): boolean {
    const marked = value as { [CHARGED]?: object };
    if (marked[CHARGED] === this.token) return false;
    if (!Object.isExtensible(value)) return this.remember(value);
    marked[CHARGED] = this.token;
    return true;
  }

  /** Remembers an object aside, false when it was already. */
  private remember(value: object): boolean {
    this.seen ??= new WeakSet();
    if (this.seen.has(value)) return false;
    this.seen.add(value);
    return true;
  }
}

/** The key marking an array or object as charged to a run (see {@link RunGuard.chargeOnce}). */
const CHARGED = Symbol("charged to a run");

function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/** The binding a run's {@link RunGuard} is passed in; a space keeps expressions from naming it. */
export const RUN_GUARD_BINDING = "run guard";

/** JSONata's frame (environment): only what the guard uses of it. */
interface Frame {
  readonly base: EvaluationFrame;
  lookup(name: string): unknown;
}

/** The root frame of one evaluation, holding JSONata's guardrails (the `stack` and `timeout` options). */
interface EvaluationFrame {
  lookup(name: string): unknown;
  guardrails(): void;
  readonly depth: number;
  readonly options: { readonly stack: number; readonly timeout: number };
  /** When the evaluation started (`Date.now()`), for its `timeout`. */
  [STARTED]?: number;
  /** Set once a guardrail failed the evaluation. */
  [FAILED]?: true;
}

function guardOf(environment: Frame): RunGuard | undefined {
  return environment.base.lookup(RUN_GUARD_BINDING) as RunGuard | undefined;
}

const STARTED = Symbol("evaluation started");
const FAILED = Symbol("evaluation failed");

/**
 * JSONata's guardrails (checked on entry to every step), failing an evaluation once: the steps of
 * an object constructor's groups start all at once, each counting toward the depth, so past the
 * `stack` option every one of thousands of groups failed, each capturing a stack trace and
 * rejecting a promise, which held the event loop for seconds. The first failure ends the
 * evaluation (JSONata's errors propagate to the top: no expression catches one); the steps that
 * enter after it are parked by {@link onEntry}.
 */
function guardrails(this: EvaluationFrame): void {
  if (this[FAILED]) return;
  const { stack, timeout } = this.options;
  if (this.depth > stack) throw guardrailFailure(this, "D1011", stack);
  if (Date.now() - this[STARTED]! > timeout) throw guardrailFailure(this, "D1012", timeout);
}

/** JSONata's error for a guardrail (its message is filled in from the code), without a stack trace. */
function guardrailFailure(frame: EvaluationFrame, code: string, value: number): { code: string; value: number } {
  frame[FAILED] = true;
  return { code, value };
}

/**
 * Called by JSONata on entry to every evaluation step. JSONata never yields to timers or I/O on
 * its own, so a long expression would stall every client until its timeout; this lets the event
 * loop run once the time slice is over (see ./slices.ts), and stops the evaluations of a run that
 * is over (which it can only become while the event loop runs).
 */
function onEntry(expression: CheckedNode, input: unknown, environment: Frame): Promise<void> | undefined {
  const base = environment.base;
  if (base.guardrails !== guardrails) {
    // The evaluation's first step: from here on, its guardrails are the guard's.
    base[STARTED] = Date.now();
    base.guardrails = guardrails;
  } else if (base[FAILED]) return parked();
  expression[ENTRY_CHECK]?.(input, environment);
  // Not async: JSONata awaits the result on every node, and awaiting undefined is the cheap case.
  return sliceIsOver() ? nextSliceFor(guardOf(environment)?.isOver) : undefined;
}

/**
 * A check made on entry to an AST node whose evaluation by JSONata does, in one synchronous step,
 * work that grows faster than its input (attached when the expression is compiled, see
 * {@link attachEntryChecks}).
 */
type EntryCheck = (input: unknown, environment: Frame) => void;

/** An AST node, with the entry check attached to it, if any. */
interface CheckedNode {
  readonly type?: unknown;
  [ENTRY_CHECK]?: EntryCheck;
}

const ENTRY_CHECK = Symbol("entry check");

/** Items a wildcard (`*`) may copy while it gathers an object's values (see {@link checkWildcard}). */
export const MAX_WILDCARD_WORK = 2_000_000;

/**
 * JSONata's wildcard appends each array value of an object to the values gathered so far by
 * copying them all: over many keys holding arrays the copies grow with the square of the items (an
 * object of 10,000 keys of 10 items each held the event loop for 15 s). Counts those copies first
 * (stopping past the limit).
 * @throws GuardFailure `size` when they would be over {@link MAX_WILDCARD_WORK}
 */
function checkWildcard(input: unknown): void {
  let value = input;
  if (Array.isArray(value) && (value as { outerWrapper?: boolean }).outerWrapper && value.length > 0) value = value[0];
  if (typeof value !== "object" || value === null || isFunction(value)) return;
  let gathered = 0;
  let copied = 0;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (!Array.isArray(item)) {
      gathered++;
      continue;
    }
    const items = flatLength(item, MAX_WILDCARD_WORK - copied);
    copied += gathered + items;
    gathered += items;
    if (copied > MAX_WILDCARD_WORK) {
      throw new GuardFailure("size", `a wildcard (*) over an object holding many arrays would copy over ${MAX_WILDCARD_WORK} items`);
    }
  }
}

/** The items of an array with nested arrays flattened, counted up to a little past `max`. */
function flatLength(array: unknown[], max: number): number {
  let count = 0;
  const pending: unknown[][] = [array];
  while (pending.length > 0 && count <= max) {
    for (const item of pending.pop()!) {
      if (Array.isArray(item)) pending.push(item);
      else count++;
    }
  }
  return count;
}

/** Tuples an object constructor may group in one evaluation when its path binds `@` or `#` (see {@link countTuple}). */
export const MAX_GROUPED_TUPLES = 2000;

/** Tuples counted per group key expression, in one evaluation. */
const GROUPED_TUPLES = Symbol("grouped tuples");

/**
 * An object constructor over a path that binds variables (`@$x`, `#$i`) groups tuples, and
 * JSONata merges each group's tuples by copying the items merged so far at every one: the work
 * grows with the square of the tuples, in one step (20,000 tuples held the event loop for 5 s).
 * Counts the tuples its key expression is evaluated for (a tuple's frame binds `@`).
 * @throws GuardFailure `size` past {@link MAX_GROUPED_TUPLES} in one evaluation
 */
function countTuple(this: CheckedNode, environment: Frame): void {
  if (environment.lookup("@") === undefined) return; // not a tuple stream
  const base = environment.base as EvaluationFrame & { [GROUPED_TUPLES]?: Map<CheckedNode, number> };
  const counts = (base[GROUPED_TUPLES] ??= new Map());
  const count = (counts.get(this) ?? 0) + 1;
  counts.set(this, count);
  if (count > MAX_GROUPED_TUPLES) {
    throw new GuardFailure("size", `an object constructor over @ or # bindings may group at most ${MAX_GROUPED_TUPLES} tuples`);
  }
}

/** Attaches the {@link EntryCheck}s to the nodes of a compiled expression's AST that need one. */
function attachEntryChecks(node: unknown, seen = new Set<object>()): void {
  if (typeof node !== "object" || node === null || seen.has(node)) return;
  seen.add(node);
  const checked = node as CheckedNode & { group?: { lhs?: unknown[][] } };
  if (checked.type === "wildcard") checked[ENTRY_CHECK] = checkWildcard;
  for (const pair of checked.group?.lhs ?? []) {
    const key = pair[0] as CheckedNode | undefined;
    if (key) key[ENTRY_CHECK] = (_input, environment) => countTuple.call(key, environment);
  }
  for (const child of Object.values(node)) attachEntryChecks(child, seen);
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
          if (sliceIsOver()) await nextSliceFor(guard?.isOver);
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

/**
 * Charges an object or array, and the objects in a new array, once each.
 * @throws GuardFailure `size` for an object with more than `limits.maxObjectKeys` keys
 */
function chargeStructure(guard: RunGuard, value: object, limits: GuardLimits): void {
  /** The estimated bytes of an object, once its keys are within the limit. */
  const objectBytes = (object: object) => {
    const keys = Object.keys(object).length;
    if (keys > limits.maxObjectKeys) throw tooLong("an object", keys, limits.maxObjectKeys, "keys");
    return OBJECT_BYTES + PROPERTY_BYTES * keys;
  };
  if (!Array.isArray(value)) {
    if (!isFunctionValue(value)) guard.chargeOnce(value, objectBytes);
    return;
  }
  if (!guard.chargeOnce(value, OBJECT_BYTES + SLOT_BYTES * value.length)) return;
  // Items a built-in made along with the array ($spread, $match...) are charged with it.
  for (const item of value) {
    if (typeof item === "object" && item !== null && !Array.isArray(item) && !isFunctionValue(item)) guard.chargeOnce(item, objectBytes);
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
      if (guard) chargeStructure(guard, result, limits);
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

/** A size failure found before the whole value was made (so without its length). */
function overLimit(what: string, limit: number, unit: string): GuardFailure {
  return new GuardFailure("size", `${what} is over the limit of ${limit} ${unit}`);
}

/** A built-in as JSONata stores it. */
interface Builtin {
  readonly implementation: (this: unknown, ...args: unknown[]) => unknown;
}

/** JSONata's own implementations of the built-ins replaced below. */
const ORIGINAL = (await jsonata(
  "{ 'split': $split, 'match': $match, 'replace': $replace, 'sort': $sort," +
    " 'toMillis': $toMillis, 'fromMillis': $fromMillis, 'formatNumber': $formatNumber, 'formatInteger': $formatInteger, 'parseInteger': $parseInteger }",
).evaluate(undefined)) as Record<BuiltinName, Builtin>;

type BuiltinName = "split" | "match" | "replace" | "sort" | "toMillis" | "fromMillis" | "formatNumber" | "formatInteger" | "parseInteger";

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
        // Whole repeats of the pad text, then the code points of it still needed: its length is
        // known (and checked) before it is built, without an array of a million code points.
        const points = codePointLength(padText);
        const rest = sliceCodePoints(padText, points, 0, padLength % points);
        const repeats = Math.floor(padLength / points);
        checkLength("$pad's result", text.length + repeats * padText.length + rest.length);
        const padding = padText.repeat(repeats) + rest;
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
        if (text !== undefined && typeof replacement === "string" && typeof pattern === "string" && pattern !== "" && !(limit! < 0)) {
          const check = (length: number) => checkLength("$replace's result", length);
          return replaceText(text, pattern, replacement, limit, check, guardOf(this.environment)?.isOver);
        }
        return ORIGINAL.replace.implementation.call(this, text, sliced(pattern, this.environment), replacement, limit);
      },
    },
    distinct: {
      signature: "<x:x>",
      async implementation(this: Focus, values: unknown) {
        if (!Array.isArray(values) || values.length <= 1) return values;
        // One pass keyed by a canonical form, where JSONata's own compares every pair (quadratic).
        const primitives = new Set<unknown>();
        const structures = new Set<string>();
        const guard = guardOf(this.environment);
        const result: unknown[] = [];
        for (let i = 0; i < values.length; i++) {
          const value = values[i];
          const isStructure = typeof value === "object" && value !== null;
          const seen = isStructure ? structures : primitives;
          const key = isStructure ? await canonical(value, guard) : value;
          if (seen.has(key as string)) continue;
          seen.add(key as string);
          result.push(value);
          if ((i & (ITEMS_PER_CHECK - 1)) === 0 && sliceIsOver()) await nextSliceFor(guard?.isOver);
        }
        // A sequence in, a sequence out (pushed to natively: a sequence's own push checks its length on every call).
        if ((values as { sequence?: boolean }).sequence) Object.assign(result, { sequence: true });
        return result;
      },
    },
    sort: {
      signature: "<af?:a>",
      async implementation(this: Focus, values: unknown[] | undefined, comparator?: unknown) {
        // Without a comparator JSONata awaits a comparison per pair, in one call that never yields;
        // numbers and strings sort natively instead, without calling back into JavaScript per pair.
        if (values !== undefined && values.length > 1 && comparator === undefined) {
          const sorted = sortNatively(values);
          if (sorted) return sorted;
        }
        return ORIGINAL.sort.implementation.call(this, values, comparator);
      },
    },
    spread: {
      signature: "<x-:a<o>>",
      implementation(this: Focus, value: unknown) {
        return spread(value, limits.maxSequenceLength, guardOf(this.environment)?.isOver);
      },
    },
    merge: {
      signature: "<a<o>:o>",
      implementation(this: Focus, objects: object[] | undefined) {
        return merge(objects, limits.maxObjectKeys, guardOf(this.environment)?.isOver);
      },
    },
    keys: {
      signature: "<x-:a<s>>",
      implementation(this: Focus, value: unknown) {
        return keys(value, limits.maxSequenceLength, guardOf(this.environment)?.isOver);
      },
    },
    trim: {
      signature: "<s-:s>",
      implementation(this: Focus, text: string | undefined) {
        return text === undefined ? undefined : trim(text, guardOf(this.environment)?.isOver);
      },
    },
    ...Object.fromEntries(
      Object.keys(URL_FUNCTIONS).map((name) => [
        name,
        {
          signature: "<s-:s>",
          implementation(this: Focus, text: string | undefined) {
            return text === undefined ? undefined : convertUrl(name, text, guardOf(this.environment)?.isOver);
          },
        },
      ]),
    ),
    reverse: {
      signature: "<a:a>",
      implementation(this: Focus, values: unknown[] | undefined) {
        // As JSONata's, natively (JSONata's fills a new array from its end, which made V8 store it as a dictionary).
        return values === undefined || values.length <= 1 ? values : values.slice().reverse();
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
          if ((i & 0xfff) === 0xfff && sliceIsOver()) await nextSliceFor(guard?.isOver);
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
      async implementation(this: Focus, value: unknown) {
        if (value === undefined) return undefined;
        const text = await jsonataString(value, false, limits.maxStringLength, guardOf(this.environment));
        if (text === undefined) throw overLimit("the JSON of a value to transform", limits.maxStringLength, "characters");
        guardOf(this.environment)?.charge(2 * text.length);
        return JSON.parse(text);
      },
    },
    string: {
      signature: "<x-b?:s>",
      async implementation(this: Focus, value: unknown, prettify?: boolean) {
        // As JSONata's: a string is itself, a function the empty string; the JSON is written in slices.
        if (value === undefined || typeof value === "string") return value;
        if (isFunction(value)) return "";
        if (typeof value === "number" && !Number.isFinite(value)) throw { code: "D3001", value };
        const root = Array.isArray(value) && (value as { outerWrapper?: boolean }).outerWrapper ? value[0] : value;
        const text = await jsonataString(root, prettify === true, limits.maxStringLength, guardOf(this.environment));
        if (text === undefined) throw overLimit("$string's result", limits.maxStringLength, "characters");
        return text;
      },
    },
    length: {
      signature: "<s-:n>",
      implementation(this: Focus, text: string | undefined) {
        return text === undefined ? undefined : codePointLength(text);
      },
    },
    substring: {
      signature: "<s-nn?:s>",
      implementation(this: Focus, text: string | undefined, start: number, length?: number) {
        // As JSONata's, counting code points, without making an array of them.
        if (text === undefined) return undefined;
        const count = codePointLength(text);
        const from = count + start < 0 ? 0 : start;
        if (length === undefined) return sliceCodePoints(text, count, from, count);
        if (length <= 0) return "";
        return sliceCodePoints(text, count, from, from >= 0 ? from + length : count + from + length);
      },
    },
  };
}

/** `$string`'s JSON of a value, or undefined when it would be longer than `maxLength`. */
async function jsonataString(value: unknown, indent: boolean, maxLength: number, guard: RunGuard | undefined): Promise<string | undefined> {
  const writer = await writeJson(value, { maxLength, indent, jsonata: true }, guard?.isOver);
  return writer.over ? undefined : (writer.text() ?? "");
}

/** Half of a surrogate pair: a string without any has as many code points as UTF-16 units. */
const SURROGATE = /[\uD800-\uDFFF]/;

/** Characters of a string as JSONata's `$length` counts them (code points; a lone surrogate counts as one). */
export function codePointLength(text: string): number {
  if (!SURROGATE.test(text)) return text.length;
  let pairs = 0;
  for (let i = 0; i < text.length - 1; i++) {
    if (isPairAt(text, i)) {
      pairs++;
      i++;
    }
  }
  return text.length - pairs;
}

/** True when a surrogate pair (one code point) starts at `i`. */
function isPairAt(text: string, i: number): boolean {
  const high = text.charCodeAt(i);
  if (high < 0xd800 || high > 0xdbff) return false;
  const low = text.charCodeAt(i + 1);
  return low >= 0xdc00 && low <= 0xdfff;
}

/**
 * The code points of `text` (`count` of them) from `start` to `end`, both taken as
 * `Array.prototype.slice` takes them (negative from the end, fractions truncated).
 */
function sliceCodePoints(text: string, count: number, start: number, end: number): string {
  if (count === text.length) return text.slice(start, end);
  const from = relativeIndex(start, count);
  const to = relativeIndex(end, count);
  if (to <= from) return "";
  let offset = 0;
  let fromOffset = 0;
  for (let point = 0; point < to; point++) {
    if (point === from) fromOffset = offset;
    offset += isPairAt(text, offset) ? 2 : 1;
  }
  return text.slice(fromOffset, offset);
}

/** An index as `Array.prototype.slice` resolves it against a length. */
function relativeIndex(index: number, length: number): number {
  const whole = Number.isNaN(index) ? 0 : Math.trunc(index);
  return whole < 0 ? Math.max(length + whole, 0) : Math.min(whole, length);
}

/**
 * Numbers or strings sorted ascending as JSONata's `$sort` sorts them (`a > b`, stable), natively;
 * undefined for any other array (or one holding -0, which the native sort puts before 0).
 */
function sortNatively(values: unknown[]): unknown[] | undefined {
  if (typeof values[0] === "number") {
    for (const value of values) if (typeof value !== "number" || Object.is(value, -0)) return undefined;
    return Array.from(Float64Array.from(values as number[]).sort());
  }
  if (typeof values[0] === "string") {
    for (const value of values) if (typeof value !== "string") return undefined;
    // The default order compares UTF-16 code units, as `<` does; the sort is stable.
    return values.slice().sort();
  }
  return undefined;
}

/** A string equal for values JSONata's deep equality finds equal (object keys in any order), written in slices. */
async function canonical(value: unknown, guard: RunGuard | undefined): Promise<string> {
  const writer = await writeJson(value, { maxLength: Number.POSITIVE_INFINITY, sortKeys: true }, guard?.isOver);
  return writer.text() ?? "";
}

/** Installs the guard's hooks and bounded built-ins on a compiled expression. */
export function guardExpression(expression: jsonata.Expression, limits: GuardLimits): void {
  attachEntryChecks(expression.ast());
  expression.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, onEntry);
  expression.assign(Symbol.for("jsonata.__evaluate_exit") as unknown as string, onExit(limits));
  for (const [name, { implementation, signature }] of Object.entries(replacements(limits))) {
    expression.registerFunction(name, implementation as (...args: unknown[]) => unknown, signature);
  }
}
