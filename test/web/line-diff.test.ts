import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { diffLines } from "../../web/admin/line-diff.js";
import { assertProperty } from "../helpers/property.js";

const text = fc.array(fc.constantFrom("a", "b", "c", '  "x": 1,', ""), { maxLength: 30 }).map((lines) => lines.join("\n"));

describe("diffLines (the console's revision diff)", () => {
  it("keeps both texts: old lines are same or removed, new lines same or added, in order", () => {
    assertProperty(
      fc.property(text, text, (before, after) => {
        const diff = diffLines(before, after);
        expect(
          diff
            .filter((line) => line.kind !== "added")
            .map((line) => line.text)
            .join("\n"),
        ).toBe(before);
        expect(
          diff
            .filter((line) => line.kind !== "removed")
            .map((line) => line.text)
            .join("\n"),
        ).toBe(after);
      }),
    );
  });

  it("marks nothing as changed between equal texts, and keeps the longest run of shared lines", () => {
    assertProperty(
      fc.property(text, (same) => {
        expect(diffLines(same, same).every((line) => line.kind === "same")).toBe(true);
      }),
    );
    expect(diffLines("a\nb\nc", "a\nx\nc")).toEqual([
      { kind: "same", text: "a" },
      { kind: "removed", text: "b" },
      { kind: "added", text: "x" },
      { kind: "same", text: "c" },
    ]);
  });
});
