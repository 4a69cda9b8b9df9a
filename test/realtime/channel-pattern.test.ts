import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bySpecificity, compileChannelPattern } from "../../src/realtime/channel-pattern.js";
import { assertProperty } from "../helpers/property.js";

describe("channel patterns", () => {
  it("matches one or more characters for each *", () => {
    const room = compileChannelPattern("room:*");
    expect(room.matches("room:1")).toBe(true);
    expect(room.matches("room:a/b")).toBe(true);
    expect(room.matches("room:")).toBe(false);
    expect(room.matches("xroom:1")).toBe(false);
    const middle = compileChannelPattern("a*b*c");
    expect(middle.matches("axbxc")).toBe(true);
    expect(middle.matches("abc")).toBe(false);
    expect(middle.matches("axbc")).toBe(false);
    expect(middle.matches("axbbxc")).toBe(true);
    expect(compileChannelPattern("*").matches("anything")).toBe(true);
    expect(compileChannelPattern("exact").matches("exact")).toBe(true);
    expect(compileChannelPattern("exact").matches("exact2")).toBe(false);
  });

  it("agrees with the equivalent regular expression on arbitrary names", () => {
    const alphabet = fc.constantFrom("a", "b", ":", "*");
    assertProperty(
      fc.property(
        fc.string({ unit: alphabet, minLength: 1, maxLength: 8 }),
        fc.string({ unit: fc.constantFrom("a", "b", ":"), maxLength: 10 }),
        (pattern, name) => {
          const regex = new RegExp(`^${pattern.split("*").join(".+")}$`);
          expect(compileChannelPattern(pattern).matches(name)).toBe(regex.test(name));
        },
      ),
    );
  });

  it("refuses patterns outside the channel name alphabet", () => {
    for (const bad of ["", "a b", "room:?", "x".repeat(256)]) {
      expect(() => compileChannelPattern(bad)).toThrow(/Invalid channel pattern/);
    }
  });

  it("orders exact names before patterns, longer patterns before shorter", () => {
    const sorted = ["*", "room:*", "room:1", "room:1*"].map((p) => compileChannelPattern(p)).sort(bySpecificity);
    expect(sorted.map((p) => p.source)).toEqual(["room:1", "room:1*", "room:*", "*"]);
  });
});
