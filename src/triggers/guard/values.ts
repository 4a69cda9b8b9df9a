import { MAX_JSON_DEPTH } from "../../validation.js";
import { GuardFailure } from "./failure.js";
import { ITEMS_PER_CHECK, nextSliceFor, sliceIsOver } from "./slices.js";

/**
 * Work on whole values (copying, comparing, serializing) in time slices: a value a run builds may
 * hold hundreds of thousands of items, and one synchronous pass over it (`JSON.stringify`, a deep
 * copy) held the event loop for a hundred milliseconds and more. These walk values with an explicit
 * stack (no recursion, however deep the value) and let the event loop run between slices (see
 * ./slices.ts). A small value is done within its first slice, without waiting.
 */

/** Characters of a string handled by one native call (escaping it as JSON, encoding it for a URL...). */
export const TEXT_CHUNK = 64 * 1024;

/** Where a chunk of text may end at or after `at` without cutting a surrogate pair in two. */
export function pairBoundary(text: string, at: number): number {
  if (at >= text.length) return text.length;
  const before = text.charCodeAt(at - 1);
  const after = text.charCodeAt(at);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff ? at + 1 : at;
}

/** Whether the run the work belongs to is over (its remaining work is then dropped). */
export type IsOver = (() => boolean) | undefined;

/** Counts items worked through, and says when to wait for the next slice. */
class Pace {
  private count = 0;

  constructor(private readonly isOver: IsOver) {}

  /** undefined while the slice lasts; once it is over, a promise to await before going on. */
  tick(): Promise<void> | undefined {
    if ((++this.count & (ITEMS_PER_CHECK - 1)) !== 0 || !sliceIsOver()) return undefined;
    return nextSliceFor(this.isOver);
  }
}

/** True for a JSONata function value: a lambda, a built-in, or a JavaScript function. */
export function isFunction(value: unknown): boolean {
  return (
    typeof value === "function" ||
    (typeof value === "object" && value !== null && ("_jsonata_lambda" in value || "_jsonata_function" in value))
  );
}

/** What plain JSON leaves out of an object (and writes as null in an array): functions and undefined. */
const LEFT_OUT = Symbol("left out");
/** An array or an object, to walk into. */
const NESTED = Symbol("nested");

/** The plain JSON of a value that is not an array or object, {@link LEFT_OUT}, or {@link NESTED}. */
function plainScalar(value: unknown): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      // As JSON.stringify: -0 is 0, and a number that is not finite is null.
      return Number.isFinite(value) ? value + 0 : null;
    case "object":
      return value === null ? null : isFunction(value) ? LEFT_OUT : NESTED;
    default:
      return LEFT_OUT;
  }
}

/** Sets an own property; `__proto__` too, as the data property JSON.parse makes. */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

function tooDeep(): GuardFailure {
  return new GuardFailure("size", `a value nests deeper than ${MAX_JSON_DEPTH} levels`);
}

/** An array or object being copied: its source, its copy, its keys (objects) and the next one to copy. */
interface CopyFrame {
  readonly from: Record<string, unknown> | unknown[];
  readonly to: Record<string, unknown> | unknown[];
  readonly keys: string[] | undefined;
  readonly length: number;
  next: number;
  readonly depth: number;
}

function copyFrame(from: object, depth: number): CopyFrame {
  if (Array.isArray(from)) return { from, to: [], keys: undefined, length: from.length, next: 0, depth };
  const keys = Object.keys(from);
  return { from: from as Record<string, unknown>, to: {}, keys, length: keys.length, next: 0, depth };
}

/**
 * A value as plain JSON, copied: what `JSON.parse(JSON.stringify(value))` gives (JSONata's
 * sequences become arrays, functions and undefined disappear, or become null in arrays; -0 is 0,
 * a number that is not finite null; `__proto__` keys stay own data properties).
 * @throws GuardFailure `size` when arrays and objects nest deeper than `maxDepth` levels
 */
export async function plainJson(value: unknown, isOver: IsOver, maxDepth: number = MAX_JSON_DEPTH): Promise<unknown> {
  const first = plainScalar(value);
  if (first !== NESTED) return first === LEFT_OUT ? undefined : first;
  const pace = new Pace(isOver);
  const root = copyFrame(value as object, 0);
  const pending = [root];
  while (pending.length > 0) {
    const frame = pending.at(-1)!;
    if (frame.next === frame.length) {
      pending.pop();
      continue;
    }
    const wait = pace.tick();
    if (wait) await wait;
    const index = frame.next++;
    const key = frame.keys ? frame.keys[index]! : index;
    const item = (frame.from as Record<string | number, unknown>)[key];
    let plain = plainScalar(item);
    if (plain === NESTED) {
      if (frame.depth + 1 >= maxDepth) throw tooDeep();
      const child = copyFrame(item as object, frame.depth + 1);
      pending.push(child);
      plain = child.to;
    }
    if (!frame.keys) (frame.to as unknown[]).push(plain === LEFT_OUT ? null : plain);
    else if (plain !== LEFT_OUT) put(frame.to as Record<string, unknown>, key as string, plain);
  }
  return root.to;
}

/** How many items a quick check looks at before it leaves a value to the walk in slices. */
const QUICK_ITEMS = 256;

/**
 * Checks that arrays and objects in a plain JSON value nest no deeper than {@link MAX_JSON_DEPTH}
 * levels, as `nestsDeeperThan` (../validation.ts) does: at once for a small value (undefined; this
 * runs on every trigger run), in slices for a large one (a promise).
 * @throws GuardFailure `size` otherwise (or the promise rejects with it)
 */
export function checkDepth(value: unknown, isOver: IsOver): Promise<void> | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const budget = { items: QUICK_ITEMS };
  if (shallowWithin(value, 0, budget)) return undefined;
  const pending: [object, number][] = [[value, 0]];
  return inSlices((items) => {
    for (let left = items; pending.length > 0 && left > 0; left--) {
      const [node, depth] = pending.pop()!;
      if (depth >= MAX_JSON_DEPTH) throw tooDeep();
      for (const child of Object.values(node)) if (typeof child === "object" && child !== null) pending.push([child, depth + 1]);
    }
    return pending.length === 0;
  }, isOver);
}

/** True when `node` (at `depth`) nests no deeper than allowed; false when the budget ran out first. @throws GuardFailure `size` */
function shallowWithin(node: object, depth: number, budget: { items: number }): boolean {
  if (depth >= MAX_JSON_DEPTH) throw tooDeep();
  for (const child of Object.values(node)) {
    if (--budget.items < 0) return false;
    if (typeof child === "object" && child !== null && !shallowWithin(child, depth + 1, budget)) return false;
  }
  return true;
}

/**
 * Deep equality of two plain JSON values: what their JSON says (objects by their keys in any
 * order, arrays by their items, 0 and -0 alike). At once for small values (a boolean; this runs on
 * every trigger run), in slices for large ones (a promise).
 */
export function equalJson(a: unknown, b: unknown, isOver: IsOver): boolean | Promise<boolean> {
  const quick = equalWithin(a, b, { items: QUICK_ITEMS });
  if (quick !== undefined) return quick;
  const pending: [unknown, unknown][] = [[a, b]];
  let equal = true;
  const step = (items: number) => {
    for (let left = items; pending.length > 0 && left > 0; left--) {
      const [x, y] = pending.pop()!;
      if (x !== y && !sameShape(x, y, pending)) {
        equal = false;
        pending.length = 0;
      }
    }
    return pending.length === 0;
  };
  return inSlices(step, isOver).then(() => equal);
}

/** Whether two values are equal, or undefined when the budget ran out first. */
function equalWithin(a: unknown, b: unknown, budget: { items: number }): boolean | undefined {
  if (a === b) return true;
  if (--budget.items < 0) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const equal = equalWithin(a[i], b[i], budget);
      if (equal !== true) return equal;
    }
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key)) return false;
    const equal = equalWithin((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], budget);
    if (equal !== true) return equal;
  }
  return true;
}

/** Runs `step` (a bounded piece of work that says whether all is done) until done, letting the event loop run between slices. */
async function inSlices(step: (items: number) => boolean, isOver: IsOver): Promise<void> {
  while (!step(ITEMS_PER_CHECK)) {
    if (sliceIsOver()) await nextSliceFor(isOver);
  }
}

/** Whether two values that are not identical may still be equal; their items to compare go to `pending`. */
function sameShape(x: unknown, y: unknown, pending: [unknown, unknown][]): boolean {
  if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false;
  if (Array.isArray(x) || Array.isArray(y)) {
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) pending.push([x[i], y[i]]);
    return true;
  }
  const keys = Object.keys(x);
  if (keys.length !== Object.keys(y).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(y, key)) return false;
    pending.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]]);
  }
  return true;
}

/** How a {@link JsonWriter} writes. */
export interface JsonWriting {
  /** Characters to write at most: past them it stops, and {@link JsonWriter.over} is true. */
  readonly maxLength: number;
  /** Indent nested lines by two spaces, as `JSON.stringify(value, null, 2)`. */
  readonly indent?: boolean;
  /**
   * As JSONata's `$string`: numbers that are not whole are written with 15 significant digits,
   * a function is written as an empty string, and a number that is not finite is an error.
   */
  readonly jsonata?: boolean;
  /** Write object keys sorted (by UTF-16 code units), so that objects equal but for their key order write alike. */
  readonly sortKeys?: boolean;
}

/** An array or object being written. */
interface WriteFrame {
  readonly node: Record<string, unknown> | unknown[];
  readonly keys: string[] | undefined;
  readonly length: number;
  next: number;
  /** Whether an item was written (so the next one takes a comma, and the closing bracket a new line). */
  wrote: boolean;
}

/**
 * Writes a value as JSON text a few items at a time, so that the caller decides when to let the
 * event loop run, and stops once the text is longer than it may be: the work is bounded by the
 * length allowed, whatever the size of the value.
 */
export class JsonWriter {
  private readonly parts: string[] = [];
  private readonly pending: WriteFrame[] = [];
  /** A long string being written a chunk at a time (escaping a million characters is one native call otherwise). */
  private long: { readonly text: string; at: number } | undefined;
  /** Characters written so far. */
  length = 0;
  /** True once the text went past `maxLength` (writing stopped there). */
  over = false;
  private started = false;

  constructor(
    private readonly value: unknown,
    private readonly writing: JsonWriting,
  ) {}

  /** Writes up to `items` more values; true once the text is complete (or over its length). */
  write(items: number): boolean {
    if (!this.started) {
      this.started = true;
      this.writeValue(this.value, false);
    }
    for (let budget = items; (this.pending.length > 0 || this.long) && !this.over && budget > 0; budget--) {
      if (this.long) {
        this.writeChunk(this.long);
        budget -= ITEMS_PER_CHECK; // a chunk is as much work as a slice's check allows
        continue;
      }
      const frame = this.pending.at(-1)!;
      if (frame.next === frame.length) {
        this.pending.pop();
        if (frame.wrote && this.writing.indent) this.emit(this.newLine(this.pending.length));
        this.emit(frame.keys ? "}" : "]");
        continue;
      }
      const index = frame.next++;
      if (!frame.keys) {
        this.separate(frame);
        this.writeValue((frame.node as unknown[])[index], true);
        continue;
      }
      const key = frame.keys[index]!;
      const item = this.replaced((frame.node as Record<string, unknown>)[key]);
      if (item === undefined) continue; // JSON leaves it out
      this.separate(frame);
      this.emit(JSON.stringify(key));
      this.emit(this.writing.indent ? ": " : ":");
      this.writeValue(item, true);
    }
    return (this.pending.length === 0 && !this.long) || this.over;
  }

  /** Writes the next chunk of a long string, and its closing quote after the last. */
  private writeChunk(long: { readonly text: string; at: number }): void {
    const end = pairBoundary(long.text, long.at + TEXT_CHUNK);
    this.emit(JSON.stringify(long.text.slice(long.at, end)).slice(1, -1));
    long.at = end;
    if (end === long.text.length) {
      this.emit('"');
      this.long = undefined;
    }
  }

  /** The JSON text (undefined for a value JSON leaves out, such as a function at the top). */
  text(): string | undefined {
    return this.parts.length === 0 ? undefined : this.parts.join("");
  }

  private emit(text: string): void {
    this.parts.push(text);
    this.length += text.length;
    if (this.length > this.writing.maxLength) this.over = true;
  }

  private newLine(depth: number): string {
    return `\n${"  ".repeat(depth)}`;
  }

  private separate(frame: WriteFrame): void {
    if (frame.wrote) this.emit(",");
    frame.wrote = true;
    if (this.writing.indent) this.emit(this.newLine(this.pending.length));
  }

  /** The value as JSONata's `$string` replaces it before writing (as is for plain JSON). */
  private replaced(value: unknown): unknown {
    if (!this.writing.jsonata) return isFunction(value) ? undefined : value;
    if (typeof value === "number") {
      if (!Number.isFinite(value) && !Number.isNaN(value)) throw { code: "D1001", value };
      return Number.isInteger(value) || Number.isNaN(value) ? value : Number(value.toPrecision(15));
    }
    return isFunction(value) ? "" : value;
  }

  /** Writes a value; `inside` an array or object, one JSON leaves out is written as null. */
  private writeValue(raw: unknown, inside: boolean): void {
    const value = this.replaced(raw);
    if (typeof value === "object" && value !== null) {
      const keys = Array.isArray(value) ? undefined : this.writing.sortKeys ? Object.keys(value).sort() : Object.keys(value);
      this.pending.push({
        node: value as Record<string, unknown>,
        keys,
        length: keys?.length ?? (value as unknown[]).length,
        next: 0,
        wrote: false,
      });
      this.emit(keys ? "{" : "[");
      return;
    }
    if (typeof value === "string" && value.length > TEXT_CHUNK) {
      this.emit('"');
      this.long = { text: value, at: 0 };
      return;
    }
    const text = JSON.stringify(value);
    if (text !== undefined) this.emit(text);
    else if (inside) this.emit("null");
  }
}

/** Writes a value's JSON text in slices (see {@link JsonWriter}); the writer is done when this resolves. */
export async function writeJson(value: unknown, writing: JsonWriting, isOver: IsOver): Promise<JsonWriter> {
  const writer = new JsonWriter(value, writing);
  while (!writer.write(ITEMS_PER_CHECK)) {
    if (sliceIsOver()) await nextSliceFor(isOver);
  }
  return writer;
}

/**
 * The JSON text of a plain JSON value if it has at most `maxLength` characters, else its first
 * characters (a few more than `maxLength`): the work is bounded by the length, not the value.
 */
export function jsonPrefix(value: unknown, maxLength: number): { readonly text: string; readonly whole: boolean } {
  const writer = new JsonWriter(value, { maxLength });
  writer.write(Number.POSITIVE_INFINITY);
  return { text: writer.text() ?? "", whole: !writer.over };
}
