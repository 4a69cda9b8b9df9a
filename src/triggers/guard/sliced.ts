import { GuardFailure } from "./failure.js";
import { ITEMS_PER_CHECK, nextSliceFor, sliceIsOver } from "./slices.js";
import { type IsOver, isFunction, pairBoundary, TEXT_CHUNK } from "./values.js";

/**
 * JSONata built-ins redone to work through large inputs in time slices (see ./slices.ts), with the
 * same results as JSONata's own. JSONata's do their work in one synchronous call, and some of it
 * grows faster than their input: `$spread` copies everything gathered so far for every item (a
 * hundred thousand objects held the event loop for minutes), and one native call over a long
 * string can take long too (`$trim` of a million characters of words: half a second).
 */

/** Counts units of work and waits for the next slice when the current one is over. */
class Pace {
  private count = 0;

  constructor(private readonly isOver: IsOver) {}

  /** undefined while the slice lasts; once it is over, a promise to await before going on. */
  tick(units = 1): Promise<void> | undefined {
    this.count += units;
    if (this.count < ITEMS_PER_CHECK) return undefined;
    this.count = 0;
    return sliceIsOver() ? nextSliceFor(this.isOver) : undefined;
  }
}

/** JSONata's own limit on a sequence's length (its error D2015). */
function sequenceTooLong(limit: number): { code: string; value: number } {
  return { code: "D2015", value: limit };
}

/** A JSONata sequence (an array JSONata unwraps when it holds one item) made from an array. */
function asSequence<T>(items: T[]): T[] {
  return Object.assign(items, { sequence: true });
}

function isLambda(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as { _jsonata_lambda?: unknown })._jsonata_lambda === true;
}

/**
 * `$spread`: an object's keys as single-key objects, an array's items spread in turn (nested
 * arrays too), anything else as it is.
 */
export async function spread(value: unknown, maxItems: number, isOver: IsOver): Promise<unknown> {
  const spreads = (item: unknown) => Array.isArray(item) || (typeof item === "object" && item !== null && !isLambda(item));
  if (!spreads(value)) return value;
  const pace = new Pace(isOver);
  const result: unknown[] = [];
  const push = (item: unknown) => {
    if (result.length >= maxItems) throw sequenceTooLong(maxItems);
    result.push(item);
  };
  const pending: unknown[][] = [];
  const visit = async (item: unknown) => {
    if (Array.isArray(item)) pending.push([...item].reverse());
    else if (spreads(item)) {
      for (const key of Object.keys(item as object)) {
        const single = Object.create(null) as Record<string, unknown>;
        single[key] = (item as Record<string, unknown>)[key];
        push(single);
        const wait = pace.tick();
        if (wait) await wait;
      }
    } else if (item !== undefined) push(item);
  };
  await visit(value);
  while (pending.length > 0) {
    const items = pending.at(-1)!;
    if (items.length === 0) {
      pending.pop();
      continue;
    }
    await visit(items.pop());
    const wait = pace.tick();
    if (wait) await wait;
  }
  // As JSONata's: what items were appended to is a plain array (JSONata appends with concat); an object's, a sequence.
  return Array.isArray(value) && value.length > 0 ? result : asSequence(result);
}

/**
 * `$merge`: the objects' properties in one object, later ones winning.
 * @throws GuardFailure `size` once it would have more than `maxKeys` keys
 */
export async function merge(objects: object[] | undefined, maxKeys: number, isOver: IsOver): Promise<unknown> {
  if (objects === undefined) return undefined;
  const pace = new Pace(isOver);
  const result = Object.create(null) as Record<string, unknown>;
  let keys = 0;
  for (const object of objects) {
    const names = Object.keys(object);
    for (const name of names) {
      if (!(name in result) && ++keys > maxKeys) {
        throw new GuardFailure("size", `$merge's result is over the limit of ${maxKeys} keys`);
      }
      result[name] = (object as Record<string, unknown>)[name];
    }
    const wait = pace.tick(names.length + 1);
    if (wait) await wait;
  }
  return result;
}

/** `$keys`: an object's keys; for an array, the keys of all its items (nested arrays too), each once. */
export async function keys(value: unknown, maxItems: number, isOver: IsOver): Promise<string[]> {
  const pace = new Pace(isOver);
  const found = Object.create(null) as Record<string, true>;
  const pending = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push(item[i]);
    } else if (typeof item === "object" && item !== null && !isFunction(item)) {
      const names = Object.keys(item);
      for (const name of names) found[name] = true;
      const wait = pace.tick(names.length + 1);
      if (wait) await wait;
    }
  }
  // An object's keys in its own order (integer-like keys first), as JSONata's merged object gives them.
  const names = Object.keys(found);
  if (names.length > maxItems) throw sequenceTooLong(maxItems);
  return asSequence(names);
}

/** A run of the whitespace `$trim` collapses. */
const WHITESPACE = /[ \t\n\r]+/;

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/**
 * Runs of whitespace in `text` made one space each, as JSONata's `$trim` does with
 * `replace(/[ \t\n\r]+/gm, " ")`, but with split and join: a global regex replace with half a
 * million matches took half a second, and left tens of megabytes for the garbage collector.
 */
export function collapseWhitespace(text: string): string {
  return text.split(WHITESPACE).join(" ");
}

/** `$trim`: runs of whitespace become one space, then one leading and one trailing space go. */
export async function trim(text: string, isOver: IsOver): Promise<string> {
  const parts: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + TEXT_CHUNK, text.length);
    // A run of whitespace is not cut in two.
    while (end < text.length && isWhitespace(text.charCodeAt(end))) end++;
    parts.push(collapseWhitespace(text.slice(start, end)));
    start = end;
    if (start < text.length && sliceIsOver()) await nextSliceFor(isOver);
  }
  let result = parts.join("");
  if (result.charAt(0) === " ") result = result.substring(1);
  if (result.charAt(result.length - 1) === " ") result = result.substring(0, result.length - 1);
  return result;
}

/** The byte a `%XX` escape at `at` stands for, or NaN when there is none there. */
function escapedByte(text: string, at: number): number {
  return text.charCodeAt(at) === 0x25 ? Number.parseInt(text.slice(at + 1, at + 3), 16) : Number.NaN;
}

/**
 * Where a chunk of URL-encoded text may end at or after `at` without cutting an escape, or the
 * escapes of one UTF-8 encoded character, in two: before a character that is not escaped, or
 * before an escape that starts a character (its byte is not 0x80 to 0xBF).
 */
function escapeBoundary(text: string, at: number): number {
  for (let i = at; i < text.length; i++) {
    if (text.charCodeAt(i - 1) === 0x25 || text.charCodeAt(i - 2) === 0x25) continue; // inside an escape
    const byte = escapedByte(text, i);
    if (Number.isNaN(byte) ? text.charCodeAt(i) !== 0x25 : byte < 0x80 || byte > 0xbf) return pairBoundary(text, i);
  }
  return text.length;
}

/**
 * A native URL encoding or decoding of a long string, a chunk at a time (cut where it makes no
 * difference to the result).
 */
async function inChunks(
  text: string,
  convert: (chunk: string) => string,
  boundary: (text: string, at: number) => number,
  isOver: IsOver,
): Promise<string> {
  if (text.length <= TEXT_CHUNK) return convert(text);
  const parts: string[] = [];
  for (let start = 0; start < text.length; ) {
    const end = boundary(text, Math.min(start + TEXT_CHUNK, text.length));
    parts.push(convert(text.slice(start, end)));
    start = end;
    if (start < text.length && sliceIsOver()) await nextSliceFor(isOver);
  }
  return parts.join("");
}

/** The URL built-ins, as JSONata's: an error D3140 for text that cannot be encoded or decoded. */
export const URL_FUNCTIONS: Readonly<Record<string, { native: (text: string) => string; decodes: boolean }>> = {
  encodeUrlComponent: { native: encodeURIComponent, decodes: false },
  encodeUrl: { native: encodeURI, decodes: false },
  decodeUrlComponent: { native: decodeURIComponent, decodes: true },
  decodeUrl: { native: decodeURI, decodes: true },
};

/** Runs a URL built-in on text, in chunks. */
export async function convertUrl(name: string, text: string, isOver: IsOver): Promise<string> {
  const { native, decodes } = URL_FUNCTIONS[name]!;
  try {
    return await inChunks(text, native, decodes ? escapeBoundary : pairBoundary, isOver);
  } catch (error) {
    if (error instanceof URIError) throw { code: "D3140", value: text, functionName: name };
    throw error;
  }
}

/**
 * `$replace` of a string pattern (not empty) by a string, taken literally, at most `limit` times
 * (as JSONata's: replacements go on while fewer than `limit` were made), the result built a
 * chunk at a time: JSONata's appends to one string per match, and the garbage of half a million
 * pieces took hundreds of milliseconds to collect.
 * @param checkLength throws when the result would be too long; called with its length before it is built
 */
export async function replaceText(
  text: string,
  pattern: string,
  replacement: string,
  limit: number | undefined,
  checkLength: (length: number) => void,
  isOver: IsOver,
): Promise<string> {
  const pace = new Pace(isOver);
  let count = 0;
  for (
    let at = text.indexOf(pattern);
    at !== -1 && (limit === undefined || count < limit);
    at = text.indexOf(pattern, at + pattern.length)
  ) {
    count++;
    const wait = pace.tick();
    if (wait) await wait;
  }
  checkLength(text.length + count * (replacement.length - pattern.length));
  const chunks: string[] = [];
  let parts: string[] = [];
  let position = 0;
  for (let made = 0; made < count; made++) {
    const at = text.indexOf(pattern, position);
    parts.push(text.slice(position, at), replacement);
    position = at + pattern.length;
    if (parts.length >= 2 * ITEMS_PER_CHECK) {
      chunks.push(parts.join(""));
      parts = [];
      if (sliceIsOver()) await nextSliceFor(isOver);
    }
  }
  parts.push(text.slice(position));
  chunks.push(parts.join(""));
  return chunks.join("");
}
