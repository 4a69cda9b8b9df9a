/**
 * The document nesting limit reads a document as graphql-js's lexer does: brackets inside strings,
 * block strings (with escaped triple quotes), escapes and comments never count, and every bracket
 * outside them does. Documents are built with a known nesting and checked against it.
 */
import fc from "fast-check";
import { parse } from "graphql";
import { describe, expect, it } from "vitest";
import { nestsDeeperThanLimit } from "../../src/http/plugins.js";
import { assertProperty } from "../helpers/property.js";

/** A GraphQL input value as text, with how deeply its brackets nest. */
interface Value {
  readonly text: string;
  readonly depth: number;
}

/** Text full of what a naive scan trips over: brackets, quotes, backslashes, hashes, newlines. */
const tricky = fc.string({ unit: fc.constantFrom("{", "}", "[", "]", "(", ")", '"', "\\", "#", "\n", "a", " ", "\u00e9", "\u{1F600}") });

/** A string value: a quoted string (escaped as JSON escapes it, which GraphQL reads alike) or a block string. */
const stringValue: fc.Arbitrary<Value> = fc.oneof(
  tricky.map((content) => ({ text: JSON.stringify(content), depth: 0 })),
  // A block string cannot end in a quote or a backslash (it would run into, or escape, its closing quotes).
  tricky.map((content) => ({ text: `"""${content.replaceAll('"""', '\\"""').replace(/["\\]+$/, "")}"""`, depth: 0 })),
);

/** A comment line, which may hold anything but a line end. */
const comment = tricky.map((content) => ` # ${content.replaceAll("\n", " ").replaceAll("\r", " ")}\n`);

const values: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    stringValue,
    fc.integer().map((n) => ({ text: String(n), depth: 0 })),
    fc.tuple(fc.array(tie("value"), { maxLength: 3 }), comment).map(([items, note]) => ({
      text: `[${note}${items.map((item) => item.text).join(", ")}]`,
      depth: 1 + Math.max(0, ...items.map((item) => item.depth)),
    })),
    fc.array(tie("value"), { maxLength: 3 }).map((fields) => ({
      text: `{${fields.map((field, i) => `f${i}: ${field.text}`).join(", ")}}`,
      depth: 1 + Math.max(0, ...fields.map((field) => field.depth)),
    })),
  ),
})).value;

/** A chain of lists `levels` deep around a value, to reach past the limit. */
const deepChains = fc.tuple(fc.integer({ min: 100, max: 400 }), values).map(([levels, inner]) => ({
  text: `${"[".repeat(levels)}${inner.text}${"]".repeat(levels)}`,
  depth: levels + inner.depth,
}));

/** The value as an argument of a field: the selection set and the argument list add two levels. */
const documentOf = (value: Value) => ({ text: `query { f(a: ${value.text}) { id } }`, depth: value.depth + 2 });

describe("document nesting, counted by the lexer", () => {
  it("is exactly the nesting the document was built with, whatever its strings and comments hold", () => {
    let runs = 0;
    assertProperty(
      fc.property(fc.oneof(values, deepChains), (value) => {
        runs++;
        const document = documentOf(value);
        parse(document.text, { noLocation: true }); // a valid document
        expect(nestsDeeperThanLimit(document.text, document.depth)).toBe(false);
        expect(nestsDeeperThanLimit(document.text, document.depth - 1)).toBe(true);
      }),
      { numRuns: 500 },
    );
    expect(runs).toBe(500);
  });

  it("is not fooled by an escaped backslash that ends a string before the brackets", () => {
    const hidden = `query { f(a: "\\\\", b: ${"[".repeat(200)}"x"${"]".repeat(200)}) { id } }`;
    expect(nestsDeeperThanLimit(hidden, 128)).toBe(true);
  });

  it("leaves a document the lexer cannot read to the parser, counting only up to where it stops", () => {
    expect(nestsDeeperThanLimit(`query { f(a: ${"[".repeat(10)} "unterminated`, 128)).toBe(false);
    expect(nestsDeeperThanLimit(`query { f(a: ${"[".repeat(200)} "unterminated`, 128)).toBe(true);
  });
});
