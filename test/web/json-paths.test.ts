import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lineAndColumn, locateJsonPaths, parseStack } from "../../web/admin/json-paths.js";
import { assertProperty } from "../helpers/property.js";

/** Every path of a JSON value in the server's notation, with the value there. */
function paths(value: unknown, path: string, out: [string, unknown][] = []): [string, unknown][] {
  out.push([path, value]);
  if (Array.isArray(value)) for (const [index, item] of value.entries()) paths(item, `${path}[${index}]`, out);
  else if (typeof value === "object" && value !== null) for (const [key, item] of Object.entries(value)) paths(item, `${path}.${key}`, out);
  return out;
}

describe("locateJsonPaths (the stack editor's error positions)", () => {
  it("finds the span of every value, whatever the JSON and its layout", () => {
    assertProperty(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2, "\t"), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        const spans = locateJsonPaths(text);
        const all = paths(JSON.parse(text), "stack");
        fc.pre(new Set(all.map(([path]) => path)).size === all.length); // keys such as "a.b" can name the same path twice
        for (const [path, expected] of all) {
          const span = spans.get(path);
          expect(span, path).toBeDefined();
          expect(JSON.parse(text.slice(span!.start, span!.end))).toEqual(expected);
        }
      }),
    );
  });

  it("points at a nested step's field, e.g. stack[1].then[0].value", () => {
    const text = '[\n  { "drop": true },\n  { "if": "x", "then": [ { "set": "payload.a", "value": "$uppercase(" } ] }\n]';
    const span = locateJsonPaths(text).get("stack[1].then[0].value")!;
    expect(text.slice(span.start, span.end)).toBe('"$uppercase("');
    expect(lineAndColumn(text, span.start)).toEqual({ line: 3, column: 57 });
  });
});

describe("parseStack", () => {
  it("parses JSON", () => {
    expect(parseStack('[{"drop": true}]')).toEqual({ ok: true, stack: [{ drop: true }] });
  });

  it.each([
    ['[\n  { "drop": true },\n  { "log": }\n]', 3, 12, "expected a value but found }"],
    ['[{ "drop": true }', 1, 18, "the text ends where ] was expected"],
    ["[{ 'log': 'x' }]", 1, 4, "expected a property name in double quotes"],
    ['[{ "log": "a\nb" }]', 1, 13, "a line break or control character inside a string"],
    ['[{ "drop": tru }]', 1, 12, "expected true, false or null"],
    ['[{ "drop": true }] x', 1, 20, "more text after the end of the JSON value"],
  ])("says where %j stops being JSON", (text, line, column, reason) => {
    const result = parseStack(text);
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.message).toBe(
        `Not valid JSON (line ${line}, column ${column}): ${reason}${reason.endsWith("null") ? " (strings need double quotes)" : ""}.`,
      );
  });
});
