/**
 * JSON text positions for the stack editor, without the DOM: where each value of a JSON text sits,
 * by path in the server's notation (`stack[2].then[0].value`), and where a text stops being JSON.
 */

/** Where a JSON value sits in the text. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** Where a JSON text stops being JSON, and why. */
class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Scans a JSON text strictly, recording the span of every value by path in the server's notation:
 * the root is `root`, array items `[i]`, object members `.key` (e.g. `stack[2].then[0].value`).
 * @throws JsonSyntaxError at the first offset that is not JSON (`spans` keeps what came before)
 */
function scanJson(text: string, root: string, spans: Map<string, Span>): void {
  let i = 0;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(i, what);
  };
  const skipSpace = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const expect = (char: string) => {
    if (text[i] !== char) fail(i >= text.length ? `the text ends where ${char} was expected` : `expected ${char} but found ${text[i]}`);
    i++;
  };
  const string = () => {
    expect('"');
    for (;;) {
      const char = text[i];
      if (char === undefined) fail("a string is not closed");
      else if (char === '"') break;
      else if (char < " ") fail("a line break or control character inside a string");
      else if (char === "\\") {
        const escaped = text[i + 1];
        if (escaped === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) i += 2;
        else fail("an invalid escape in a string");
      } else i++;
    }
    i++;
  };
  const value = (path: string): void => {
    skipSpace();
    const start = i;
    const first = text[i];
    if (first === "{") {
      i++;
      skipSpace();
      if (text[i] === "}") i++;
      else
        for (;;) {
          skipSpace();
          if (text[i] !== '"') fail("expected a property name in double quotes");
          const keyStart = i;
          string();
          const key = JSON.parse(text.slice(keyStart, i)) as string;
          skipSpace();
          expect(":");
          value(`${path}.${key}`);
          skipSpace();
          if (text[i] !== ",") {
            expect("}");
            break;
          }
          i++;
        }
    } else if (first === "[") {
      i++;
      skipSpace();
      if (text[i] === "]") i++;
      else
        for (let index = 0; ; index++) {
          value(`${path}[${index}]`);
          skipSpace();
          if (text[i] !== ",") {
            expect("]");
            break;
          }
          i++;
        }
    } else if (first === '"') {
      string();
    } else if (first !== undefined && /[tfn]/.test(first)) {
      const word = ["true", "false", "null"].find((candidate) => text.startsWith(candidate, i));
      if (!word) fail("expected true, false or null (strings need double quotes)");
      i += word!.length;
    } else {
      JSON_NUMBER.lastIndex = i;
      if (!JSON_NUMBER.test(text))
        fail(first === undefined ? "the text ends where a value was expected" : `expected a value but found ${first}`);
      i = JSON_NUMBER.lastIndex;
    }
    spans.set(path, { start, end: i });
  };
  value(root);
  skipSpace();
  if (i < text.length) fail("more text after the end of the JSON value");
}

/**
 * Maps every value of a JSON text to its span, by path in the server's notation (see
 * {@link scanJson}). On text that is not JSON it returns what it found before the error.
 */
export function locateJsonPaths(text: string, root = "stack"): Map<string, Span> {
  const spans = new Map<string, Span>();
  try {
    scanJson(text, root, spans);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
  }
  return spans;
}

/** Line and column (1-based) of an offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

/** The stack parsed from JSON, or where and why it is not JSON. */
export function parseStack(text: string): { ok: true; stack: unknown } | { ok: false; message: string; offset?: number } {
  try {
    return { ok: true, stack: JSON.parse(text) };
  } catch (error) {
    try {
      scanJson(text, "stack", new Map());
    } catch (syntax) {
      if (syntax instanceof JsonSyntaxError) {
        const { line, column } = lineAndColumn(text, syntax.offset);
        return { ok: false, message: `Not valid JSON (line ${line}, column ${column}): ${syntax.message}.`, offset: syntax.offset };
      }
    }
    return { ok: false, message: `Not valid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}
